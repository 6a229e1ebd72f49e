"""Validation results as plain data: failures, per-table verdicts, the whole report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pandas as pd


@dataclass(frozen=True)
class Failure:
    """One failed check on one table.

    ``rows`` are index labels of the table as loaded (empty for table-level failures);
    ``samples`` a few offending values as text; ``detail`` a short human reading of the check.
    """

    table: str
    column: str | None
    check: str
    level: Literal["row", "table"]
    detail: str
    rows: pd.Index = field(default_factory=lambda: pd.Index([]))
    samples: tuple[str, ...] = ()
    observed: str | None = None

    @property
    def count(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class TableVerdict:
    """Counts for one table: rows read, rows quarantined, and whether the table may be used."""

    table: str
    source: str
    n_rows: int
    n_quarantined: int
    table_failures: int

    @property
    def failed_fraction(self) -> float:
        return self.n_quarantined / self.n_rows if self.n_rows else 0.0


@dataclass(frozen=True)
class ValidationReport:
    """The verdict on a dataset. ``passed`` is false when any table-level check failed or a
    table's quarantined fraction exceeds ``max_failed_fraction``."""

    dataset: str
    tables: tuple[TableVerdict, ...]
    failures: tuple[Failure, ...]
    max_failed_fraction: float
    n_expectations: int

    @property
    def table_level_failures(self) -> tuple[Failure, ...]:
        return tuple(f for f in self.failures if f.level == "table")

    @property
    def over_threshold(self) -> tuple[TableVerdict, ...]:
        return tuple(t for t in self.tables if t.failed_fraction > self.max_failed_fraction)

    @property
    def passed(self) -> bool:
        return not self.table_level_failures and not self.over_threshold

    @property
    def n_quarantined(self) -> int:
        return sum(t.n_quarantined for t in self.tables)

    def metrics(self) -> dict[str, float | int | bool]:
        """Numbers for MLflow and the summary: ``validation/...``."""
        n_rows = sum(t.n_rows for t in self.tables)
        out: dict[str, float | int | bool] = {
            "validation/passed": self.passed,
            "validation/n_expectations": self.n_expectations,
            "validation/n_failed_checks": len(self.failures),
            "validation/n_quarantined": self.n_quarantined,
            "validation/pass_rate": 1.0 - self.n_quarantined / n_rows if n_rows else 1.0,
        }
        for t in self.tables:
            out[f"validation/{t.table}/n_rows"] = t.n_rows
            out[f"validation/{t.table}/n_quarantined"] = t.n_quarantined
        return out
