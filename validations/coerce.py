"""Bring loaded columns to the kinds the schema declares, and say which values could not be.

Loaders keep their sources' dtypes (a CSV column with one stray word arrives as text). Coercion
converts each declared column; a value that was present but cannot be read as its kind (``"abc"``
as an outcome, ``"yesterday"`` as a timestamp) becomes a row-level :class:`Failure` and the row
is quarantined later — it is never silently turned into a missing value and kept.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recause.validations.results import Failure
from recause.validations.suites import COLUMN_KINDS, ColumnKind

_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}


def coerce_table(table: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, list[Failure]]:
    """A copy of ``frame`` with declared columns converted, and the values that did not convert."""
    out = frame.copy()
    failures: list[Failure] = []
    for column, kind in COLUMN_KINDS[table].items():
        if column not in out.columns:
            continue
        converted, bad = _convert(out[column], kind)
        out[column] = converted
        if bad.any():
            failures.append(
                Failure(
                    table=table,
                    column=column,
                    check=f"parse_as_{kind}",
                    level="row",
                    detail=f"{column!r} must be readable as {_KIND_WORDS[kind]}",
                    rows=frame.index[bad.to_numpy()],
                    samples=tuple(map(str, frame.loc[bad, column].head(5))),
                )
            )
    return out, failures


_KIND_WORDS = {
    "id": "an id",
    "float": "a number",
    "int": "a whole number",
    "bool": "true/false",
    "timestamp": f"a date-time between {pd.Timestamp.min:%Y-%m-%d} and {pd.Timestamp.max:%Y-%m-%d} (UTC)",
    "text": "text",
}


def _convert(values: pd.Series, kind: ColumnKind) -> tuple[pd.Series, pd.Series]:
    """(converted, mask of values present before but unreadable now)."""
    present = values.notna()
    match kind:
        case "float":
            converted = pd.to_numeric(values, errors="coerce").astype("float64")
        case "int":
            numeric = pd.to_numeric(values, errors="coerce")
            converted = numeric.where(_whole_int64(numeric)).astype("Int64")
        case "bool":
            converted = _to_bool(values)
        case "timestamp":
            converted = _to_timestamp(values)
        case "text":
            converted = values.astype("string")
        case "id":
            converted = _to_id(values)
    bad = present & converted.isna()
    return converted, bad


def _to_bool(values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values) and not values.isna().any():
        return values.astype("boolean")
    text = values.astype("string").str.strip().str.lower()
    out = pd.Series(pd.NA, index=values.index, dtype="boolean")
    out[text.isin(_TRUE).fillna(False)] = True
    out[text.isin(_FALSE).fillna(False)] = False
    return out


def _to_timestamp(values: pd.Series) -> pd.Series:
    """UTC date-times at nanosecond resolution (numbers are Unix seconds)."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        out = values.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(values):
        out = values.dt.tz_localize("UTC")
    elif pd.api.types.is_numeric_dtype(values):
        out = pd.to_datetime(values, unit="s", utc=True, errors="coerce")
    else:
        out = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
    # pandas keeps dates outside nanoseconds' range (years before 1677 or after 2262) at coarser
    # units; the stages need nanoseconds, so those values are unreadable here, not a crash later
    low, high = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
    return out.where(out.isna() | ((out >= low) & (out <= high))).astype("datetime64[ns, UTC]")


def _to_id(values: pd.Series) -> pd.Series:
    """Integral numbers become Int64; anything else becomes a string id."""
    if pd.api.types.is_integer_dtype(values):
        if values.dtype.kind == "u" and (values.dropna() >= 2**63).any():  # beyond int64: keep them exact, as text
            return values.astype("string")
        return values.astype("Int64")
    numeric = pd.to_numeric(values, errors="coerce")
    if pd.api.types.is_numeric_dtype(values) or numeric.notna().sum() == values.notna().sum():
        if _whole_int64(numeric).sum() == values.notna().sum():
            return numeric.astype("Int64")
    return values.astype("string")


def _whole_int64(numeric: pd.Series) -> pd.Series:
    """Values that are whole numbers an int64 holds (not inf, not 1e30)."""
    as_float = numeric.astype("float64")
    return (as_float == np.round(as_float)) & (as_float.abs() < 2.0**63)


def align_id_kinds(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Make ``user_id``/``item_id`` the same kind in every table (strings if any table has strings)."""
    out = dict(frames)
    for column in ("user_id", "item_id"):
        holders = [name for name, f in out.items() if column in f.columns]
        if any(pd.api.types.is_string_dtype(out[name][column]) for name in holders):
            for name in holders:
                frame = out[name].copy()
                frame[column] = frame[column].astype("string")
                out[name] = frame
    return out
