"""The Recause pipeline: one Prefect flow run = one MLflow parent run with a nested run per stage.

Stages: ``load → validate → split → features → baselines → train → simulate → evaluate → contrast → recommend``. Each
stage is a thin Prefect task (:mod:`recause.flows.stages`) over a pure function; this module only
wires them: it runs each task inside its stage's MLflow run, logs what the task returns
(:class:`~recause.flows.stages.StageResult`), and writes the summary. The causal GNN (``train``)
adds its policies (debiased relevance, uplift, the naive and T-learner references) beside the
baselines, so one harness scores them all.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run
from prefect.states import Completed, Failed

from recause.flows.artifacts import write_summary
from recause.flows.files import write_text_atomic
from recause.flows.memory import PeakMemory
from recause.flows.report import PROVENANCE_NAME, REPORT_NAME, write_report
from recause.flows.config import PROJECT_ROOT, PipelineConfig, run_folder
from recause.flows.provenance import code_hash, data_hash, git_commit, package_versions
from recause.flows.recovery import PREFECT_OWNER_PREFIX
from recause.flows.resume import KeyContext, StageStore, Unkeyable, derived_key, stage_key
from recause.flows.runners import SequentialTaskRunner
from recause.flows.runs import Owner, claim_run_folder
from recause.flows.shards import warm_workers
from recause.flows.stages import StageResult
from recause.flows.stages.baselines import baselines_task
from recause.flows.stages.contrast import contrast_task
from recause.flows.stages.evaluate import evaluate_task
from recause.flows.stages.features import EncoderSettings, features_task
from recause.flows.stages.load import load_task
from recause.flows.stages.recommend import recommend_task
from recause.flows.stages.simulate import simulate_task
from recause.flows.stages.split import split_task
from recause.flows.stages.train import train_task
from recause.flows.stages.validate import validate_task
from recause.mlflow_config.tracking import (
    RunTracker, TrackingError, artifact_location, experiment_name, run_name, store_lock, tracking_errors, tracking_uri,
)
from recause.tasks.contrast.interventions import check_topics
from recause.tasks.evaluate import PolicySet

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
    "uplift/model",
    "causal/identifiable",
    "causal/pehe",
    "propensity/mae",
    "policy/true_value",
    "policy/true_incremental_value",
)


def make_tracker(config: PipelineConfig, owner: Owner | None = None) -> RunTracker:
    uri = tracking_uri(config.tracking.tracking_uri, config.runtime.output_root)
    return RunTracker(
        uri,
        experiment_name(config.tracking.experiment_prefix, config.data.dataset),
        artifact_location(uri, config.runtime.output_root),
        enabled=config.tracking.enabled,
        owner=owner.tag() if owner else None,
        ui_url=config.tracking.ui_url,
    )


def _tag_flow_run(owner: Owner) -> None:
    """Add the owner to this flow run's Prefect tags, so a later start can tell if it crashed
    (a flow run started by ``recause run`` has it from its creation; one from a deployment gets it here)."""
    if flow_run.id is None:
        return
    from prefect import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run.id)
        if not any(tag.startswith(PREFECT_OWNER_PREFIX) for tag in run.tags):  # the CLI tags it at creation
            client.update_flow_run(run.id, tags=[*run.tags, f"{PREFECT_OWNER_PREFIX}{owner.tag()}"])


def _owner_tag_off_tasks():
    """The stages' task runs without the owner tag ``recause run`` puts on its flow run (crash recovery reads
    it there): Prefect acquires and releases a concurrency slot through the API for every tag of a task run,
    and at the 4x world the split stage waited 2.4 s on that acquire."""
    from prefect.context import TagsContext

    kept = {t for t in TagsContext.get().current_tags if not t.startswith(PREFECT_OWNER_PREFIX)}
    return TagsContext(current_tags=kept)


@flow(name="recause-pipeline", log_prints=True, task_runner=SequentialTaskRunner())
def pipeline(config: PipelineConfig) -> dict[str, Any]:
    """Run the pipeline on ``config.data.dataset``; returns the flat summary (also in ``summary.json``).

    The stages run in order; the shards of the sharded stages go to the task runner, which is
    sequential here and ``runtime.task_runner``'s when the run is started by
    :func:`~recause.flows.runners.pipeline_for`."""
    logger = get_run_logger()
    owner = Owner.current()
    folder = claim_run_folder(run_folder(config), owner, flow_run.name or "")
    _tag_flow_run(owner)
    tracker = make_tracker(config, owner)
    tags = {
        "recause.dataset": config.data.dataset,
        "recause.preset": config.preset,
        "recause.git_commit": git_commit(PROJECT_ROOT),
        "recause.seed": config.runtime.seed,
        "recause.task_runner": config.runtime.task_runner,
        "recause.output_dir": str(folder),
        "prefect.flow_run_id": flow_run.id or "",
        "prefect.flow_run_url": flow_run.ui_url or "",
        **{f"version.{k}": v for k, v in package_versions().items()},
    }
    tracker.start(run_name(config.data.dataset, config.preset, config.runtime.seed), config.flat(), tags)
    if warm_workers():
        logger.info("task runner %s: workers started, importing in the background", config.runtime.task_runner)
    provenance = _provenance(config, tags, tracker)
    _write_provenance(folder, provenance)
    summary: dict[str, Any] = {"run/dataset": config.data.dataset, "run/preset": config.preset}
    stages = _Stages(tracker, folder, logger, StageStore(Path(config.runtime.output_root) / "stages"), config.runtime.resume)
    try:
        with _owner_tag_off_tasks():
            summary |= uplift_headline(_run_stages(config, stages))
    except BaseException:
        tracker.finish("FAILED")
        raise
    if stages.recommendations is not None and stages.recommendations.servable is not None and tracker.run_id:
        try:
            summary |= _publish_recommender(config, folder, stages.recommendations, tracker, summary, logger)
        except tracking_errors() as error:  # the registry is the tracking store: say which one failed
            raise TrackingError.wrap(tracker.uri, error) from error
    summary |= {f"stage/{name}/seconds": s for name, s in tracker.stage_seconds.items()}
    summary["run/reused_stages"] = ",".join(stages.reused)
    summary["mlflow/run_id"] = tracker.run_id or ""
    summary["mlflow/tracking_uri"] = tracker.uri
    tracker.log_summary(summary, KEY_METRICS)
    path = write_summary(summary, folder)
    try:
        _write_provenance(folder, provenance | {"data_hash": stages.data_hash,
                                                "finished_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")})
        report = write_report(folder)
        for written in (folder / PROVENANCE_NAME, report):
            tracker.log_artifact_to(tracker.run_id, written, None)
        passed = bool(summary.get("validation/passed", False))
        tracker.finish("FINISHED" if passed else "FAILED")
    except TrackingError:  # summary.json and the report say a run is complete and recorded: this one is not
        for written in (path, folder / REPORT_NAME):
            written.unlink(missing_ok=True)
        raise
    _publish(summary, path, report, tracker)
    logger.info("summary: %s", path)
    logger.info("report: %s", report)
    if not passed:
        return Failed(message=summary["validation/report"], data=summary)
    return Completed(message=f"summary written to {path}", data=summary)


def uplift_headline(summary: dict[str, Any]) -> dict[str, Any]:
    """Where uplift is identified, ``causal/cp_at_10`` is the CP@10 of the uplift model the run acts on
    (``uplift/model``'s uplift ranking), named in ``causal/cp_at_10_policy``; elsewhere it stays the
    harness's (the best relevance ranking's, ``model/name``)."""
    model = summary.get("uplift/model")
    key = f"gnn/{model}_uplift/causal/cp_at_10"
    if isinstance(model, str) and key in summary:
        return summary | {"causal/cp_at_10": summary[key], "causal/cp_at_10_policy": f"{model}_uplift"}
    if "causal/cp_at_10" in summary:
        return summary | {"causal/cp_at_10_policy": str(summary.get("model/name", ""))}
    return summary


def metric_of_record(summary: dict[str, Any]) -> tuple[str, float | None]:
    """What decides the registry's champion: on the synthetic world the engagement the lists truly
    cause (``recommend/true_caused``), elsewhere the model of record's NDCG@20 on held-out data."""
    for key in ("recommend/true_caused", "ranking/ndcg_at_20"):
        value = summary.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return key, float(value)
    return "ranking/ndcg_at_20", None


def _publish_recommender(config: PipelineConfig, folder: Path, recommendations, tracker: RunTracker,
                         summary: dict[str, Any], logger) -> dict[str, Any]:
    """Save the lists' model as an MLflow pyfunc (``recommender/`` in the run folder and the parent
    run), register it as ``recause-<dataset>``, and move ``champion`` when it beats the champion."""
    from mlflow import MlflowClient

    from recause.mlflow_config.serving import model_name, register, save_recommender

    checkpoints = {p.parent.name: p for p in sorted((folder / "model" / "checkpoints").glob("*/best.ckpt"))}
    path = save_recommender(folder / "recommender", recommendations.servable, checkpoints, config.data.dataset)
    tracker.log_artifact_to(tracker.run_id, path, "recommender")
    metric, value = metric_of_record(summary)
    with store_lock(tracker.uri):  # concurrent runs: one creates the registered model, champion moves atomically
        registered = register(MlflowClient(tracking_uri=tracker.uri), model_name(config.data.dataset),
                              f"runs:/{tracker.run_id}/recommender", tracker.run_id, metric, value)
    logger.info("registered %s version %s%s (%s)", registered.name, registered.version,
                " as champion" if registered.champion else "", registered.reason)
    return {"registry/model": registered.name, "registry/version": registered.version,
            "registry/champion": registered.champion, "registry/reason": registered.reason, "registry/metric": metric}


def _provenance(config: PipelineConfig, tags: dict[str, Any], tracker: RunTracker) -> dict[str, Any]:
    """What reproduces this run (``provenance.json``; the report's last section)."""
    return {
        "dataset": config.data.dataset, "preset": config.preset, "seed": config.runtime.seed,
        "git_commit": tags["recause.git_commit"], "versions": package_versions(),
        "mlflow_run_id": tracker.run_id, "mlflow_experiment": tracker.experiment, "mlflow_tracking_uri": tracker.uri,
        "prefect_flow_run_id": flow_run.id, "prefect_flow_run_name": flow_run.name, "prefect_flow_run_url": flow_run.ui_url,
        "started_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _write_provenance(folder: Path, provenance: dict[str, Any]) -> None:
    write_text_atomic(folder / PROVENANCE_NAME, json.dumps(provenance, indent=2, default=str, sort_keys=True))


STAGE_RUN = object()
"""Stands for the stage's own MLflow run address (:class:`~recause.mlflow_config.tracking.RunTarget`) in a task's arguments."""


class _Stages:
    """Runs each stage task inside its stage's MLflow run and records what it returns; reuses a
    stage's stored result when its key (:mod:`recause.flows.resume`) matches and ``resume`` is on."""

    def __init__(self, tracker: RunTracker, folder: Path, logger, store: StageStore, resume: bool) -> None:
        self.tracker, self.folder, self.logger, self.store, self.resume = tracker, folder, logger, store, resume
        self.summary: dict[str, Any] = {}
        self.data_hash: str | None = None
        self.recommendations = None  # the recommend stage's result, for the served model
        self.keys: dict[int, str] = {}
        self.reused: list[str] = []
        self.code = code_hash(PROJECT_ROOT) + repr(sorted(package_versions().items()))

    def run(self, name: str, task: Callable[..., StageResult], *args: Any, cache: bool = True, **kwargs: Any) -> Any:
        """``task(*args, **kwargs)`` in the stage run ``name`` (a keyword argument given as
        :data:`STAGE_RUN` receives that run's address); its metrics, string tags, files and notes
        recorded; returns its value. With ``cache``, a stored result with the same key is reused
        (its files copied into this run's folder) and a new result is stored."""
        key = self._key(name, args, kwargs) if cache else None
        self.logger.info("stage %s: started", name)
        with PeakMemory() as peak, self.tracker.stage(name) as stage:
            reused = self.store.load(name, key, self.folder) if key and self.resume else None
            if reused is not None:
                result = reused.result
                stage.set_tags({"recause.reused_from": reused.origin.get("folder", ""),
                                "recause.reused_from_run": reused.origin.get("mlflow_run_id", "")})
                self.reused.append(name)
                self.logger.info("stage %s: reused the result of %s", name, reused.origin.get("folder", "an earlier run"))
            else:
                kwargs = {k: stage.target() if v is STAGE_RUN else v for k, v in kwargs.items()}
                result = task(*args, **kwargs)
                if key:
                    origin = {"folder": str(self.folder), "mlflow_run_id": stage.run_id or ""}
                    self.store.save(name, key, result, self.folder, origin, replace=not self.resume)
            stage.log_metrics(result.metrics)
            stage.set_tags({k: v for k, v in result.metrics.items() if isinstance(v, str)})
            for path in result.files:
                stage.log_artifact(path, _artifact_folder(path, self.folder))
        for note in result.notes:
            self.logger.info(note)
        self.logger.info("stage %s: finished in %.2f s, peak %.2f GiB", name, self.tracker.stage_seconds.get(name, float("nan")),
                         peak.gib)
        self.summary |= result.metrics | {f"stage/{name}/peak_rss_gb": peak.gib}
        if key and result.value is not None:
            self.keys[id(result.value)] = key
        return result.value

    def _key(self, name: str, args: tuple, kwargs: dict[str, Any]) -> str | None:
        context = KeyContext(self.code, self.folder, self.keys)
        try:
            return stage_key(name, args, {k: "stage-run" if v is STAGE_RUN else v for k, v in kwargs.items()}, context)
        except Unkeyable as reason:
            self.logger.info("stage %s: its result will not be kept for resuming (%s)", name, reason)
            return None

    def register(self, value: Any, key: str) -> None:
        """Give a value computed in the flow a key (so stages that take it can be reused)."""
        self.keys[id(value)] = key

    def key_of(self, value: Any) -> str | None:
        return self.keys.get(id(value))


def _artifact_folder(path: Path, run_folder: Path) -> str:
    """A written path's folder relative to the run folder (a folder is logged under its own name)."""
    relative = Path(path).resolve().relative_to(run_folder.resolve())
    return (relative if Path(path).is_dir() else relative.parent).as_posix()


def _run_stages(config: PipelineConfig, stages: _Stages) -> dict[str, Any]:
    seed, threads, folder, logger = config.runtime.seed, config.runtime.threads, stages.folder, stages.logger
    loaded = stages.run("load", load_task, config.data, config.world, seed, cache=False)
    dataset = stages.run("validate", validate_task, loaded, config.validation, folder / "validation", cache=False)
    if dataset is None:
        return stages.summary
    content = stages.data_hash = data_hash(dataset)
    stages.tracker.set_tags({"recause.data_hash": content})
    stages.register(dataset, derived_key(content, config.data.model_dump_json() + config.world.model_dump_json() + str(seed)))
    # Recomputed, not stored: the stored split would be a copy of the interactions (0.3 GB a config at 16x) for a
    # result that takes under a second to compute there (0.8-1.0 s, 2026-12-05); its key is the data's, the
    # settings' and the seed's.
    split = stages.run("split", split_task, dataset, config.split, seed, cache=False)
    stages.register(split, derived_key(stages.key_of(dataset), f"split/{config.split.model_dump_json()}/{seed}"))
    features = None
    if config.features.enabled:
        features = stages.run("features", features_task, split, dataset, config.features, threads,
                              config.runtime.cache_folder(), folder / "features", seed)
        if config.contrast.enabled:  # a topic no text topic has: said now, not after training
            check_topics(config.contrast.interventions, features)
    baselines = stages.run("baselines", baselines_task, split, dataset, config.baselines, seed, features)
    models = None
    if config.gnn.enabled:
        models = stages.run("train", train_task, split, dataset, config.gnn, features, seed, threads, folder / "model",
                            target=STAGE_RUN)
        gnn = models.policy_set()
        if stages.key_of(models):
            stages.register(gnn, derived_key(stages.key_of(models), "policy_set"))
    else:
        reason = "the causal GNN was not trained (gnn.enabled is false)"
        gnn = PolicySet("gnn", {}, {"gnn_causal": reason, "gnn_causal_uplift": reason})
        stages.register(gnn, derived_key("gnn-disabled", reason))
        stages.summary["gnn/skipped"] = "gnn.enabled is false"
        logger.info("causal GNN not trained: gnn.enabled is false")
    simulation = None
    if config.simulate.enabled:
        simulation = stages.run("simulate", simulate_task, split, dataset, features, models,
                                config.simulate, seed, threads, folder / "simulator", target=STAGE_RUN)
    policy_sets = [baselines, gnn]
    stages.run("evaluate", evaluate_task, policy_sets, split, config.evaluation, dataset, folder / "evaluation")
    contrasted = None
    if config.contrast.enabled:
        encoder = EncoderSettings(config.features, threads, config.runtime.cache_folder()) if features is not None else None
        contrasted = stages.run("contrast", contrast_task, split, dataset, policy_sets, features, config.contrast,
                                folder / "contrast", seed, simulation, encoder)
    if config.recommend.enabled:
        lifts = {k: v for k, v in stages.summary.items() if k.startswith("interventions/") and isinstance(v, float)}
        stages.recommendations = stages.run("recommend", recommend_task, config.recommend, split, dataset, models, policy_sets, features,
                   config.contrast if contrasted is not None else None, lifts, seed, folder / "recommendations")
    return stages.summary


def _publish(summary: dict[str, Any], path: Path, report: Path, tracker: RunTracker) -> None:
    """A Prefect markdown artifact with the key numbers, the run report and where the MLflow run lives."""
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
        f"Report: [{report.name}]({report.resolve().as_uri()}) — `{report}`"
        + (f" (also the MLflow run's artifact `{report.name}`)" if tracker.run_id else ""),
        f"Summary: `{path}`",
    ]
    create_markdown_artifact("\n".join(lines), key="recause-summary", description="Key metrics of this run")
