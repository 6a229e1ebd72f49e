"""Quarantine: the rows that failed a check, kept whole and explained, never silently dropped.

The quarantine table has one row per (failed row, failed check): the table, the source file and
line, the column and check that failed, a human reading of the check, the offending value, and
the complete original row as JSON, so nothing is lost and a fixed file can be reloaded.
"""

from __future__ import annotations

import pandas as pd

from recause.tasks.data.schema import SOURCE_FILE, SOURCE_ROW
from recause.validations.results import Failure

QUARANTINE_COLUMNS = ("table", "source_file", "source_row", "column", "check", "detail", "value", "record")


def quarantine_frame(tables: dict[str, pd.DataFrame], failures: list[Failure]) -> pd.DataFrame:
    """Rows of ``tables`` (as loaded, before coercion) named by the row-level ``failures``."""
    parts = []
    for failure in failures:
        if failure.level != "row" or failure.count == 0:
            continue
        frame = tables[failure.table]
        rows = frame.loc[failure.rows]
        column = failure.column if failure.column in frame.columns else None
        parts.append(
            pd.DataFrame(
                {
                    "table": failure.table,
                    "source_file": rows[SOURCE_FILE].astype("string").to_numpy() if SOURCE_FILE in rows else None,
                    "source_row": rows[SOURCE_ROW].to_numpy() if SOURCE_ROW in rows else failure.rows.to_numpy(),
                    "column": failure.column,
                    "check": failure.check,
                    "detail": failure.detail,
                    "value": rows[column].astype("string").to_numpy() if column else None,
                    "record": _records(rows),
                }
            )
        )
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="string") for c in QUARANTINE_COLUMNS}).astype({"source_row": "int64"})
    out = pd.concat(parts, ignore_index=True)
    return out.astype({c: "string" for c in QUARANTINE_COLUMNS if c != "source_row"}).astype({"source_row": "int64"})


def failed_rows(failures: list[Failure], table: str) -> pd.Index:
    """Index labels of ``table`` named by any row-level failure."""
    labels = [f.rows for f in failures if f.table == table and f.level == "row"]
    return labels[0].append(labels[1:]).unique() if labels else pd.Index([])


def _records(rows: pd.DataFrame) -> list[str]:
    body = rows.drop(columns=[c for c in (SOURCE_FILE, SOURCE_ROW) if c in rows.columns])
    return [line for line in body.to_json(orient="records", lines=True, date_format="iso", default_handler=str).splitlines()]
