"""The GPU benchmark (``bench/gpu_train.py``) at its CPU ``--tiny`` size, its bandwidth floor by hand,
and its import hygiene: the GPU image has no prefect, mlflow or great_expectations."""

from __future__ import annotations

import ast
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
ABSENT_ON_GPU = ("prefect", "mlflow", "great_expectations")


@pytest.fixture
def gpu_train(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    previous = torch.get_num_threads()
    import gpu_train

    yield gpu_train
    torch.set_num_threads(previous)


def result_numbers(text: str, keys: tuple[str, ...]) -> dict[str, float]:
    lines = [line for line in text.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, f"expected one RESULT line, got {lines}"
    assert text.rstrip().endswith(lines[0]), "the RESULT line must come last"
    found = dict(re.findall(r"(\w+)=(\S+)", lines[0]))
    return {k: float(found[k]) for k in keys}


def test_spmm_bytes_by_hand(gpu_train) -> None:
    # 10 entries x (4 B value + 8 B column + 2 x 4 B gathered row) + 5 row pointers x 8 B + 4 rows x 2 x 4 B written
    assert gpu_train.spmm_bytes(nnz=10, n_nodes=4, dim=2) == 10 * 20 + 40 + 32
    # a step is 2L products: 6 x 272 B at 272 B/s is 6 s
    assert gpu_train.floor_seconds_per_step(10, 4, 2, layers=3, bandwidth=272.0) == pytest.approx(6.0)


def test_tiny_run_prints_a_finite_result_and_writes_details(gpu_train, tmp_path, capsys) -> None:
    details = gpu_train.main(["--tiny", "--device", "cpu", "--out", str(tmp_path), "--profile-steps", "0"])
    out = capsys.readouterr().out
    numbers = result_numbers(out, ("epoch_time_ratio_vs_pyg", "fraction_of_floor", "ours_s_per_epoch", "pyg_s_per_epoch"))
    assert all(math.isfinite(v) and v > 0 for v in numbers.values()), numbers
    ratio = numbers["ours_s_per_epoch"] / numbers["pyg_s_per_epoch"]
    assert numbers["epoch_time_ratio_vs_pyg"] == pytest.approx(ratio, rel=1e-2)

    saved = json.loads((tmp_path / "gpu_train.json").read_text())
    assert saved["result"]["epoch_time_ratio_vs_pyg"] == pytest.approx(details["result"]["epoch_time_ratio_vs_pyg"])
    pyg, ours = saved["rows"]
    assert (pyg["model"], ours["model"]) == ("pyg", "recause")
    assert pyg["steps"] == ours["steps"] == saved["steps_per_epoch"]  # one epoch each, the same steps
    for row in (pyg, ours):
        assert 0.0 <= row["recall20_before"] <= 1.0 and 0.0 <= row["recall20_after"] <= 1.0
        assert math.isfinite(row["loss_first"]) and math.isfinite(row["loss_last"])
    assert saved["graph"]["nnz"] == 2 * saved["graph"]["train"]  # unique pairs, both directions
    assert set(saved["breakdown_ms"]) == {"batch", "to_device", "forward", "backward", "optimizer", "total"}


def _imports(path: Path, lazy: bool = True) -> set[str]:
    """Modules named by import statements in ``path``: all of them, or (``lazy=False``) the module body's only."""
    tree = ast.parse(path.read_text())
    nodes = ast.walk(tree) if lazy else tree.body
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_benchmark_and_the_models_it_uses_never_import_what_the_gpu_image_lacks() -> None:
    # _common's body only: its lazy text_features() helper (tasks.*) serves the text benchmarks, never this one
    imports = {BENCH / "_common.py": _imports(BENCH / "_common.py", lazy=False)}
    todo = [BENCH / "gpu_train.py", BENCH / "vs_pyg.py"]
    while todo:
        path = todo.pop()
        if path in imports:
            continue
        imports[path] = _imports(path)
        todo += [ROOT / (n.replace(".", "/") + ".py") for n in imports[path]
                 if n.startswith("models.") and (ROOT / (n.replace(".", "/") + ".py")).is_file()]
    reached = {str(p.relative_to(ROOT)) for p in imports}
    assert {"models/gnn.py", "models/causal.py", "models/causal_data.py"} <= reached
    found = {f"{p.relative_to(ROOT)}: {n}" for p, names in imports.items() for n in names
             if n.split(".")[0] in ABSENT_ON_GPU + ("tasks", "flows")}
    assert not found, found


@pytest.mark.slow
def test_a_fresh_interpreter_running_the_tiny_benchmark_loads_none_of_them(tmp_path) -> None:
    code = (
        "import runpy, sys; sys.path.insert(0, 'bench'); "
        "sys.argv = ['bench/gpu_train.py', '--tiny', '--device', 'cpu', '--profile-steps', '0', '--out', sys.argv[1]]; "
        "runpy.run_path(sys.argv[0], run_name='__main__'); "
        f"print('LOADED', sorted({{m.split('.')[0] for m in sys.modules}} & set({ABSENT_ON_GPU!r})))"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "LOADED []" in proc.stdout, proc.stdout[-2000:]
    result_numbers(proc.stdout.split("LOADED")[0], ("epoch_time_ratio_vs_pyg", "fraction_of_floor"))
