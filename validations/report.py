"""Human and machine readings of a validation: a short console report and a JSON document."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from recause.validations.results import Failure, ValidationReport

MAX_LINES_SHOWN = 8


def failure_paragraph(failure: Failure, quarantine: pd.DataFrame, source: str) -> str:
    """One paragraph naming table, file(s), column, what was expected and the offending rows."""
    column = f", column {failure.column!r}" if failure.column else ""
    if failure.level == "table":
        observed = f" (found: {failure.observed})" if failure.observed is not None else ""
        return f"{failure.table} [{source}]{column}: {failure.detail}{observed}. The run cannot use this table until it is fixed."
    mine = quarantine[
        (quarantine["table"] == failure.table)
        & (quarantine["check"] == failure.check)
        & (quarantine["column"].fillna("") == (failure.column or ""))
    ]
    places = []
    for file, group in mine.groupby("source_file", sort=False, dropna=False):
        lines = group["source_row"].tolist()
        shown = ", ".join(map(str, lines[:MAX_LINES_SHOWN])) + (f" and {len(lines) - MAX_LINES_SHOWN} more" if len(lines) > MAX_LINES_SHOWN else "")
        places.append(f"{file} line{'s' if len(lines) > 1 else ''} {shown}")
    values = f"; values: {', '.join(failure.samples)}" if failure.samples else ""
    where = "; ".join(places) or source
    return (
        f"{failure.table}{column}: {failure.detail} — {failure.count} row{'s' if failure.count != 1 else ''} "
        f"failed ({where}{values}); quarantined."
    )


def console_report(report: ValidationReport, quarantine: pd.DataFrame, sources: dict[str, str]) -> str:
    """The short report printed to the console and stored as the run's validation summary."""
    verdict = "passed" if report.passed else "FAILED"
    head = (
        f"Validation of {report.dataset!r}: {verdict} — {report.n_expectations} checks, "
        f"{len(report.failures)} failed, {report.n_quarantined} row(s) quarantined "
        f"(allowed per table: {report.max_failed_fraction:.1%})."
    )
    paragraphs = [head]
    paragraphs += ["  - " + failure_paragraph(f, quarantine, sources.get(f.table, f.table)) for f in report.failures]
    for table in report.over_threshold:
        paragraphs.append(
            f"  - {table.table}: {table.n_quarantined} of {table.n_rows} rows ({table.failed_fraction:.2%}) failed, "
            f"above the allowed {report.max_failed_fraction:.2%} (validation.max_failed_fraction); the run stops."
        )
    return "\n".join(paragraphs)


def report_document(report: ValidationReport, quarantine: pd.DataFrame, sources: dict[str, str]) -> dict[str, Any]:
    """A JSON-ready document of the whole validation (the machine-readable report artifact)."""
    return {
        "dataset": report.dataset,
        "passed": report.passed,
        "max_failed_fraction": report.max_failed_fraction,
        "n_expectations": report.n_expectations,
        "tables": [
            {
                "table": t.table,
                "source": t.source,
                "n_rows": t.n_rows,
                "n_quarantined": t.n_quarantined,
                "failed_fraction": t.failed_fraction,
                "table_level_failures": t.table_failures,
            }
            for t in report.tables
        ],
        "failures": [
            {
                "table": f.table,
                "column": f.column,
                "check": f.check,
                "level": f.level,
                "detail": f.detail,
                "count": f.count,
                "samples": list(f.samples),
                "observed": f.observed,
                "message": failure_paragraph(f, quarantine, sources.get(f.table, f.table)),
            }
            for f in report.failures
        ],
    }


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, default=str)
