"""The three layers and their import boundaries, read from the source (AST), plus lazy imports at start-up.

- ``flows/`` is the only importer of Prefect; only ``flows/`` and ``mlflow_config/`` import MLflow;
- ``tasks/`` (pure stage logic) imports neither ``flows`` nor ``mlflow_config``;
- ``models/`` (maths) imports no other layer and no orchestration, tracking or validation library;
- nothing anywhere imports the old top-level names (``models``, ``tasks``, ...): one root, ``recause``;
- ``recause --help``, ``recause config`` and ``recause presets`` load neither torch, Lightning nor Prefect.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("flows", "tasks", "models", "validations", "mlflow_config")
ORCHESTRATION = {"prefect", "prefect_dask", "prefect_ray"}
TRACKING = {"mlflow"}
VALIDATION = {"great_expectations"}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it (function-level imports included), as dotted names."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def layer_imports(layer: str) -> dict[str, set[str]]:
    """Relative file path -> what it imports, for every Python file of ``layer``."""
    return {str(p.relative_to(ROOT)): imported_modules(p) for p in sorted((ROOT / layer).rglob("*.py"))}


def offenders(layer: str, forbidden: set[str]) -> dict[str, list[str]]:
    """Files of ``layer`` importing a module whose top-level name, or ``recause.<layer>`` prefix, is forbidden."""
    out = {}
    for file, modules in layer_imports(layer).items():
        bad = sorted(m for m in modules if m.split(".")[0] in forbidden
                     or (m.startswith("recause.") and m.split(".")[1] in forbidden))
        if bad:
            out[file] = bad
    return out


def test_imports_are_found_in_function_bodies_too(tmp_path: Path) -> None:
    # the checker itself: a lazy import inside a function counts
    source = tmp_path / "m.py"
    source.write_text("import numpy\n\ndef f():\n    from prefect import flow\n    import mlflow.pytorch\n")
    assert imported_modules(source) == {"numpy", "prefect", "mlflow.pytorch"}


def test_only_flows_imports_prefect() -> None:
    for layer in ("tasks", "models", "validations", "mlflow_config"):
        assert offenders(layer, ORCHESTRATION) == {}, f"{layer}/ imports Prefect"


def test_only_flows_and_mlflow_config_import_mlflow() -> None:
    for layer in ("tasks", "models", "validations"):
        assert offenders(layer, TRACKING) == {}, f"{layer}/ imports MLflow"


def test_tasks_do_not_reach_up_into_flows_or_tracking() -> None:
    assert offenders("tasks", {"flows", "mlflow_config"}) == {}


def test_models_hold_maths_only() -> None:
    forbidden = {"flows", "tasks", "validations", "mlflow_config"} | ORCHESTRATION | TRACKING | VALIDATION
    assert offenders("models", forbidden) == {}


def test_nothing_imports_the_old_top_level_names() -> None:
    files = [p for folder in (*LAYERS, "tests", "bench") for p in (ROOT / folder).rglob("*.py")]
    old = {}
    for path in files:
        bad = sorted(m for m in imported_modules(path) if m.split(".")[0] in LAYERS)
        if bad:
            old[str(path.relative_to(ROOT))] = bad
    assert old == {}, "import through the one root: recause.<folder>..."


def test_every_module_of_the_package_imports_through_the_root() -> None:
    # each product module is importable as recause.<path> (no module depends on a top-level alias)
    modules = [".".join(("recause", *p.relative_to(ROOT).with_suffix("").parts)).removesuffix(".__init__")
               for layer in ("tasks", "models", "validations", "mlflow_config") for p in (ROOT / layer).rglob("*.py")]
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\nprint('ok')"
    result = subprocess.run([sys.executable, "-c", code, *modules], cwd="/", capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


HEAVY = ("torch", "lightning", "prefect", "torch_geometric", "mlflow", "great_expectations")


@pytest.mark.parametrize("args", [["--help"], ["config", "--preset", "smoke"], ["presets"]])
def test_light_commands_load_no_heavy_library(args: list[str]) -> None:
    code = (
        "import sys, json\n"
        "from recause.flows.cli import main\n"
        "try:\n    code = main(sys.argv[1:])\nexcept SystemExit as exit:\n    code = exit.code\n"
        f"print(json.dumps({{'code': code, 'heavy': sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))}}), file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    result = subprocess.run([sys.executable, "-c", code, *args], cwd="/", env=env, capture_output=True, text=True, timeout=120)
    report = json.loads(result.stderr.strip().splitlines()[-1])
    assert report == {"code": 0, "heavy": []}, result.stderr[-2000:]
