"""Files a run writes, written so that a reader never sees half of one.

Every artifact goes to a temporary name in its final folder and is renamed into place when
complete (``os.replace`` is atomic on one file system): a crash leaves either the old state or
the new file, never a truncated one. Temporary names start with ``.`` and contain ``.tmp-``, so
they are easy to tell from results and to sweep (:func:`sweep_temporaries`).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMP_MARK = ".tmp-"


def temporary_sibling(path: Path) -> Path:
    """A unique temporary name beside ``path`` that keeps its suffix (writers such as matplotlib
    pick the format from it): ``a/report.csv`` -> ``a/.report.tmp-<hex>.csv``."""
    path = Path(path)
    return path.with_name(f".{path.stem}{TEMP_MARK}{uuid.uuid4().hex[:12]}{path.suffix}")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` (a file or a folder),
    on failure it is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temporary_sibling(path)
    try:
        yield temp
        if path.is_dir() and temp.is_dir():
            shutil.rmtree(path)
        os.replace(temp, path)
    finally:
        if temp.is_dir():
            shutil.rmtree(temp, ignore_errors=True)
        elif temp.exists():
            temp.unlink()


def write_text_atomic(path: Path, text: str) -> Path:
    """``path.write_text(text)``, atomically; returns ``path``."""
    with atomic_path(path) as temp:
        temp.write_text(text)
    return Path(path)


def sweep_temporaries(folder: Path) -> list[Path]:
    """Remove the temporaries a killed writer left under ``folder``; returns what was removed."""
    removed = []
    for path in sorted(Path(folder).rglob(f".*{TEMP_MARK}*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed
