"""The ``load`` stage: read the configured dataset into its three tables and metadata."""

from __future__ import annotations

from prefect import task

from recause.flows.stages import TASK_OPTIONS, StageResult
from recause.models.world.scm import WorldConfig
from recause.tasks.data import DataConfig, Dataset, load_configured


@task(name="load", **TASK_OPTIONS)
def load_task(data: DataConfig, world: WorldConfig, seed: int) -> StageResult[Dataset]:
    dataset = load_configured(data, world, seed)
    return StageResult(dataset, dataset.summary(), notes=tuple(f"{dataset.meta.name}: {n}" for n in dataset.meta.notes))
