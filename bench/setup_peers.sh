#!/usr/bin/env bash
# Peer libraries for the side-by-side benchmarks, each in its own gitignored venv at the repo root.
#
#   bash bench/setup_peers.sh obp      # Open Bandit Pipeline 0.5.7 in .venv-obp (bench/vs_obp.py)
#
# obp 0.5.7 declares an old Python and old pins; it is installed with --no-deps beside the packages
# it imports. torch goes in FIRST, from the local CPU build, so pip never pulls a CUDA build.
# obp needs pandas < 3.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}

setup_obp() {
    local venv=.venv-obp
    if [[ -x $venv/bin/python ]] && $venv/bin/python -c "import obp" 2>/dev/null; then
        echo "obp already in $venv"; return
    fi
    $PYTHON -m venv $venv
    local pip="$venv/bin/python -m pip --disable-pip-version-check --quiet"
    $pip install "torch==$TORCH_VERSION"
    $pip install numpy scipy scikit-learn "pandas<3" matplotlib seaborn tqdm pyyaml
    $pip install --no-deps --ignore-requires-python obp==0.5.7
    $venv/bin/python -c "import obp, torch; print('obp', obp.__version__, 'torch', torch.__version__)"
}

case "${1:-all}" in
    obp|all) setup_obp ;;
    *) echo "unknown peer: $1 (known: obp)" >&2; exit 2 ;;
esac
