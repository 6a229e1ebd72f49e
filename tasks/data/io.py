"""Small readers shared by the real-data loaders.

Every reader returns a new frame with the provenance columns of :func:`with_provenance`
(``_source_file``, ``_source_row`` = 1-based line in the file, the header being line 1), so a
validation failure can name the line a user has to fix. Missing inputs raise
:class:`DatasetError` with a message that says what was expected where.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recause.tasks.data.schema import SOURCE_FILE, SOURCE_ROW, DatasetError, with_provenance


def require_dir(folder: Path, what: str, expected: str) -> Path:
    """Return ``folder`` if it is a directory, else raise naming it and its ``expected`` content."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(
            f"{what}: folder {folder} does not exist (or is not a folder). Expected it to hold "
            f"{expected}. Point the loader at your copy of the public release."
        )
    return folder


def find_file(folder: Path, name: str, expected: str = "") -> Path:
    """``folder/name`` or its gzipped twin ``folder/name.gz``, whichever exists (plain first).

    Raises :class:`DatasetError` naming both candidates when neither exists.
    """
    plain = Path(folder) / name
    for candidate in (plain, plain.with_name(plain.name + ".gz")):
        if candidate.is_file():
            return candidate
    layout = f" It should hold {expected}." if expected else ""
    raise DatasetError(f"missing file {plain} (or {plain.name}.gz in {plain.parent}).{layout}")


def read_delimited(
    path: Path,
    *,
    sep: str,
    header: int | None,
    names: Sequence[str] | None = None,
    encoding: str = "utf-8",
    source: str | None = None,
    expected: str | None = None,
    **kw: Any,
) -> pd.DataFrame:
    """Read a delimited text file (optionally ``.gz``) into a frame with provenance columns.

    Parameters
    ----------
    path : the file; compression is inferred from its suffix.
    sep, header, names, encoding : as in :func:`pandas.read_csv` (``header`` is 0 or None).
    source : the ``_source_file`` value; defaults to the file name. Loaders pass the path
        relative to the data root (``"coat/train.ascii"``).
    expected : a description of the layout for the missing-file message; derived from
        ``sep``/``header``/``names`` when omitted.
    **kw : passed on to :func:`pandas.read_csv` (``dtype``, ``index_col``, ``quoting``...).

    Returns
    -------
    pd.DataFrame
        One row per non-blank data line, plus ``_source_file`` and ``_source_row`` (the line
        number, header = line 1; blank lines are skipped but counted; if a quoted field spans
        lines, rows are numbered consecutively instead). A 0-byte file gives an empty frame
        with ``names`` as columns. Bytes that are not valid in ``encoding`` become U+FFFD, for
        validation to flag, rather than an exception.
    """
    path = Path(path)
    source = source or path.name
    if not path.is_file():
        layout = expected or _describe_layout(sep, header, names)
        raise DatasetError(
            f"missing file {path}: expected {layout}. Check the folder the loader was pointed at, "
            f"or place the file from the public release there."
        )
    try:
        frame = pd.read_csv(
            path,
            sep=sep,
            header=header,
            names=list(names) if names is not None else None,
            encoding=encoding,
            encoding_errors="replace",
            **kw,
        )
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame(columns=list(names or []))
    frame = frame.reset_index(drop=True)
    out = with_provenance(frame, source, first_line=1 if header is None else header + 2)
    lines = _data_line_numbers(path, has_header=header is not None)
    if lines is not None and len(lines) == len(out):  # otherwise (multi-line fields) keep 1 row = 1 line
        out[SOURCE_ROW] = lines
    return out


def _data_line_numbers(path: Path, has_header: bool) -> np.ndarray | None:
    """1-based numbers of the non-blank lines that hold data (pandas skips whitespace-only lines).

    ``None`` for compressions other than gzip, where the caller keeps consecutive numbers.
    """
    if path.suffix == ".gz":
        opener = gzip.open
    elif path.suffix in {".bz2", ".zip", ".xz", ".zst", ".tar"}:
        return None
    else:
        opener = open
    with opener(path, "rb") as handle:
        lines = np.fromiter((i for i, line in enumerate(handle, start=1) if line.strip()), dtype=np.int64)
    return lines[1:] if has_header else lines


def _describe_layout(sep: str, header: int | None, names: Sequence[str] | None) -> str:
    separator = {"\t": "tab", ",": "comma", "|": "'|'", " ": "space", r"\s+": "whitespace"}.get(sep, repr(sep))
    head = "a header line" if header is not None else "no header"
    columns = f" and columns {', '.join(names)}" if names else ""
    return f"a {separator}-separated text file with {head}{columns}"


def concat_tables(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Stack frames read from different files, keeping ``_source_file`` categorical."""
    out = pd.concat(list(frames), ignore_index=True)
    if SOURCE_FILE in out.columns:
        files = pd.unique(pd.concat([f[SOURCE_FILE].astype(str) for f in frames], ignore_index=True))
        out[SOURCE_FILE] = pd.Categorical(out[SOURCE_FILE].astype(str), categories=files)
    return out


def ids_table(interactions: pd.DataFrame, id_column: str, extra: Sequence[str] = ()) -> pd.DataFrame:
    """A users or items table derived from the ids in ``interactions``, sorted by id.

    Each row keeps the provenance of the id's first appearance, so a bad id points at the
    interaction line it came from. ``extra`` columns are carried along from that row.
    """
    columns = [id_column, *extra, SOURCE_FILE, SOURCE_ROW]
    first = interactions.loc[:, columns].drop_duplicates(id_column, keep="first")
    return first.sort_values(id_column, kind="stable").reset_index(drop=True)


def nat_timestamps(n: int) -> pd.Series:
    """``n`` missing timestamps of dtype ``datetime64[ns, UTC]`` (sources without times)."""
    return pd.Series(pd.NaT, index=pd.RangeIndex(n), dtype="datetime64[ns, UTC]")


def typed(values: pd.Series, dtype: str) -> pd.Series:
    """``values`` as ``dtype`` when every value converts exactly; otherwise unchanged, so that
    validation can flag and quarantine the offending rows instead of the load failing."""
    if dtype.startswith("int") and pd.api.types.is_float_dtype(values):
        if not (values.notna() & (values == np.round(values))).all():
            return values
    try:
        return values.astype(dtype)
    except (ValueError, TypeError):
        return values


def unix_seconds_to_utc(values: pd.Series) -> pd.Series:
    """Unix epoch seconds (int or float) -> ``datetime64[ns, UTC]``; unchanged if not all numeric."""
    try:
        return pd.to_datetime(pd.to_numeric(values), unit="s", utc=True).astype("datetime64[ns, UTC]")
    except (ValueError, TypeError, OverflowError):
        return values


def iso_to_utc(values: pd.Series) -> pd.Series:
    """ISO 8601 date-times -> ``datetime64[ns, UTC]``; unchanged if any value does not parse."""
    try:
        return pd.to_datetime(values, utc=True, format="ISO8601").astype("datetime64[ns, UTC]")
    except (ValueError, TypeError, OverflowError):
        return values
