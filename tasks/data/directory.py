"""``dir:PATH``: a user's own data as ``interactions``, optional ``items``/``users`` tables and an
optional ``meta.yaml``.

Layout::

    PATH/interactions.parquet | interactions.csv[.gz]   (required)
    PATH/items.parquet | items.csv[.gz]                 (optional)
    PATH/users.parquet | users.csv[.gz]                 (optional)
    PATH/meta.yaml                                      (optional; keys of DatasetMeta below)

Tables are kept as read: :mod:`validations` checks and coerces them, row by row, and names
the offending lines through the provenance columns.
"""

from __future__ import annotations

import math
import reprlib
from pathlib import Path
from typing import Any

import pandas as pd

from recause.tasks.data.io import ids_table, read_delimited, require_dir, require_file
from recause.tasks.data.meta_check import check_meta, unexposed_outcomes
from recause.tasks.data.schema import PROVENANCE, Dataset, DatasetError, DatasetMeta, with_provenance
from recause.tasks.safe_yaml import YamlInputError, load_yaml

EXPECTED = (
    "interactions.parquet or interactions.csv (columns user_id, item_id, timestamp, exposed, "
    "outcome, ...), optionally items.*, users.* and meta.yaml"
)
SUFFIXES = (".parquet", ".csv", ".csv.gz")
META_KEYS = (
    "outcome_kind", "outcome_range", "positive_threshold", "has_unexposed_outcomes",
    "randomized_policy", "has_timestamps", "key_columns", "context_columns",
)


def load_directory(folder: Path) -> Dataset:
    """Read ``interactions``, ``items``, ``users`` and ``meta.yaml`` from ``folder``.

    Returns
    -------
    Dataset
        The tables as read, plus provenance (``_source_row``: the CSV line, header = line 1,
        or the parquet row number from 1). A missing ``items``/``users`` table is derived from
        the interaction ids (with a note). ``meta`` defaults: binary outcomes in [0, 1],
        positive at 1.0, ``has_unexposed_outcomes`` = any row with ``exposed`` false has an outcome,
        ``has_timestamps`` = any timestamp present, key ``(user_id, item_id, timestamp)``;
        ``meta.yaml`` overrides them.

    Raises
    ------
    DatasetError
        A file that cannot be read as its table, a ``meta.yaml`` that is not valid, or metadata
        that the data contradict (:func:`recause.tasks.data.meta_check.check_meta`).
    """
    folder = require_dir(Path(folder), "dir: dataset", EXPECTED)
    found = {name: _find_table(folder, name) for name in ("interactions", "items", "users")}
    if found["interactions"] is None:
        raise DatasetError(f"dir: dataset: {folder} has no interactions file; expected {EXPECTED}.")
    interactions = _read_table(folder, found["interactions"])
    tables, notes = {}, []
    for name, id_column in (("items", "item_id"), ("users", "user_id")):
        path = found[name]
        if path is not None:
            tables[name] = _read_table(folder, path)
        else:
            tables[name] = _derived(interactions, id_column)
            notes.append(f"No {name} file in {folder}: the {name} table holds only the {id_column}s "
                         "seen in the interactions.")
    defaults: dict[str, Any] = {
        "outcome_kind": "binary",
        "outcome_range": (0.0, 1.0),
        "positive_threshold": 1.0,
        "has_unexposed_outcomes": bool(unexposed_outcomes(interactions).any()),
        "randomized_policy": None,
        "has_timestamps": "timestamp" in interactions.columns and bool(interactions["timestamp"].notna().any()),
        "key_columns": ("user_id", "item_id", "timestamp"),
        "context_columns": (),
    }
    meta_file = folder / "meta.yaml"
    overrides = read_meta_yaml(meta_file) if _entry(meta_file) else {}
    meta = DatasetMeta(
        name=f"dir:{folder.name}",
        **{**defaults, **overrides},
        sources={name: str(path) if path else f"derived from {found['interactions']}" for name, path in found.items()},
        notes=tuple(notes),
    )
    dataset = Dataset(interactions=interactions, items=tables["items"], users=tables["users"], meta=meta)
    check_meta(dataset, str(meta_file) if _entry(meta_file) else "the defaults of a dir: dataset (no meta.yaml)")
    return dataset


def _entry(path: Path) -> bool:
    """Whether anything is at ``path``: a file, a folder, a device, or a link (even a dangling one)."""
    return path.is_symlink() or path.exists()


def _find_table(folder: Path, name: str) -> Path | None:
    """The one entry named for table ``name``; two candidates (csv and parquet) are an error.

    Whatever stands there (a folder, a dangling link) counts, so the reader can say what it is
    rather than report the table missing."""
    present = [folder / f"{name}{suffix}" for suffix in SUFFIXES if _entry(folder / f"{name}{suffix}")]
    if len(present) > 1:
        raise DatasetError(f"dir: dataset: {folder} holds {', '.join(p.name for p in present)}; "
                           f"keep exactly one {name} file so it is clear which to read.")
    return present[0] if present else None


def _read_table(folder: Path, path: Path) -> pd.DataFrame:
    source = f"{folder.name}/{path.name}"
    if path.suffix != ".parquet":
        return read_delimited(path, sep=",", header=0, source=source,
                              expected="a comma-separated file with a header line")
    return with_provenance(read_parquet(path).reset_index(drop=True), source, first_line=1)


def read_parquet(path: Path) -> pd.DataFrame:
    """A parquet file as a frame; binary columns decoded as UTF-8 (bad bytes become U+FFFD, for
    validation to flag, as for CSV text). Raises :class:`DatasetError` naming the file when it is
    not parquet, is cut short, or names a column twice."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    require_file(path, "a parquet file")
    try:
        names = pq.read_schema(path).names
        duplicated = sorted({n for n in names if names.count(n) > 1})
        frame = None if duplicated else pd.read_parquet(path)
    except PermissionError:
        raise DatasetError(f"dir: dataset: {path} cannot be read: permission denied.") from None
    except (OSError, ValueError, NotImplementedError, pa.ArrowException) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DatasetError(f"dir: dataset: {path} is not a readable parquet file ({first}).") from None
    if duplicated:
        raise DatasetError(f"dir: dataset: {path} names column(s) {', '.join(map(repr, duplicated))} more than "
                           "once; give each column its own name.")
    return _decoded(frame)


def _decoded(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if values.dtype == object and values.map(lambda v: isinstance(v, bytes)).any():
            out[column] = values.map(lambda v: v.decode("utf-8", errors="replace") if isinstance(v, bytes) else v)
    return out


def _derived(interactions: pd.DataFrame, id_column: str) -> pd.DataFrame:
    if id_column not in interactions.columns:  # e.g. an empty file; validation reports the column
        return pd.DataFrame({id_column: pd.Series(dtype="int64"), **{c: interactions[c].iloc[:0] for c in PROVENANCE}})
    return ids_table(interactions, id_column)


def read_meta_yaml(path: Path) -> dict[str, Any]:
    """The :class:`DatasetMeta` fields set in ``path``, converted to their types.

    Raises :class:`DatasetError` for a file that is not UTF-8 YAML (or is hostile: see
    :func:`recause.tasks.safe_yaml.load_yaml`), unknown keys, or values of the wrong kind.
    """
    require_file(path, "a YAML mapping of DatasetMeta fields")
    try:
        raw = load_yaml(path.read_bytes().decode("utf-8-sig")) or {}
    except UnicodeDecodeError as err:
        raise DatasetError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8.") from None
    except YamlInputError as err:
        raise DatasetError(f"{path} is not valid YAML: {err}.") from None
    except OSError as err:
        raise DatasetError(f"{path} cannot be read ({err.strerror or err}).") from None
    if not isinstance(raw, dict):
        raise DatasetError(f"{path} must be a mapping of DatasetMeta fields, found a {type(raw).__name__}.")
    unknown = sorted(set(map(str, raw)) - set(META_KEYS))
    if unknown:
        raise DatasetError(f"{path} has unknown keys {unknown}; allowed keys are {list(META_KEYS)}.")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            out[key] = _CONVERT[key](value)
        except (TypeError, ValueError) as err:  # reprlib: a value may be an alias bomb
            raise DatasetError(f"{path}: {key} = {reprlib.repr(value)} is invalid: {err}.") from None
    if out.get("outcome_kind") == "rating" and "outcome_range" not in out:
        raise DatasetError(f"{path} sets outcome_kind: rating; also set outcome_range, e.g. [1, 5].")
    return out


def _kind(value: Any) -> str:
    if value not in ("binary", "rating"):
        raise ValueError("expected binary or rating")
    return value


def _number(value: Any) -> float:
    """A finite number (not a boolean, which YAML would otherwise read as 0 or 1)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("expected a number")
    try:
        number = float(value)  # an integer of 400 digits overflows
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ValueError("expected a finite number")
    return number


def _range(value: Any) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError("expected a list [low, high]")
    low, high = _number(value[0]), _number(value[1])
    if low > high:
        raise ValueError("low must not exceed high")
    return low, high


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _columns(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of column names")
    if twice := sorted({v for v in value if value.count(v) > 1}):
        raise ValueError(f"{', '.join(map(repr, twice))} listed more than once")
    return tuple(value)


def _policy(value: Any) -> str | None:
    if value is not None and not isinstance(value, str | int):
        raise ValueError("expected a policy value or null")
    return None if value is None else str(value)


_CONVERT = {
    "outcome_kind": _kind,
    "outcome_range": _range,
    "positive_threshold": _number,
    "has_unexposed_outcomes": _flag,
    "randomized_policy": _policy,
    "has_timestamps": _flag,
    "key_columns": _columns,
    "context_columns": _columns,
}
