"""Validate a dataset: coerce, run each table's suite, quarantine failed rows, decide.

Order matters: items and users are validated first, and interactions are then checked against
the *accepted* ids, so an interaction that points at a missing or quarantined item is itself
quarantined with a message that says so. Last, the accepted interactions must leave the stages
something to learn from (:mod:`recause.validations.learnable`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from recause.tasks.data.schema import Dataset
from recause.validations.coerce import align_id_kinds, coerce_table
from recause.validations.config import ValidationConfig
from recause.validations.engine import GxSession
from recause.validations.learnable import learnability_failures
from recause.validations.quarantine import failed_rows, quarantine_frame
from recause.validations.report import console_report, report_document
from recause.validations.results import Failure, TableVerdict, ValidationReport
from recause.validations.suites import KEYS, suite_for


@dataclass(frozen=True)
class ValidationOutcome:
    """The verdict, the accepted data (coerced types, failed rows removed) and the quarantine.

    ``dataset`` holds only accepted rows; ``quarantine`` one row per (failed row, check);
    ``session`` can render the HTML Data Docs.
    """

    report: ValidationReport
    dataset: Dataset
    quarantine: pd.DataFrame
    console: str
    document: dict
    session: GxSession


def validate_dataset(dataset: Dataset, config: ValidationConfig) -> ValidationOutcome:
    """Run every suite on ``dataset`` (never mutated) and return the outcome; raises nothing on bad data."""
    meta = dataset.meta
    session = GxSession(meta.name)
    loaded = {name: _unique_index(dataset.table(name)) for name in ("items", "users", "interactions")}
    coerced: dict[str, pd.DataFrame] = {}
    failures: list[Failure] = []
    for name in ("items", "users", "interactions"):
        frame, parse_failures = coerce_table(name, loaded[name])
        coerced[name] = frame
        failures += parse_failures
    coerced = align_id_kinds(coerced)

    accepted: dict[str, pd.DataFrame] = {}
    for name in ("items", "users"):
        minimum = config.min_items if name == "items" else config.min_users
        failures += session.run(name, coerced[name], suite_for(name, coerced[name], meta, min_rows=minimum))
        accepted[name] = coerced[name].drop(index=failed_rows(failures, name))

    known = {f"{t[:-1]}_id": accepted[t][KEYS[t]].dropna().to_numpy() for t in ("items", "users") if KEYS[t] in accepted[t]}
    distinct = {"user_id": config.min_users, "item_id": config.min_items}
    failures += session.run(
        "interactions",
        coerced["interactions"],
        suite_for("interactions", coerced["interactions"], meta, known_ids=known, min_distinct=distinct),
    )
    accepted["interactions"] = coerced["interactions"].drop(index=failed_rows(failures, "interactions"))
    failures += learnability_failures(accepted["interactions"], meta, config.min_randomized_rows)

    quarantine = quarantine_frame(loaded, failures)
    verdicts = tuple(
        TableVerdict(
            table=name,
            source=meta.sources.get(name, name),
            n_rows=len(loaded[name]),
            n_quarantined=len(failed_rows(failures, name)),
            table_failures=sum(1 for f in failures if f.table == name and f.level == "table"),
        )
        for name in ("interactions", "items", "users")
    )
    report = ValidationReport(meta.name, verdicts, tuple(failures), config.max_failed_fraction, session.n_expectations)
    clean = dataset.with_tables(**{name: frame.reset_index(drop=True) for name, frame in accepted.items()})
    return ValidationOutcome(
        report=report,
        dataset=clean,
        quarantine=quarantine,
        console=console_report(report, quarantine, meta.sources),
        document=report_document(report, quarantine, meta.sources),
        session=session,
    )


def _unique_index(frame: pd.DataFrame) -> pd.DataFrame:
    return frame if frame.index.is_unique else frame.reset_index(drop=True)
