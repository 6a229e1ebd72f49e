"""The GPU benchmark (``bench/gpu_train.py``) at its CPU ``--tiny`` size, its bandwidth floor by hand,
and its import hygiene: the GPU image has no prefect, mlflow or great_expectations, and the project
is not installed there (the shared prelude ``bench/_common.py`` registers the checkout as ``recause``)."""

from __future__ import annotations

import ast
import importlib
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
# what the GPU benchmark must never reach: the stages and the flow (they import the above), the old layout
FORBIDDEN_RECAUSE = ("recause.tasks", "recause.flows", "recause.validations", "recause.mlflow_config")
OLD_LAYOUT = ("models", "tasks", "flows", "validations", "mlflow_config", "vs_pyg")


@pytest.fixture
def bench(monkeypatch):
    """Imports a module of ``bench/`` the way a script there finds it (its folder on ``sys.path``)."""
    monkeypatch.syspath_prepend(str(BENCH))
    previous = torch.get_num_threads()
    yield importlib.import_module
    torch.set_num_threads(previous)


def result_numbers(text: str, keys: tuple[str, ...]) -> dict[str, float]:
    lines = [line for line in text.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, f"expected one RESULT line, got {lines}"
    assert text.rstrip().endswith(lines[0]), "the RESULT line must come last"
    found = dict(re.findall(r"(\w+)=(\S+)", lines[0]))
    return {k: float(found[k]) for k in keys}


def test_spmm_bytes_by_hand(bench) -> None:
    lightgcn = bench("_lightgcn")
    # 10 entries x (4 B value + 8 B column + 2 x 4 B gathered row) + 5 row pointers x 8 B + 4 rows x 2 x 4 B written
    assert lightgcn.spmm_bytes(nnz=10, n_nodes=4, dim=2) == 10 * 20 + 40 + 32
    # a step is 2L products: 6 x 272 B at 272 B/s is 6 s
    assert lightgcn.floor_seconds_per_step(10, 4, 2, layers=3, bandwidth=272.0) == pytest.approx(6.0)


def test_tiny_run_prints_a_finite_result_and_writes_details(bench, tmp_path, capsys) -> None:
    gpu_train = bench("gpu_train")
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
    """Modules named by import statements in ``path``: all of them, or (``lazy=False``) the module body's only.

    ``from a.b import c`` names ``a.b`` and ``a.b.c`` (c may be a module); relative imports are not used.
    """
    tree = ast.parse(path.read_text())
    nodes = ast.walk(tree) if lazy else tree.body
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


def _files_run_by(name: str) -> list[Path]:
    """The project files importing ``name`` executes: a module of ``bench/``, or ``recause.*`` with the
    ``__init__.py`` of every package on the way (the repository root is the package ``recause``)."""
    if (BENCH / f"{name}.py").is_file():
        return [BENCH / f"{name}.py"]
    parts = name.split(".")
    if parts[0] != "recause":
        return []
    files, folder = [ROOT / "__init__.py"], ROOT
    for part in parts[1:]:
        if (folder / part / "__init__.py").is_file():
            folder = folder / part
            files.append(folder / "__init__.py")
        elif (folder / f"{part}.py").is_file():
            files.append(folder / f"{part}.py")
            break
        else:
            break
    return files


def test_the_benchmark_and_the_models_it_uses_never_import_what_the_gpu_image_lacks() -> None:
    # _common's body only: its lazy text_features() helper (recause.tasks) serves the text benchmarks, never this one
    imports = {BENCH / "_common.py": _imports(BENCH / "_common.py", lazy=False)}
    todo = [BENCH / "gpu_train.py"]
    while todo:
        path = todo.pop()
        if path in imports:
            continue
        imports[path] = _imports(path)
        todo += [f for name in imports[path] for f in _files_run_by(name)]
    reached = {str(p.relative_to(ROOT)) for p in imports}
    assert {"bench/_common.py", "bench/_lightgcn.py", "__init__.py", "models/__init__.py", "models/gnn/__init__.py",
            "models/gnn/encoders.py", "models/gnn/heads.py", "models/gnn/module.py", "models/gnn/batches.py"} <= reached
    assert "bench/vs_pyg.py" not in reached, "gpu_train.py imports the CPU benchmark; share through bench/_lightgcn.py"
    found = {f"{p.relative_to(ROOT)}: {n}" for p, names in imports.items() for n in names
             if n.split(".")[0] in ABSENT_ON_GPU + OLD_LAYOUT or n.startswith(FORBIDDEN_RECAUSE)}
    assert not found, found


@pytest.mark.slow
def test_a_bare_checkout_runs_the_tiny_benchmark_and_loads_none_of_them(tmp_path) -> None:
    # As on the GPU machine: recause not installed (the editable install's finder is dropped) and the
    # working directory outside the repository, so only the prelude's bootstrap can make it importable.
    code = (
        "import runpy, sys; "
        "sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, '__module__', '').startswith('__editable__')]; "
        "sys.modules.pop('recause', None); "
        f"sys.path.insert(0, {str(BENCH)!r}); "
        f"sys.argv = [{str(BENCH / 'gpu_train.py')!r}, '--tiny', '--device', 'cpu', '--profile-steps', '0', '--out', sys.argv[1]]; "
        "runpy.run_path(sys.argv[0], run_name='__main__'); "
        "import recause; print('RECAUSE', recause.__file__); "
        "tops = {m.split('.')[0] for m in sys.modules}; "
        f"print('LOADED', sorted((tops & set({ABSENT_ON_GPU + OLD_LAYOUT!r})) "
        f"| {{m for m in sys.modules if m.startswith({FORBIDDEN_RECAUSE!r})}}))"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"RECAUSE {ROOT / '__init__.py'}" in proc.stdout, proc.stdout[-2000:]
    assert "LOADED []" in proc.stdout, proc.stdout[-2000:]
    result_numbers(proc.stdout.split("RECAUSE")[0], ("epoch_time_ratio_vs_pyg", "fraction_of_floor"))
    assert (tmp_path / "gpu_train.json").is_file()
