"""The ``split`` stage: integer indices and train / validation / test parts."""

from __future__ import annotations

from prefect import task

from recause.flows.stages import TASK_OPTIONS, StageResult
from recause.tasks.data import Dataset
from recause.tasks.data.split import Split, SplitConfig, split_dataset


@task(name="split", **TASK_OPTIONS)
def split_task(dataset: Dataset, config: SplitConfig, seed: int) -> StageResult[Split]:
    split = split_dataset(dataset, config, seed)
    return StageResult(split, split.sizes())
