"""The ``baselines`` stage: reference policies from the training split and the data's known facts."""

from __future__ import annotations

from prefect import task

from recause.flows.stages import TASK_OPTIONS, StageResult
from recause.tasks.baselines import BaselinesConfig, build_baselines
from recause.tasks.data import Dataset
from recause.tasks.data.split import Split
from recause.tasks.evaluate import PolicySet
from recause.tasks.features.build import TextFeatures


@task(name="baselines", **TASK_OPTIONS)
def baselines_task(split: Split, dataset: Dataset, config: BaselinesConfig, seed: int,
                   features: TextFeatures | None = None) -> StageResult[PolicySet]:
    baselines = build_baselines(split, dataset, config, seed, features)
    notes = tuple(f"baseline {name} skipped: {reason}" for name, reason in baselines.skipped.items())
    return StageResult(baselines, notes=notes)
