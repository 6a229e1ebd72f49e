"""Small readers shared by the real-data loaders.

Every reader returns a new frame with the provenance columns of :func:`with_provenance`
(``_source_file``, ``_source_row`` = 1-based line in the file, the header being line 1), so a
validation failure can name the line a user has to fix. Missing inputs raise
:class:`DatasetError` with a message that says what was expected where.
"""

from __future__ import annotations

import csv
import gzip
import os
import re
import stat
import zlib
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
    layout = expected or _describe_layout(sep, header, names)
    require_file(path, layout)
    lines, head = _scan_text(path, encoding)
    if header is not None and head is not None and len(sep) == 1:
        _refuse_duplicate_names(path, head, sep)
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
    except pd.errors.ParserError as error:
        raise DatasetError(_parser_problem(path, error, header is not None, layout)) from error
    except (OSError, EOFError, zlib.error) as error:  # compressions the scan does not open
        raise DatasetError(f"{path} cannot be read ({type(error).__name__}: {error}); expected {layout}.") from error
    frame = frame.reset_index(drop=True)
    out = with_provenance(frame, source, first_line=1 if header is None else header + 2)
    if lines is not None:
        lines = lines[1:] if header is not None else lines
        if len(lines) == len(out):  # otherwise (multi-line fields) keep 1 row = 1 line
            out[SOURCE_ROW] = lines
    return out


def require_columns(frame: pd.DataFrame, columns: Sequence[str], path: Path | str) -> pd.DataFrame:
    """``frame`` if it has every one of ``columns``; else a :class:`DatasetError` naming the file,
    the missing columns and the ones it has (a loader would otherwise fail on a ``KeyError``)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        found = [str(c) for c in frame.columns if c not in (SOURCE_FILE, SOURCE_ROW)]
        raise DatasetError(f"{path} has no column(s) {', '.join(map(repr, missing))}; it has "
                           f"{', '.join(map(repr, found)) or 'none'}.")
    return frame


def require_file(path: Path, expected: str) -> Path:
    """``path`` if it is a regular file or a link to one; else a :class:`DatasetError` that says
    what is there instead (nothing, a dangling or looping link, a folder, a device such as
    ``/dev/zero``, which would never end)."""
    path = Path(path)
    link = f" (a link to {os.readlink(path)})" if path.is_symlink() else ""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if link:
            raise DatasetError(f"{path}{link} points to nothing: the link is dangling. Expected {expected}.") from None
        raise DatasetError(
            f"missing file {path}: expected {expected}. Check the folder the loader was pointed at, "
            f"or place the file from the public release there."
        ) from None
    except OSError as error:  # a link loop, a name too long, a folder we may not enter
        raise DatasetError(f"{path}{link} cannot be reached ({error.strerror or error}); expected {expected}.") from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a device or other special file"
        raise DatasetError(f"{path}{link} is {kind}, not a regular file; expected {expected}.")
    return path


def _scan_text(path: Path, encoding: str) -> tuple[np.ndarray | None, bytes | None]:
    """Check that ``path`` is text that pandas can read, in one pass over its bytes.

    Returns the 1-based numbers of its non-blank lines (pandas skips whitespace-only lines) and
    its first non-blank line; ``(None, None)`` for compressions other than gzip. Raises
    :class:`DatasetError` for a file that cannot be opened or decompressed, a UTF-16 file (its
    byte-order mark) and a NUL byte (binary data, or UTF-16 without a mark), naming the line.
    """
    if path.suffix in {".bz2", ".zip", ".xz", ".zst", ".tar"}:
        return None, None
    opener = gzip.open if path.suffix == ".gz" else open
    numbers: list[int] = []
    head = None
    try:
        with opener(path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                if number == 1 and line.startswith((b"\xff\xfe", b"\xfe\xff")) and not encoding.lower().startswith("utf-16"):
                    raise DatasetError(f"{path} is UTF-16 encoded (it starts with a UTF-16 byte-order mark); "
                                       f"save it as {'UTF-8' if encoding.lower() in ('utf-8', 'utf8') else encoding}.")
                if b"\x00" in line:
                    raise DatasetError(f"{path} holds a NUL byte on line {number}: it is not a text file (binary "
                                       "data, or UTF-16 text); expected comma-separated UTF-8 text.")
                if line.strip():
                    numbers.append(number)
                    head = line if head is None else head
    except PermissionError:
        raise DatasetError(f"{path} cannot be read: permission denied (check the file's mode and owner).") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise DatasetError(f"{path} is not a readable gzip file ({error}); a .gz file must be a complete "
                           "gzip-compressed text file.") from None
    except OSError as error:
        raise DatasetError(f"{path} cannot be read ({error.strerror or error}).") from None
    return np.asarray(numbers, dtype=np.int64), head


def _refuse_duplicate_names(path: Path, head: bytes, sep: str) -> None:
    """A header naming one column twice: pandas would rename the second (``outcome.1``) and
    the run would read the first, silently."""
    names = next(csv.reader([head.decode("utf-8-sig", errors="replace").rstrip("\r\n")], delimiter=sep), [])
    seen: dict[str, int] = {}
    for position, name in enumerate((n.strip() for n in names), start=1):
        if name in seen and name:
            raise DatasetError(f"{path}: the header names column {name!r} twice (columns {seen[name]} and "
                               f"{position}); give each column its own name.")
        seen[name] = position


_TOO_MANY = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_OPEN_QUOTE = re.compile(r"EOF inside string starting at row (\d+)")


def _parser_problem(path: Path, error: pd.errors.ParserError, has_header: bool, layout: str) -> str:
    """pandas' tokenizer error as a sentence that names the file and the line."""
    text = str(error)
    if match := _TOO_MANY.search(text):
        expected, line, found = match.groups()
        first = "the header names" if has_header else "the first line has"
        return (f"{path}: line {line} has {found} fields, but {first} {expected}; "
                "quote a field that contains the separator, or remove the extra ones.")
    if match := _OPEN_QUOTE.search(text):
        return (f"{path}: a quoted field opened on line {int(match.group(1)) + 1} is never closed "
                "(a stray '\"'); close the quote or remove it.")
    return f"{path} cannot be parsed as {layout}: {text.splitlines()[-1] if text else type(error).__name__}"


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
