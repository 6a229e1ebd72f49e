#!/usr/bin/env bash
# Peer libraries for the side-by-side benchmarks, each in its own gitignored venv at the repo root.
#
#   bash bench/setup_peers.sh obp      # Open Bandit Pipeline 0.5.7 in .venv-obp (bench/vs_obp.py)
#   bash bench/setup_peers.sh recbole  # RecBole 1.2.1 in .venv-recbole (bench/vs_recbole.py)
#   bash bench/setup_peers.sh ctgan    # CTGAN 0.12.1 in .venv-ctgan (bench/simulator.py --ctgan)
#   bash bench/setup_peers.sh causal   # CausalML + EconML + LightGBM in .venv-causal (bench/vs_causalml.py)
#   bash bench/setup_peers.sh          # all of them
#
# torch goes in FIRST, from the local CPU build, so pip never pulls a CUDA build.
# obp 0.5.7 declares an old Python and old pins; it is installed with --no-deps beside the packages
# it imports. obp needs pandas < 3.
# RecBole 1.2.1 is installed with --no-deps too: it pins ray <= 2.6.3, which only its quick_start and
# hyper-parameter search import (the bench builds the pipeline from config/data/model/trainer), so
# only what those modules import goes in, with the pins its code still needs: numpy 1.26 (np.float
# and friends), pandas < 2.3, scipy 1.11, setuptools < 81 (keeps pkg_resources for older tensorboards).
# Run it with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1: it reloads its own checkpoints with torch.load.
# CausalML 0.18.0, EconML 0.17.0, LightGBM 4.7.0 and scikit-learn 1.9.1 install from PyPI as wheels
# with their own dependencies (pip check clean, 2.4 GB with torch: causalml requires xgboost, which pulls
# nvidia-nccl-cu12 even on a CPU machine); numpy 2.4 and pandas 3.1 resolved with them.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}

# has VENV CODE: the venv exists and CODE runs in it
has() { [[ -x $1/bin/python ]] && "$1/bin/python" -c "$2" 2>/dev/null; }

# new_venv VENV: create it with the local CPU torch first (nothing pulls a CUDA build); prints its pip command
new_venv() {
    $PYTHON -m venv "$1"
    local pip="$1/bin/python -m pip --disable-pip-version-check --quiet"
    $pip install "torch==$TORCH_VERSION" >&2
    echo "$pip"
}

setup_obp() {
    local venv=.venv-obp
    if has "$venv" "import obp"; then echo "obp already in $venv"; return; fi
    local pip; pip=$(new_venv "$venv")
    $pip install numpy scipy scikit-learn "pandas<3" matplotlib seaborn tqdm pyyaml
    $pip install --no-deps --ignore-requires-python obp==0.5.7
    $venv/bin/python -c "import obp, torch; print('obp', obp.__version__, 'torch', torch.__version__)"
}

setup_recbole() {
    local venv=.venv-recbole
    if has "$venv" "import recbole.trainer, recbole.data"; then echo "recbole already in $venv"; return; fi
    local pip; pip=$(new_venv "$venv")
    $pip install "setuptools<81" numpy==1.26.4 "pandas<2.3" scipy==1.11.4 scikit-learn tqdm pyyaml \
        colorlog==4.7.2 colorama==0.4.4 tensorboard texttable tabulate thop psutil
    $pip install --no-deps recbole==1.2.1
    TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 $venv/bin/python -c \
        "import recbole, recbole.data, recbole.trainer, torch; print('recbole', recbole.__version__, 'torch', torch.__version__)"
}

setup_ctgan() {
    local venv=.venv-ctgan
    if has "$venv" "import ctgan"; then echo "ctgan already in $venv"; return; fi
    local pip; pip=$(new_venv "$venv")
    $pip install ctgan==0.12.1
    $venv/bin/python -c "import ctgan, torch; print('ctgan', ctgan.__version__, 'torch', torch.__version__)"
}

setup_causal() {
    local venv=.venv-causal
    if has "$venv" "import causalml.inference.meta, econml.dr, lightgbm"; then echo "causal peers already in $venv"; return; fi
    local pip; pip=$(new_venv "$venv")
    $pip install causalml==0.18.0 econml==0.17.0 lightgbm==4.7.0 scikit-learn==1.9.1
    $venv/bin/python -c "import causalml.inference.meta, econml.dr, econml.dml; from importlib.metadata import version as v; \
print(*(f'{p} {v(p)}' for p in ('causalml', 'econml', 'lightgbm', 'scikit-learn', 'torch')))"
}

case "${1:-all}" in
    obp) setup_obp ;;
    recbole) setup_recbole ;;
    ctgan) setup_ctgan ;;
    causal) setup_causal ;;
    all) setup_obp; setup_recbole; setup_ctgan; setup_causal ;;
    *) echo "unknown peer: $1 (known: obp, recbole, ctgan, causal)" >&2; exit 2 ;;
esac
