"""The ``evaluate`` stage: every policy through the harness; the best non-oracle becomes the model."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from recause.flows.artifacts import write_evaluation
from recause.flows.shards import shard_map
from recause.flows.stages import TASK_OPTIONS, StageResult
from recause.tasks.data import Dataset
from recause.tasks.data.split import Split
from recause.tasks.evaluate import Evaluation, EvaluationConfig, PolicySet, evaluate_policies


@task(name="evaluate", **TASK_OPTIONS)
def evaluate_task(policy_sets: list[PolicySet], split: Split, config: EvaluationConfig, dataset: Dataset,
                  folder: Path) -> StageResult[Evaluation]:
    with shard_map(local_cluster=False) as map_shards:  # in order on a local cluster: see shard_map
        evaluation = evaluate_policies(policy_sets, split, config, dataset.world, map_shards)  # one shard per policy
    return StageResult(evaluation, evaluation.summary(dataset.meta, config), (write_evaluation(evaluation, folder),))
