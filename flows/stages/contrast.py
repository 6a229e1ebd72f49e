"""The ``contrast`` stage: interventions against the control on the logged rounds."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from recause.flows.artifacts import write_contrast
from recause.flows.shards import shard_map
from recause.flows.stages import TASK_OPTIONS, StageResult
from recause.tasks.contrast.config import ContrastConfig
from recause.tasks.contrast.interventions import ItemEdit
from recause.tasks.contrast.result import ContrastResult
from recause.tasks.contrast.sources import outcome_label
from recause.tasks.contrast.stage import run_contrast
from recause.tasks.data import Dataset
from recause.tasks.data.split import Split
from recause.tasks.evaluate import PolicySet
from recause.tasks.features.build import TextFeatures
from recause.tasks.simulate.stage import SimulateResult
from recause.flows.stages.features import EncoderSettings


@task(name="contrast", **TASK_OPTIONS)
def contrast_task(split: Split, dataset: Dataset, policy_sets: list[PolicySet], features: TextFeatures | None,
                  config: ContrastConfig, folder: Path, seed: int, simulation: SimulateResult | None = None,
                  encoder: EncoderSettings | None = None) -> StageResult[ContrastResult]:
    """The comparison (None, with the reason, when the data cannot support it); tables and plots in ``folder``.

    ``simulation``: the simulate stage's result (values beside the estimators', the feature edits);
    ``encoder``: how to load the text encoder when an item edit needs new text embedded. Its shards
    (estimators, the simulator's policies and edits) go to the run's task runner (:func:`~recause.flows.shards.shard_map`).
    """
    embed = None
    if encoder is not None and simulation is not None and any(isinstance(s, ItemEdit) for s in config.interventions):
        embed = encoder.embed()
    with shard_map() as map_shards:
        result = run_contrast(split, dataset, policy_sets, features, config, seed, simulation, embed, map_shards)
    if isinstance(result, str):
        return StageResult(None, {"contrast/skipped": result}, notes=(f"contrastive evaluation skipped: {result}",))
    metrics = result.metrics | {"interventions/verdicts": "\n".join(result.verdicts), "contrast/outcome": outcome_label(dataset.meta)}
    files = write_contrast(result, folder, outcome_label(dataset.meta))
    return StageResult(result, metrics, tuple(files), tuple(result.verdicts))
