"""MLflow tracking: where runs go, how experiments are named, and the parent/stage run structure.

One home for tracking locations: :func:`tracking_uri` and :func:`artifact_location`. The default
store is SQLite at ``<output_root>/mlflow.db`` with artifacts in ``<output_root>/mlartifacts`` —
absolute paths, so the working directory does not matter. A configured URI (``tracking.tracking_uri``
or ``MLFLOW_TRACKING_URI``, resolved by :mod:`recause.flows.config`) wins, e.g. ``http://127.0.0.1:5000``.

Every pipeline run is one parent MLflow run with a nested run per stage
(:meth:`RunTracker.stage`); runs are addressed by id through :class:`mlflow.MlflowClient`, so no
global "active run" is relied upon (Prefect may run tasks on other threads).

For the MLflow UI: experiments are tagged as model-training experiments (:data:`EXPERIMENT_KIND_TAG`),
and the links Recause prints ask for that view (:data:`UI_MODEL_TRAINING`); parent runs are named
``<dataset>-<preset>-s<seed>-<time>`` (:func:`run_name`); the headline numbers are repeated as
``KEY/<name>`` metrics, which sort before all the others; and the ``Default`` experiment MLflow puts
in every new database store is deleted while it is empty (:func:`open_client`).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

PARENT_TAG = "mlflow.parentRunId"
OWNER_TAG = "recause.owner"
MAX_PARAM_LENGTH = 6000
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"
"""The value of :data:`EXPERIMENT_KIND_TAG` for a model-training experiment (the runs table, not GenAI)."""
UI_MODEL_TRAINING = "workflowType=machine_learning"
"""The query that opens MLflow 3.17's UI in its model-training view. That UI takes the view from its
GenAI / Model training switch (the URL's ``workflowType``, else the browser's last choice, else GenAI)
and not from :data:`EXPERIMENT_KIND_TAG`, so a link without it can still open the GenAI overview."""
KEY_PREFIX = "KEY/"
"""Upper case on purpose: the UI's compare view lists metrics in code-point order (``Object.keys(...).sort()``),
so ``KEY/...`` comes before every lower-case name (``key/...`` came 667th of 760 on a smoke run)."""
KEY_METRICS_TAG = "recause.key_metrics"
"""The parent run's headline metric names, comma-separated and in order (``KEY/<name>`` holds the numbers)."""
SUMMARY_TAG_PREFIX = "summary."
DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME = "0", "Default"


class TrackingError(RuntimeError):
    """The tracking store at ``uri`` did not answer or refused a write: the run cannot be recorded.

    Raised in place of MLflow's exception (kept as ``__cause__``) by every :class:`RunTracker`
    call, so the message names the store, and the CLI can say it in one line."""

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(uri, reason)  # both in args: the error survives pickling (Prefect keeps failed states)
        self.uri, self.reason = uri, reason

    def __str__(self) -> str:
        return f"MLflow tracking at {self.uri} failed: {self.reason}"

    @classmethod
    def wrap(cls, uri: str, error: BaseException) -> TrackingError:
        """``error`` (an :class:`~mlflow.exceptions.MlflowException` or an HTTP error) as a TrackingError on ``uri``."""
        return error if isinstance(error, TrackingError) else cls(uri, brief_error(error))


def brief_error(error: BaseException) -> str:
    """An MLflow error in one line: the OS's reason when a connection failed (``[Errno 111]
    Connection refused``), else the message, whitespace collapsed, at most 300 characters."""
    text = " ".join(str(getattr(error, "message", error)).split())
    errno = re.search(r"\[Errno -?\d+\] [^'\")]+", text)
    if errno and "API request to" in text:
        return f"{errno.group(0).strip()} ({text.split(' failed')[0].removeprefix('API request to ')})"
    return text[:300]


def tracking_errors() -> tuple[type[BaseException], ...]:
    """What MLflow raises when its store fails: its own exception, and HTTP errors from the artifact proxy."""
    import requests
    from mlflow.exceptions import MlflowException

    return MlflowException, requests.RequestException


def tracking_uri(configured: str | None, output_root: Path) -> str:
    """The tracking URI: the configured one, else SQLite in ``output_root``."""
    if configured:
        return configured
    return f"sqlite:///{(Path(output_root).resolve() / 'mlflow.db').as_posix()}"


def artifact_location(uri: str, output_root: Path) -> str | None:
    """Where a new experiment stores artifacts: a local folder for a local store, the server's
    choice (None) for a remote one."""
    if uri.startswith(("http://", "https://", "databricks")):
        return None
    return (Path(output_root).resolve() / "mlartifacts").as_uri()


def _dataset_slug(dataset: str) -> str:
    if dataset.startswith("dir:"):
        dataset = "dir-" + Path(dataset[4:]).name
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", dataset)


def experiment_name(prefix: str, dataset: str) -> str:
    """One experiment per dataset: ``recause/coat``; ``dir:/data/x`` becomes ``recause/dir-x``."""
    return f"{prefix}/{_dataset_slug(dataset)}"


def run_name(dataset: str, preset: str, seed: int, started: datetime | None = None) -> str:
    """A parent run's name: ``synthetic-smoke-s0-1202-092728`` (dataset, preset, seed, UTC month-day
    and time of ``started``, default now), so the names of runs in one experiment differ where the UI shows them."""
    started = (started or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return f"{_dataset_slug(dataset)}-{preset}-s{seed}-{started:%m%d-%H%M%S}"


def metric_values(summary: Mapping[str, Any]) -> dict[str, float]:
    """The numeric entries of a summary as MLflow metrics (booleans as 0/1; strings are tags)."""
    out: dict[str, float] = {}
    for key, value in summary.items():
        if isinstance(value, bool):
            out[key] = float(value)
        elif isinstance(value, (int, float)) and value == value:  # drop NaN
            out[key] = float(value)
    return out


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if missing) across processes."""
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def sqlite_path(uri: str) -> Path | None:
    """The database file of a local SQLite store, else None."""
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


@contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Hold an exclusive lock beside a local SQLite store (a no-op for servers): the first runs
    against a new ``mlflow.db`` create its schema, and concurrent schema migrations corrupt it."""
    path = sqlite_path(uri)
    if path is None:
        yield
        return
    with file_lock(path.with_name(path.name + ".lock")):
        yield


def open_client(uri: str, artifact_root: str | None):
    """An :class:`mlflow.MlflowClient` on ``uri``; a new local SQLite store is created here, under
    :func:`store_lock`, with ``artifact_root`` as its default artifact root.

    MLflow's database store inserts an experiment 0 named ``Default`` whenever it finds none, each
    time a store object is made (``SqlAlchemyStore._initialize_store_state``), so it cannot be
    prevented, and removing the row only brings it back. In a local SQLite store it is deleted
    instead (a deleted experiment stays in the table, hidden from the UI's list) while it holds no
    run; since the store is made with ``artifact_root``, even the deleted record names no folder
    relative to the working directory. A server's ``Default`` is its owner's and is left alone.
    """
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    path = sqlite_path(uri)
    with store_lock(uri):
        if path is not None and artifact_root is not None and not path.exists():
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

            SqlAlchemyStore(uri, artifact_root)  # the schema, and experiment 0 under artifact_root
        client = MlflowClient(tracking_uri=uri)
        if path is not None:
            default = client.get_experiment(DEFAULT_EXPERIMENT_ID)
            if (default.name == DEFAULT_EXPERIMENT_NAME and default.lifecycle_stage == "active"
                    and not client.search_runs([DEFAULT_EXPERIMENT_ID], run_view_type=ViewType.ALL, max_results=1)):
                client.delete_experiment(DEFAULT_EXPERIMENT_ID)
    return client


@dataclass
class StageRun:
    """A nested MLflow run for one stage; collects metrics and artifacts, times the stage."""

    tracker: RunTracker
    name: str
    run_id: str | None
    metrics: dict[str, float] = field(default_factory=dict)

    def log_metrics(self, values: Mapping[str, Any], step: int | None = None) -> None:
        numeric = metric_values(values)
        self.metrics.update(numeric)
        self.tracker.log_metrics_to(self.run_id, numeric, step)

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        self.tracker.log_artifact_to(self.run_id, path, folder)

    def log_text(self, text: str, name: str) -> None:
        self.tracker.log_text_to(self.run_id, text, name)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.tracker.set_tags_on(self.run_id, tags)

    def target(self) -> RunTarget | None:
        """Where this stage's run lives, as plain values a task on any worker can log into (None when tracking is off)."""
        if self.run_id is None:
            return None
        return RunTarget(self.tracker.uri, self.tracker.experiment, self.run_id)


@dataclass(frozen=True)
class RunTarget:
    """An MLflow run by address: tracking URI, experiment name and run id (serialisable)."""

    tracking_uri: str
    experiment: str
    run_id: str


@contextmanager
def global_tracking_uri_kept() -> Iterator[None]:
    """Undo, on leaving the block, any change to MLflow's process-wide tracking URI made inside it.

    ``mlflow.set_tracking_uri`` also writes ``MLFLOW_TRACKING_URI`` into the environment, where a later
    run or command of the same process would read it as its configured store.
    """
    import mlflow

    previous = mlflow.get_tracking_uri() if "MLFLOW_TRACKING_URI" in os.environ else None
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)  # None unsets the variable again


def lightning_logger(target: RunTarget | None, prefix: str = ""):
    """A Lightning ``MLFlowLogger`` writing into ``target``'s run (metric names ``<prefix>-train/loss``,
    ...) and leaving it open for the tracker to end; None when ``target`` is None."""
    if target is None:
        return None
    from lightning.pytorch.loggers import MLFlowLogger

    class StageLogger(MLFlowLogger):
        """Lightning's MLflow logger that leaves the run open: the tracker ends the stage's run."""

        def finalize(self, status: str = "success") -> None:
            return None

        @property
        def experiment(self):
            with global_tracking_uri_kept():  # Lightning sets the process-wide URI (and the environment) here
                return super().experiment

    return StageLogger(experiment_name=target.experiment, tracking_uri=target.tracking_uri, run_id=target.run_id, prefix=prefix)


class RunTracker:
    """Parent run + nested stage runs through one :class:`mlflow.MlflowClient`.

    With ``enabled=False`` every call is a no-op (``run_id`` is None), so flows need no branches.
    ``owner`` (a process tag, :class:`recause.flows.runs.Owner`) is set as ``recause.owner`` on the
    parent and every stage run, so a later start can close the runs of a process that died.

    A store that fails (a server gone, a refused write) raises :class:`TrackingError`, naming ``uri``;
    the tracker keeps it as ``failed`` and makes no further calls (each would wait out MLflow's HTTP
    retries against a store that is gone): the stage's run is not ended, :meth:`finish` does
    nothing, and a later ``recause run`` or ``recause doctor`` closes the runs (they carry the owner).
    """

    def __init__(self, uri: str, experiment: str, artifact_root: str | None, enabled: bool = True,
                 owner: str | None = None, ui_url: str | None = None) -> None:
        self.uri, self.experiment, self.enabled, self.owner = uri, experiment, enabled, owner
        self.ui_url = ui_url or (uri if uri.startswith(("http://", "https://")) else None)
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self.stage_seconds: dict[str, float] = {}
        self.failed: TrackingError | None = None
        self._client = None
        if enabled:
            try:
                self._client = open_client(uri, artifact_root)
            except tracking_errors() as error:
                raise TrackingError.wrap(uri, error) from error
            kind = {EXPERIMENT_KIND_TAG: MODEL_TRAINING}
            with store_lock(uri):
                found = self._call("get_experiment_by_name", experiment)
                if found is None:
                    self.experiment_id = self._call("create_experiment", experiment, artifact_location=artifact_root, tags=kind)
                else:
                    self.experiment_id = found.experiment_id
                    if EXPERIMENT_KIND_TAG not in found.tags:  # made before recause set the tag
                        self._call("set_experiment_tag", self.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING)

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """``self._client.<method>(...)``, a store failure raised as :class:`TrackingError` (the first one, again, after it)."""
        if self.failed is not None:
            raise self.failed
        try:
            return getattr(self._client, method)(*args, **kwargs)
        except tracking_errors() as error:
            self.failed = TrackingError.wrap(self.uri, error)
            raise self.failed from error

    def _owned(self, tags: Mapping[str, Any]) -> dict[str, str]:
        return {k: str(v) for k, v in tags.items()} | ({OWNER_TAG: self.owner} if self.owner else {})

    def start(self, run_name: str, params: Mapping[str, str], tags: Mapping[str, Any]) -> str | None:
        """Open the parent run, log the flattened config as params and the reproducibility tags."""
        if not self.enabled:
            return None
        run = self._call("create_run", self.experiment_id, run_name=run_name, tags=self._owned(tags))
        self.run_id = run.info.run_id
        from mlflow.entities import Param

        batch = [Param(k, v[:MAX_PARAM_LENGTH]) for k, v in params.items()]
        for i in range(0, len(batch), 100):
            self._call("log_batch", self.run_id, params=batch[i : i + 100])
        return self.run_id

    @contextmanager
    def stage(self, name: str) -> Iterator[StageRun]:
        """A nested run for stage ``name``; logs ``stage/<name>/seconds`` to it and to the parent."""
        run_id = None
        if self.enabled:
            tags = self._owned({PARENT_TAG: self.run_id, "recause.stage": name})
            run_id = self._call("create_run", self.experiment_id, run_name=name, tags=tags).info.run_id
        stage = StageRun(self, name, run_id)
        start = time.perf_counter()
        status = "FAILED"
        try:
            yield stage
            status = "FINISHED"
        finally:
            self.stage_seconds[name] = time.perf_counter() - start
            if self.failed is None:  # else the store is gone: the error in flight says so
                seconds = {f"stage/{name}/seconds": self.stage_seconds[name]}
                stage.log_metrics(seconds)
                self.log_metrics_to(self.run_id, seconds, None)
                if self.enabled:
                    self._call("set_terminated", run_id, status=status)

    def log_summary(self, summary: Mapping[str, Any], key_metrics: tuple[str, ...] = ()) -> None:
        """Numbers of the summary as parent metrics, strings as ``summary.*`` tags, and the JSON.

        The numbers among ``key_metrics`` are logged again as ``KEY/<name>`` (so the UI's compare
        view shows them first, apart from the hundreds of others) and their names, in order, as the
        tag :data:`KEY_METRICS_TAG`; the whole summary also goes in as a table, ``summary_table.json``.
        """
        values = metric_values(summary)
        keys = [k for k in key_metrics if k in summary]
        self.log_metrics_to(self.run_id, values | {KEY_PREFIX + k: values[k] for k in keys if k in values}, None)
        tags = {SUMMARY_TAG_PREFIX + k: v for k, v in summary.items() if isinstance(v, str)}
        self.set_tags_on(self.run_id, tags | ({KEY_METRICS_TAG: ",".join(keys)} if keys else {}))
        self.log_text_to(self.run_id, json.dumps(summary, indent=2, default=str), "summary.json")
        if self.enabled and self.run_id is not None:
            table = {"metric": list(summary), "value": [v if isinstance(v, (int, float)) else str(v) for v in summary.values()]}
            self._call("log_table", self.run_id, data=table, artifact_file="summary_table.json")

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.set_tags_on(self.run_id, tags)

    def finish(self, status: str = "FINISHED") -> None:
        """End the parent run with ``status``; nothing after a store failure (recovery closes the run later)."""
        if self.enabled and self.run_id is not None and self.failed is None:
            self._call("set_terminated", self.run_id, status=status)

    def run_url(self) -> str | None:
        """A browser URL for the parent run in the MLflow UI (``ui_url``, else the server), else None."""
        if self.run_id is None or self.ui_url is None:
            return None
        return f"{self.ui_url.rstrip('/')}/#/experiments/{self.experiment_id}/runs/{self.run_id}?{UI_MODEL_TRAINING}"

    # -------------------------------------------------------------- by run id; no-ops when disabled (StageRun calls these)
    def log_metrics_to(self, run_id: str | None, values: Mapping[str, float], step: int | None) -> None:
        if not self.enabled or run_id is None or not values:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(key, float(v), now, step or 0) for key, v in values.items()]
        for i in range(0, len(batch), 500):
            self._call("log_batch", run_id, metrics=batch[i : i + 500])

    def log_artifact_to(self, run_id: str | None, path: Path, folder: str | None) -> None:
        if not self.enabled or run_id is None:
            return
        self._call("log_artifacts" if Path(path).is_dir() else "log_artifact", run_id, str(path), folder)

    def log_text_to(self, run_id: str | None, text: str, name: str) -> None:
        if not self.enabled or run_id is None:
            return
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / name
            target.write_text(text)
            self._call("log_artifact", run_id, str(target))

    def set_tags_on(self, run_id: str | None, tags: Mapping[str, Any]) -> None:
        if not self.enabled or run_id is None:
            return
        for key, value in tags.items():
            self._call("set_tag", run_id, key, str(value)[:5000])
