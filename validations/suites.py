"""What valid data looks like: the column kinds per table and the expectation suite of each table.

The suites are declarative lists of Great Expectations 1.x expectations, built from the table's
columns and the dataset's metadata (outcome kind, whether timestamps exist, the key columns)
and, for interactions, the ids of the accepted items and users. Running them lives in
:mod:`recause.validations.engine`.
"""

from __future__ import annotations

from typing import Any, Literal

import great_expectations.expectations as gxe
import numpy as np
import pandas as pd

from recause.tasks.data.schema import (
    INTERACTION_OPTIONAL,
    INTERACTION_REQUIRED,
    ITEM_OPTIONAL,
    ITEM_REQUIRED,
    PROVENANCE,
    USER_OPTIONAL,
    USER_REQUIRED,
    DatasetMeta,
)

ColumnKind = Literal["id", "float", "bool", "int", "timestamp", "text"]

COLUMN_KINDS: dict[str, dict[str, ColumnKind]] = {
    "interactions": {
        "user_id": "id",
        "item_id": "id",
        "timestamp": "timestamp",
        "exposed": "bool",
        "outcome": "float",
        "position": "int",
        "propensity": "float",
        "policy": "text",
        "query": "text",
    },
    "items": {"item_id": "id", "title": "text", "text": "text", "categories": "text"},
    "users": {"user_id": "id", "profile_text": "text"},
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "interactions": INTERACTION_REQUIRED,
    "items": ITEM_REQUIRED,
    "users": USER_REQUIRED,
}
OPTIONAL: dict[str, tuple[str, ...]] = {
    "interactions": INTERACTION_OPTIONAL,
    "items": ITEM_OPTIONAL,
    "users": USER_OPTIONAL,
}
KEYS = {"items": "item_id", "users": "user_id"}

# U+FFFD is what a non-UTF-8 byte becomes when a loader reads text (encoding_errors="replace").
NOT_UTF8 = "\ufffd"

# Expectations whose failure concerns the table as a whole; every other one names rows.
TABLE_LEVEL = frozenset(
    {
        "expect_column_to_exist",
        "expect_table_row_count_to_be_between",
        "expect_column_unique_value_count_to_be_between",
    }
)


def text_columns(frame: pd.DataFrame) -> list[str]:
    """Columns holding strings (declared text columns and any other object/string column)."""
    return [
        c
        for c in frame.columns
        if c not in PROVENANCE
        and (pd.api.types.is_string_dtype(frame[c]) or pd.api.types.is_object_dtype(frame[c]))
    ]


def suite_for(
    table: str,
    frame: pd.DataFrame,
    meta: DatasetMeta,
    *,
    min_rows: int = 1,
    known_ids: dict[str, np.ndarray] | None = None,
    min_distinct: dict[str, int] | None = None,
) -> list[Any]:
    """The expectations for ``table`` as loaded (columns present decide the optional checks).

    ``known_ids`` maps ``user_id``/``item_id`` to the accepted ids of the users/items tables;
    ``min_distinct`` maps a column to the fewest distinct values the run needs.
    """
    present = set(frame.columns)
    out: list[Any] = [gxe.ExpectTableRowCountToBeBetween(min_value=min_rows)]
    out += [gxe.ExpectColumnToExist(column=c) for c in REQUIRED[table]]
    for column, count in (min_distinct or {}).items():
        if column in present:
            out.append(gxe.ExpectColumnUniqueValueCountToBeBetween(column=column, min_value=count))

    for column in REQUIRED[table]:
        if column in present and not (column == "timestamp" and not meta.has_timestamps):
            out.append(gxe.ExpectColumnValuesToNotBeNull(column=column))
    if table in KEYS and KEYS[table] in present:
        out.append(gxe.ExpectColumnValuesToBeUnique(column=KEYS[table]))
    for column, ids in (known_ids or {}).items():
        if column in present:
            out.append(gxe.ExpectColumnValuesToBeInSet(column=column, value_set=ids.tolist()))
    if table == "interactions":
        out += _interaction_checks(present, meta)
    out += [gxe.ExpectColumnValuesToNotMatchRegex(column=c, regex=NOT_UTF8) for c in text_columns(frame)]
    return out


def _interaction_checks(present: set[str], meta: DatasetMeta) -> list[Any]:
    out: list[Any] = []
    low, high = meta.outcome_range
    if "outcome" in present:
        if meta.outcome_kind == "binary":
            out.append(gxe.ExpectColumnValuesToBeInSet(column="outcome", value_set=[low, high]))
        else:
            out.append(gxe.ExpectColumnValuesToBeBetween(column="outcome", min_value=low, max_value=high))
    if "propensity" in present:
        out.append(gxe.ExpectColumnValuesToBeBetween(column="propensity", min_value=0.0, max_value=1.0, strict_min=True))
        if "exposed" in present:
            out.append(
                gxe.ExpectColumnValuesToNotBeNull(
                    column="propensity", row_condition="exposed==True", condition_parser="pandas"
                )
            )
    if "position" in present:
        out.append(gxe.ExpectColumnValuesToBeBetween(column="position", min_value=1))
    key = [c for c in meta.key_columns if c in present]
    if len(key) == len(meta.key_columns) and len(key) >= 2:
        out.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=key))
    elif len(key) == len(meta.key_columns) == 1:
        out.append(gxe.ExpectColumnValuesToBeUnique(column=key[0]))
    return out


def describe(expectation_type: str, kwargs: dict[str, Any]) -> str:
    """A short human reading of an expectation, for reports."""
    column = kwargs.get("column")
    match expectation_type:
        case "expect_column_to_exist":
            return f"column {column!r} must exist"
        case "expect_table_row_count_to_be_between":
            return f"the table must have at least {kwargs.get('min_value')} row(s)"
        case "expect_column_unique_value_count_to_be_between":
            return f"column {column!r} needs at least {kwargs.get('min_value')} distinct values"
        case "expect_column_values_to_not_be_null":
            cond = kwargs.get("row_condition")
            return f"{column!r} must not be missing" + (f" where {cond}" if cond else "")
        case "expect_column_values_to_be_unique":
            return f"{column!r} must be unique (duplicate keys)"
        case "expect_compound_columns_to_be_unique":
            return f"the key ({', '.join(kwargs['column_list'])}) must be unique (duplicate rows)"
        case "expect_column_values_to_be_in_set":
            if column in ("user_id", "item_id"):
                table = "users" if column == "user_id" else "items"
                return f"{column!r} must refer to a known row of {table} (unknown or quarantined)"
            return f"{column!r} must be one of {kwargs.get('value_set')}"
        case "expect_column_values_to_be_between":
            low, high = kwargs.get("min_value"), kwargs.get("max_value")
            left = "(" if kwargs.get("strict_min") else "["
            return f"{column!r} must lie in {left}{low}, {'∞' if high is None else high}]"
        case "expect_column_values_to_not_match_regex":
            return f"{column!r} must be valid UTF-8 text (found undecodable bytes)"
    return f"{expectation_type} on {column!r}"
