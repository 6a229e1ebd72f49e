"""What a run needs to be reproduced: code version, data fingerprint, package versions."""

from __future__ import annotations

import hashlib
import subprocess
from importlib import metadata
from pathlib import Path

import pandas as pd

from recause.tasks.data.schema import PROVENANCE, TABLES, Dataset

PACKAGES = ("recause", "torch", "numpy", "pandas", "prefect", "mlflow", "great_expectations", "pydantic")


def git_commit(root: Path) -> str:
    """HEAD of the project checkout, with ``-dirty`` when tracked files changed; ``unknown`` outside git."""
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5,
        )
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


SOURCE_FOLDERS = ("flows", "tasks", "models", "validations", "mlflow_config")


def code_hash(root: Path) -> str:
    """SHA-256 over the package's own source (every ``.py`` and ``.yaml`` file under its folders,
    by relative path and content): what a stage's result depends on besides its inputs, whether
    or not the checkout is a git repository or has uncommitted edits."""
    digest = hashlib.sha256()
    files = sorted(p for folder in SOURCE_FOLDERS for p in (Path(root) / folder).rglob("*") if p.suffix in (".py", ".yaml"))
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def data_hash(dataset: Dataset) -> str:
    """SHA-256 over the content of the three tables (values and column names, not provenance)."""
    digest = hashlib.sha256()
    for name in TABLES:
        frame = dataset.table(name)
        frame = frame.drop(columns=[c for c in PROVENANCE if c in frame.columns])
        digest.update(name.encode())
        digest.update("\x1f".join(map(str, frame.columns)).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out
