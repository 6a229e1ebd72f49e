"""The ``simulate`` stage: the user simulator fitted on the training split, its fidelity measured."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task

from recause.flows.artifacts import write_simulation
from recause.flows.stages import TASK_OPTIONS, StageResult
from recause.mlflow_config.tracking import RunTarget, lightning_logger
from recause.tasks.data import Dataset
from recause.tasks.data.split import Split
from recause.tasks.features.build import TextFeatures
from recause.tasks.simulate.config import SimulateConfig
from recause.tasks.simulate.stage import SimulateResult, run_simulate
from recause.tasks.train.fit import ModelSet


@task(name="simulate", **TASK_OPTIONS)
def simulate_task(split: Split, dataset: Dataset, features: TextFeatures | None, models: ModelSet | None,
                  config: SimulateConfig, seed: int, threads: int, folder: Path,
                  target: RunTarget | None = None) -> StageResult[SimulateResult]:
    """Fit the simulator (on the causal GNN's states when the train stage ran) and report its fidelity
    in ``folder``; ``target``: the stage's MLflow run, which Lightning logs each member's curves into."""
    logger = get_run_logger()

    def progress(member: int, fitted) -> None:
        h = fitted.history
        # epoch -1 is the start, the causal GNN's outcome heads, kept when no fine-tuning epoch beat it
        where = "the start (the causal GNN's heads)" if h["best_epoch"] < 0 else f"epoch {int(h['best_epoch'])}"
        logger.info("simulator member %d: %d epochs, best val/loss %.4f at %s, %.1f s", member, h["epochs"],
                    h["best_val/loss"], where, h["seconds"])

    gnn = models.causal if models is not None else None
    result = run_simulate(split, dataset, features, gnn, config, seed=seed, threads=threads,
                          logger_for=lambda name: lightning_logger(target, name), checkpoint_root=folder / "checkpoints",
                          on_member=progress)
    if isinstance(result, str):
        return StageResult(None, {"simulate/skipped": result}, notes=(f"simulator not fitted: {result}",))
    seconds = {k.rsplit("/", 1)[1]: v for k, v in result.metrics.items() if k.startswith("simulator/seconds/")}
    logger.info("simulator fitted and checked: %s", ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()))
    files = sorted((folder / "checkpoints").glob("*/best.ckpt")) + write_simulation(result, folder)
    return StageResult(result, result.metrics, tuple(files), (f"simulator fidelity {result.fidelity.reason}",))
