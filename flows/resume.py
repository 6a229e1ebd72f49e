"""Resume: a stage whose inputs, settings and code have not changed is reused, not redone.

Each stage's result (:class:`~recause.flows.stages.StageResult`: its value, metrics and the files
it wrote) is kept in a content-addressed store, ``<output_root>/stages/<stage>/<key>/``. The key
(:func:`stage_key`) is a SHA-256 over the stage's name, the code (:func:`~recause.flows.provenance.code_hash`
and package versions) and its arguments: settings and numbers by value, run-folder paths relative
to the folder, and the outputs of earlier stages by *their* keys — so a key changes whenever
anything upstream changes. The data enter through the validated dataset's key, which includes the
content hash of its tables (the ``load`` and ``validate`` stages always run: they read the data
from disk, and a resumed run must not trust data it has not re-read).

An entry is written to a temporary folder and renamed into place only when complete
(``result.pkl``, the stage's files, ``entry.json``), so a run killed mid-write leaves no entry
that a later run could pick up half-written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from pydantic import BaseModel

from recause.flows.files import TEMP_MARK, temporary_sibling
from recause.flows.stages import StageResult

RESULT_FILE, ENTRY_FILE, FILES_FOLDER = "result.pkl", "entry.json", "files"


class Unkeyable(TypeError):
    """An argument the key cannot describe (an object that no stage produced): the stage runs."""


@dataclass(frozen=True)
class KeyContext:
    """What a key needs besides the arguments: the code version, the run folder (paths inside it
    count by their relative path) and the keys of the values earlier stages produced (by ``id``)."""

    code: str
    folder: Path
    known: Mapping[int, str]


def describe(value: Any, context: KeyContext) -> Any:
    """A JSON-able description of ``value`` that determines it (raises :class:`Unkeyable`)."""
    if id(value) in context.known:
        return {"stage-output": context.known[id(value)]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, BaseModel):
        return {type(value).__name__: value.model_dump(mode="json")}
    if isinstance(value, Path):
        path = Path(value).resolve()
        inside = path.is_relative_to(context.folder.resolve())
        return {"path": path.relative_to(context.folder.resolve()).as_posix() if inside else str(path), "in_run": inside}
    if isinstance(value, (list, tuple)):
        return [describe(v, context) for v in value]
    if isinstance(value, dict):
        return {str(k): describe(v, context) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {type(value).__name__: {f.name: describe(getattr(value, f.name), context) for f in dataclasses.fields(value)}}
    raise Unkeyable(f"{type(value).__name__} was not produced by a stage")


def stage_key(stage: str, args: tuple, kwargs: Mapping[str, Any], context: KeyContext) -> str:
    """The stage's cache key (hex SHA-256); raises :class:`Unkeyable`."""
    text = json.dumps(
        {"stage": stage, "code": context.code, "args": describe(list(args), context), "kwargs": describe(dict(kwargs), context)},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def derived_key(source_key: str, label: str) -> str:
    """The key of a value computed in the flow from a stage's output (``models.policy_set()``)."""
    return hashlib.sha256(f"{source_key}/{label}".encode()).hexdigest()


@dataclass(frozen=True)
class Reused:
    """A stored result restored into this run: the result (its files copied into the run folder)
    and where it was first computed (``origin``: run folder, MLflow stage run id)."""

    result: StageResult
    origin: dict[str, str]


class StageStore:
    """Completed stage results under ``root/<stage>/<key>/``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def entry(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def load(self, stage: str, key: str, folder: Path) -> Reused | None:
        """The stored result of ``stage`` at ``key`` with its files copied under ``folder``, or None."""
        import cloudpickle

        entry = self.entry(stage, key)
        if not (entry / ENTRY_FILE).is_file():
            return None
        try:
            record = json.loads((entry / ENTRY_FILE).read_text())
            with open(entry / RESULT_FILE, "rb") as handle:
                result: StageResult = cloudpickle.load(handle)
        except (OSError, ValueError, EOFError, ImportError, AttributeError):
            return None  # replaced under us, or written by other code: compute afresh
        for relative in record["files"]:
            source, target = entry / FILES_FOLDER / relative, Path(folder) / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True)
            else:
                shutil.copy2(source, target)
        files = tuple(Path(folder) / relative for relative in record["files"])
        return Reused(dataclasses.replace(result, files=files), record["origin"])

    def save(self, stage: str, key: str, result: StageResult, folder: Path, origin: Mapping[str, str],
             replace: bool = False) -> Path | None:
        """Store ``result`` (its files relative to the run ``folder``) at ``key``, atomically;
        returns the entry, or None when an entry was already there (another run stored the same
        result first) and ``replace`` is off. ``replace`` (``--fresh``) puts the new result in its place."""
        import cloudpickle

        final = self.entry(stage, key)
        if final.exists() and not replace:
            return None
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = temporary_sibling(final)
        try:
            temp.mkdir()
            relative = [Path(p).resolve().relative_to(Path(folder).resolve()).as_posix() for p in result.files]
            for path, name in zip(result.files, relative):
                target = temp / FILES_FOLDER / name
                target.parent.mkdir(parents=True, exist_ok=True)
                if Path(path).is_dir():
                    shutil.copytree(path, target)
                else:
                    shutil.copy2(path, target)
            with open(temp / RESULT_FILE, "wb") as handle:
                cloudpickle.dump(dataclasses.replace(result, files=()), handle)
            (temp / ENTRY_FILE).write_text(json.dumps({"stage": stage, "key": key, "files": relative, "origin": dict(origin)}, indent=2))
            if replace and final.exists():
                aside = temporary_sibling(final)
                try:
                    os.replace(final, aside)
                    shutil.rmtree(aside, ignore_errors=True)
                except FileNotFoundError:
                    pass  # another run moved it first
            try:
                os.replace(temp, final)
            except OSError:  # another run stored the same key between our check and now: keep theirs
                return None
            return final
        finally:
            if temp.exists():
                shutil.rmtree(temp, ignore_errors=True)

    def sweep(self, min_age_seconds: float = 3600.0) -> list[Path]:
        """Remove half-written entries (of killed runs) older than ``min_age_seconds`` — younger
        ones may belong to a run still writing."""
        import time

        if not self.root.is_dir():
            return []
        cutoff = time.time() - min_age_seconds
        left = [p for p in self.root.glob(f"*/.*{TEMP_MARK}*") if p.is_dir() and p.stat().st_mtime < cutoff]
        for path in left:
            shutil.rmtree(path, ignore_errors=True)
        return left
