"""One import name: the distribution exposes ``recause`` and nothing else.

The fixed top-level folders (``flows/``, ``tasks/``, ``models/``, ``validations/``,
``mlflow_config/``) install as ``recause.flows`` ... through ``pyproject.toml``'s package mapping.
A generic top-level name such as ``models`` or ``tasks`` would collide with other distributions in
any environment or serving image.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("flows", "tasks", "models", "validations", "mlflow_config")
EDITABLE_ARTIFACTS = ("__editable__", "__pycache__")  # the editable install's finder and .pth


def installed_metadata() -> dict:
    """The installed ``recause`` distribution's declared top-level names and RECORD paths, read in a
    subprocess started outside the checkout (so nothing in the working tree is on ``sys.path``)."""
    code = (
        "import json, importlib.metadata as m\n"
        "d = m.distribution('recause')\n"
        "print(json.dumps({'top_level': (d.read_text('top_level.txt') or '').split(),"
        " 'files': [str(f) for f in (d.files or [])],"
        " 'owners': sorted(k for k, v in m.packages_distributions().items() if 'recause' in v)}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True, timeout=60, check=True)
    return json.loads(result.stdout)


def test_the_installed_distribution_exposes_only_recause() -> None:
    meta = installed_metadata()
    assert meta["top_level"] == ["recause"]
    assert meta["owners"] == ["recause"]
    roots = {Path(f).parts[0] for f in meta["files"] if not f.startswith("..")}
    roots = {r for r in roots if not r.endswith(".dist-info") and not r.startswith(EDITABLE_ARTIFACTS)}
    assert roots <= {"recause"}, f"top-level names besides recause: {sorted(roots - {'recause'})}"


def test_every_package_folder_is_listed_in_pyproject() -> None:
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {"recause"} | {
        ".".join(("recause", *p.parent.relative_to(ROOT).parts)) for layer in LAYERS for p in (ROOT / layer).rglob("__init__.py")
    }
    assert declared == on_disk, f"missing from pyproject: {sorted(on_disk - declared)}; not on disk: {sorted(declared - on_disk)}"


def test_the_built_wheel_holds_one_root_and_every_module(tmp_path: Path) -> None:
    # build from a copy of what the wheel is made of, so the checkout gets no build/ or egg-info
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "__init__.py"):
        shutil.copy(ROOT / name, source / name)
    for layer in LAYERS:
        shutil.copytree(ROOT / layer, source / layer, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", str(source), "-w", str(tmp_path / "dist")],
        capture_output=True, text=True, timeout=300, check=True,
    )
    [wheel] = (tmp_path / "dist").glob("recause-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"recause", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}
    modules = {n for n in names if n.endswith(".py")}
    expected = {"recause/__init__.py"} | {
        "recause/" + p.relative_to(ROOT).as_posix() for layer in LAYERS for p in (ROOT / layer).rglob("*.py")
    }
    assert modules == expected
    assert "recause/flows/presets/default.yaml" in names
