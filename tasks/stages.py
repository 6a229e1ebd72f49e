"""The pipeline's Prefect tasks: thin wrappers that call the pure stage functions and write
their files. All of the pipeline's file I/O happens here (and in the flow), nowhere deeper.

Tasks exchange in-memory objects within one flow run, so caching is off (``NO_CACHE``): hashing
large frames for cache keys would cost more than the work. Modules with the pure functions do
not import Prefect, so ``models/`` and ``tasks.datasets`` run where Prefect is not installed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.baselines import BaselineSet, BaselinesConfig, build_baselines
from models.world import WorldConfig
from tasks.datasets import DataConfig, Dataset, load_configured
from tasks.evaluate import Evaluation, EvaluationConfig, evaluate_baselines, logging_policy_truth
from tasks.split import Split, SplitConfig, split_dataset
from validations.config import ValidationConfig
from validations.report import dumps
from validations.run import ValidationOutcome, validate_dataset

TASK_OPTIONS = {"cache_policy": NO_CACHE, "persist_result": False}


@task(name="load", **TASK_OPTIONS)
def load_task(data: DataConfig, world: WorldConfig, seed: int) -> Dataset:
    return load_configured(data, world, seed)


@dataclass(frozen=True)
class ValidationFiles:
    folder: Path
    report_text: Path
    report_json: Path
    quarantine: Path
    data_docs: Path | None


def write_validation(outcome: ValidationOutcome, folder: Path, data_docs: bool) -> ValidationFiles:
    """The console report, the JSON report, the quarantine parquet and (optionally) Data Docs."""
    folder.mkdir(parents=True, exist_ok=True)
    text, doc, quarantine = folder / "report.txt", folder / "report.json", folder / "quarantine.parquet"
    text.write_text(outcome.console + "\n")
    doc.write_text(dumps(outcome.document))
    outcome.quarantine.to_parquet(quarantine, index=False)
    docs = outcome.session.build_data_docs(folder / "data_docs") if data_docs else None
    return ValidationFiles(folder, text, doc, quarantine, docs)


@task(name="validate", **TASK_OPTIONS)
def validate_task(dataset: Dataset, config: ValidationConfig, folder: Path) -> tuple[ValidationOutcome, ValidationFiles]:
    outcome = validate_dataset(dataset, config)
    return outcome, write_validation(outcome, folder, config.data_docs)


@task(name="split", **TASK_OPTIONS)
def split_task(dataset: Dataset, config: SplitConfig, seed: int) -> Split:
    return split_dataset(dataset, config, seed)


@task(name="baselines", **TASK_OPTIONS)
def baselines_task(split: Split, dataset: Dataset, config: BaselinesConfig, seed: int) -> BaselineSet:
    return build_baselines(split, dataset, config, seed)


@task(name="evaluate", **TASK_OPTIONS)
def evaluate_task(baselines: BaselineSet, split: Split, config: EvaluationConfig, dataset: Dataset, folder: Path) -> tuple[Evaluation, Path]:
    evaluation = evaluate_baselines(baselines, split, config, dataset.world)
    if dataset.world is not None:
        evaluation = replace(evaluation, reference=logging_policy_truth(dataset.world, split))
    folder.mkdir(parents=True, exist_ok=True)
    table = folder / "baselines.csv"
    rows = [{"policy": name, "part": "test", **m} for name, m in evaluation.test.items()]
    rows += [{"policy": name, "part": "val", **m} for name, m in evaluation.val.items()]
    pd.DataFrame(rows).to_csv(table, index=False)
    return evaluation, table


def write_summary(summary: dict, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "summary.json"
    path.write_text(json.dumps(summary, indent=2, default=str, sort_keys=True))
    return path
