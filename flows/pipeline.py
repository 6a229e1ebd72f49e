"""The Recause pipeline: one Prefect flow run = one MLflow parent run with a nested run per stage.

Stages: ``load → validate → split → features → baselines → train → evaluate → contrast``. Each stage is a Prefect task over a
pure function (:mod:`tasks.stages`); this module wires them, tracks them and writes the summary.
The causal GNN (``train``) adds its policies (debiased relevance, uplift, the naive and
T-learner references) to the baselines, so one harness scores them all.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run
from prefect.states import Completed, Failed

from flows.config import PROJECT_ROOT, PipelineConfig
from flows.provenance import data_hash, git_commit, package_versions
from mlflow_config.tracking import RunTracker, artifact_location, experiment_name, tracking_uri
from tasks.stages import (
    baselines_task,
    contrast_task,
    evaluate_task,
    features_task,
    load_task,
    split_task,
    train_task,
    validate_task,
    write_summary,
)

KEY_METRICS = (
    "model/name",
    "ranking/recall_at_20",
    "ranking/ndcg_at_20",
    "debias/auc",
    "debias/ndcg_at_5",
    "causal/cp_at_10",
    "features/topic_ami",
    "features/cold_recall_at_20",
    "causal/cp_at_10_oracle",
    "causal/identifiable",
    "causal/pehe",
    "propensity/mae",
    "policy/true_value",
    "policy/true_incremental_value",
)


def run_folder(config: PipelineConfig, now: datetime | None = None) -> Path:
    """This run's folder: ``runtime.output_dir`` or ``<output_root>/runs/<UTC time>-<dataset>-<preset>``."""
    if config.runtime.output_dir is not None:
        return Path(config.runtime.output_dir).resolve()
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    dataset = config.data.dataset.replace("dir:", "dir-").replace("/", "_")
    return Path(config.runtime.output_root).resolve() / "runs" / f"{stamp}-{dataset}-{config.preset}"


def make_tracker(config: PipelineConfig) -> RunTracker:
    uri = tracking_uri(config.tracking.tracking_uri, config.runtime.output_root)
    return RunTracker(
        uri,
        experiment_name(config.tracking.experiment_prefix, config.data.dataset),
        artifact_location(uri, config.runtime.output_root),
        enabled=config.tracking.enabled,
    )


@flow(name="recause-pipeline", log_prints=True)
def pipeline(config: PipelineConfig) -> dict[str, Any]:
    """Run the pipeline on ``config.data.dataset``; returns the flat summary (also in ``summary.json``)."""
    logger = get_run_logger()
    folder = run_folder(config)
    tracker = make_tracker(config)
    tags = {
        "recause.dataset": config.data.dataset,
        "recause.preset": config.preset,
        "recause.git_commit": git_commit(PROJECT_ROOT),
        "recause.seed": config.runtime.seed,
        "recause.output_dir": str(folder),
        "prefect.flow_run_id": flow_run.id or "",
        "prefect.flow_run_url": flow_run.ui_url or "",
        **{f"version.{k}": v for k, v in package_versions().items()},
    }
    tracker.start(folder.name, config.flat(), tags)
    summary: dict[str, Any] = {"run/dataset": config.data.dataset, "run/preset": config.preset}
    try:
        summary |= _run_stages(config, tracker, folder, logger)
    except BaseException:
        tracker.finish("FAILED")
        raise
    summary |= {f"stage/{name}/seconds": s for name, s in tracker.stage_seconds.items()}
    summary["mlflow/run_id"] = tracker.run_id or ""
    summary["mlflow/tracking_uri"] = tracker.uri
    path = write_summary(summary, folder)
    tracker.log_summary(summary)
    passed = bool(summary.get("validation/passed", False))
    tracker.finish("FINISHED" if passed else "FAILED")
    _publish(summary, path, tracker)
    logger.info("summary: %s", path)
    if not passed:
        return Failed(message=summary["validation/report"], data=summary)
    return Completed(message=f"summary written to {path}", data=summary)


def _run_stages(config: PipelineConfig, tracker: RunTracker, folder: Path, logger) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tracker.stage("load") as stage:
        dataset = load_task(config.data, config.world, config.runtime.seed)
        out |= dataset.summary()
        stage.log_metrics(out)
        for note in dataset.meta.notes:
            logger.info("%s: %s", dataset.meta.name, note)

    with tracker.stage("validate") as stage:
        outcome, files = validate_task(dataset, config.validation, folder / "validation")
        metrics = outcome.report.metrics()
        stage.log_metrics(metrics)
        stage.log_artifact(files.folder, "validation")
        out |= metrics
        out["validation/report"] = outcome.console
        logger.info(outcome.console)
    if not outcome.report.passed:
        return out
    dataset = outcome.dataset
    tracker.set_tags({"recause.data_hash": data_hash(dataset)})

    with tracker.stage("split") as stage:
        split = split_task(dataset, config.split, config.runtime.seed)
        out |= split.sizes()
        stage.log_metrics(split.sizes())

    features = None
    if config.features.enabled:
        with tracker.stage("features") as stage:
            run = features_task(
                split, dataset, config.features, config.runtime.threads, config.runtime.cache_folder(),
                folder / "features", config.runtime.seed,
            )
            features = run.features
            stage.log_metrics(run.metrics)
            stage.set_tags({k: v for k, v in run.metrics.items() if isinstance(v, str)})
            for path in run.files:
                stage.log_artifact(path, "features")
            out |= run.metrics
            if features is None:
                logger.info("%s has no item text: the text-feature stage has nothing to embed; continuing without text features", dataset.meta.name)

    with tracker.stage("baselines") as stage:
        baselines = baselines_task(split, dataset, config.baselines, config.runtime.seed, features)
        stage.set_tags({f"skipped.{k}": v for k, v in baselines.skipped.items()})
        for name, reason in baselines.skipped.items():
            logger.info("baseline %s skipped: %s", name, reason)

    if config.gnn.enabled:
        with tracker.stage("train") as stage:
            run = train_task(split, dataset, config.gnn, features, config.runtime.threads, config.runtime.seed,
                             folder / "model", stage, logger)
            stage.log_metrics(run.metrics)
            stage.set_tags({k: v for k, v in run.metrics.items() if isinstance(v, str)})
            for path in run.files:
                stage.log_artifact(path, "model")
            out |= run.metrics
            baselines = replace(baselines, policies={**baselines.policies, **run.models.policies()},
                                skipped={**baselines.skipped, **run.models.skipped})
    else:
        out["gnn/skipped"] = "gnn.enabled is false"
        reason = "the causal GNN was not trained (gnn.enabled is false)"
        baselines = replace(baselines, skipped={**baselines.skipped, "gnn_causal": reason, "gnn_causal_uplift": reason})
        logger.info("causal GNN not trained: gnn.enabled is false")

    with tracker.stage("evaluate") as stage:
        evaluation, table = evaluate_task(baselines, split, config.evaluation, dataset, folder / "evaluation")
        metrics = evaluation.summary(dataset.meta, config.evaluation)
        stage.log_metrics(metrics)
        stage.log_artifact(table, "evaluation")
        out |= metrics

    if config.contrast.enabled:
        with tracker.stage("contrast") as stage:
            run = contrast_task(
                split, dataset, baselines, features, config.contrast, config.data.root,
                config.data.open_bandit_campaign, folder / "interventions", config.runtime.seed,
            )
            if run.result is None:
                out["contrast/skipped"] = run.reason
                stage.set_tags({"skipped": run.reason})
                logger.info("contrastive evaluation skipped: %s", run.reason)
            else:
                stage.log_metrics(run.result.metrics)
                stage.set_tags({k: v for k, v in run.result.metrics.items() if isinstance(v, str)})
                for path in run.files:
                    stage.log_artifact(path, "interventions")
                out |= run.result.metrics
                out["interventions/verdicts"] = "\n".join(run.result.verdicts)
                for line in run.result.verdicts:
                    logger.info(line)
    return out


def _publish(summary: dict[str, Any], path: Path, tracker: RunTracker) -> None:
    """A Prefect markdown artifact with the key numbers and where the MLflow run lives."""
    lines = [f"# Recause run: {summary['run/dataset']} ({summary['run/preset']})", "", "| metric | value |", "|---|---|"]
    for key in KEY_METRICS:
        if key in summary:
            value = summary[key]
            lines.append(f"| `{key}` | {value:.4f} |" if isinstance(value, float) else f"| `{key}` | {value} |")
    if summary.get("interventions/verdicts"):
        lines += ["", "## Interventions against the control", ""]
        lines += [f"- {line}" for line in summary["interventions/verdicts"].splitlines()]
    link = tracker.run_url()
    lines += [
        "",
        f"MLflow run `{tracker.run_id}` in `{tracker.experiment}` at `{tracker.uri}`" + (f" — [open]({link})" if link else ""),
        f"Summary: `{path}`",
    ]
    create_markdown_artifact("\n".join(lines), key="recause-summary", description="Key metrics of this run")
