"""The ``train`` stage: the causal GNN and its references, the effect map, errors against the truth."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task

from recause.flows.artifacts import write_effect_map, write_training, write_truth_check
from recause.flows.stages import TASK_OPTIONS, StageResult
from recause.mlflow_config.tracking import RunTarget, lightning_logger
from recause.tasks.data import Dataset
from recause.tasks.data.split import Split
from recause.tasks.features.build import TextFeatures
from recause.tasks.train.config import TrainConfig
from recause.tasks.train.fit import ModelSet, TrainedModel, train_models
from recause.tasks.train.report import train_report


@task(name="train", **TASK_OPTIONS)
def train_task(split: Split, dataset: Dataset, config: TrainConfig, features: TextFeatures | None, seed: int,
               threads: int, folder: Path, target: RunTarget | None = None) -> StageResult[ModelSet]:
    """Fit the models; checkpoints under ``folder/checkpoints/<model>/``, the effect map in ``folder``.

    ``target``: the stage's MLflow run, which Lightning logs each model's curves into.
    """
    logger = get_run_logger()

    def progress(name: str, m: TrainedModel) -> None:
        h = m.history
        logger.info("trained %s: %s; %d epochs of %d steps (patience %d), best %s=%.4f, %.2f s/epoch", name, m.plan.note,
                    h["epochs"], h["steps_per_epoch"], h["patience"], m.plan.monitor, h[f"best_{m.plan.monitor}"],
                    h["seconds_per_epoch"])
        if "item_offsets" in h:
            logger.info("%s: %s", name, h["item_offsets"])
        if "uplift_calibration" in h:
            logger.info("%s uplift: %s", name, h["uplift_calibration"])

    models = train_models(split, dataset.meta, config, features, seed=seed, threads=threads,
                          logger_for=lambda name: lightning_logger(target, name),
                          checkpoint_root=folder / "checkpoints", on_model=progress)
    report = train_report(models, split, dataset, features)
    files = sorted((folder / "checkpoints").glob("*/best.ckpt"))
    if report.effect_map is not None:
        files += write_effect_map(report.effect_map, folder)
    files += write_training(report.curves, {name: m.plan.monitor for name, m in models.models.items()}, folder)
    if report.truth is not None:
        files += write_truth_check(report.truth.calibration, report.truth.uplift_sample, folder)
    return StageResult(models, report.metrics, tuple(files))
