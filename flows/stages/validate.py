"""The ``validate`` stage: expectation suites per table, quarantine, reports; the accepted data or None."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from recause.flows.artifacts import write_validation
from recause.flows.stages import TASK_OPTIONS, StageResult
from recause.tasks.data import Dataset
from recause.validations.config import ValidationConfig
from recause.validations.run import validate_dataset


@task(name="validate", **TASK_OPTIONS)
def validate_task(dataset: Dataset, config: ValidationConfig, folder: Path) -> StageResult[Dataset]:
    """The accepted rows (value None when the data fail), the report's metrics, report files in ``folder``."""
    outcome = validate_dataset(dataset, config)
    files = write_validation(outcome, folder, config.data_docs)
    metrics = outcome.report.metrics() | {"validation/report": outcome.console}
    return StageResult(outcome.dataset if outcome.report.passed else None, metrics, files.paths(), (outcome.console,))
