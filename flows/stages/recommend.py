"""The ``recommend`` stage: top-K per user with reasons, written as ``recommendations.parquet``."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from recause.flows.files import atomic_path
from recause.flows.stages import TASK_OPTIONS, StageResult
from recause.tasks.contrast.config import ContrastConfig
from recause.tasks.data import Dataset
from recause.tasks.data.split import Split
from recause.tasks.evaluate import PolicySet
from recause.tasks.features.build import TextFeatures
from recause.tasks.recommend.config import RecommendConfig
from recause.tasks.recommend.stage import Recommendations, run_recommend
from recause.tasks.train.fit import ModelSet


@task(name="recommend", **TASK_OPTIONS)
def recommend_task(config: RecommendConfig, split: Split, dataset: Dataset, models: ModelSet | None,
                   policy_sets: list[PolicySet], features: TextFeatures | None, contrast: ContrastConfig | None,
                   contrast_metrics: dict, seed: int, folder: Path) -> StageResult[Recommendations]:
    """The lists in ``folder/recommendations.parquet``; metrics name the strategy and any fallback."""
    result = run_recommend(config, split, dataset, models, policy_sets, features, contrast, contrast_metrics, seed)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "recommendations.parquet"
    with atomic_path(path) as temp:
        result.lists.to_parquet(temp, index=False)
    notes = [f"recommendations: top {int(result.metrics['recommend/k'])} for {int(result.metrics['recommend/n_users'])} users "
             f"by {result.metrics['recommend/strategy']} -> {path}"]
    if "recommend/fallback" in result.metrics:
        notes.append(f"recommend: fell back to {result.metrics['recommend/strategy']} ({result.metrics['recommend/fallback']})")
    return StageResult(result, result.metrics, (path,), tuple(notes))
