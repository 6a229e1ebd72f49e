"""What a run leaves in MLflow for its UI: the experiment's kind, no live ``Default`` experiment,
run names that tell runs apart, and the headline numbers as ``KEY/*`` metrics (a real SQLite store);
and a store that fails, named in the error, after which the tracker makes no more calls."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from recause.mlflow_config.tracking import (
    EXPERIMENT_KIND_TAG,
    KEY_METRICS_TAG,
    MODEL_TRAINING,
    RunTracker,
    TrackingError,
    artifact_location,
    run_name,
    tracking_uri,
)


def test_run_names_say_dataset_preset_seed_and_utc_time() -> None:
    started = datetime(2026, 12, 2, 10, 27, 28, tzinfo=timezone(timedelta(hours=1)))  # 09:27:28 UTC
    assert run_name("synthetic", "smoke", 0, started) == "synthetic-smoke-s0-1202-092728"
    assert run_name("dir:/data/my logs", "default", 7, started) == "dir-my-logs-default-s7-1202-092728"
    # a second later is another name: the names of two runs differ in what the UI shows of them
    assert run_name("coat", "smoke", 0, started + timedelta(seconds=1)) == "coat-smoke-s0-1202-092729"


def test_a_new_store_holds_only_tagged_recause_experiments_and_key_metrics(tmp_path: Path) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    uri = tracking_uri(None, tmp_path)
    tracker = RunTracker(uri, "recause/synthetic", artifact_location(uri, tmp_path))
    tracker.start(run_name("synthetic", "smoke", 0), {"runtime.seed": "0"}, {})
    summary = {"model/name": "popularity", "ranking/recall_at_20": 0.25, "causal/identifiable": True,
               "features/topic_ami": float("nan"), "run/preset": "smoke"}
    tracker.log_summary(summary, ("model/name", "ranking/recall_at_20", "causal/identifiable", "features/topic_ami", "absent/metric"))
    tracker.finish()

    client = MlflowClient(uri)
    experiments = {e.name: e for e in client.search_experiments(view_type=ViewType.ALL)}
    assert set(experiments) == {"recause/synthetic", "Default"}
    assert experiments["recause/synthetic"].tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING
    # MLflow inserts Default into every new store; it is deleted at once, and its record points under the output root
    assert experiments["Default"].lifecycle_stage == "deleted"
    assert experiments["Default"].artifact_location == (tmp_path.resolve() / "mlartifacts" / "0").as_uri()
    assert not (tmp_path / "mlruns").exists()

    run = client.get_run(tracker.run_id)
    # numbers only (a bool as 0/1; NaN and strings are not metrics), each under KEY/ beside its plain name
    assert {k: v for k, v in run.data.metrics.items() if k.startswith("KEY/")} == {
        "KEY/ranking/recall_at_20": 0.25, "KEY/causal/identifiable": 1.0}
    # listed first where the UI sorts metric names by code point (its compare view)
    assert sorted(run.data.metrics)[:2] == ["KEY/causal/identifiable", "KEY/ranking/recall_at_20"]
    # the names in order, strings included (their values are summary.* tags), those absent from the summary left out
    assert run.data.tags[KEY_METRICS_TAG] == "model/name,ranking/recall_at_20,causal/identifiable,features/topic_ami"
    assert run.data.tags["summary.model/name"] == "popularity"
    table = json.loads(Path(client.download_artifacts(tracker.run_id, "summary_table.json", str(tmp_path))).read_text())
    assert table["columns"] == ["metric", "value"]
    assert table["data"][:3] == [["model/name", "popularity"], ["ranking/recall_at_20", 0.25], ["causal/identifiable", True]]


def test_an_experiment_made_before_the_kind_tag_gets_it(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    uri = tracking_uri(None, tmp_path)
    client = MlflowClient(uri)
    old = client.create_experiment("recause/coat")
    RunTracker(uri, "recause/coat", artifact_location(uri, tmp_path))
    assert client.get_experiment(old).tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING


def test_recovery_does_not_make_a_store(tmp_path: Path) -> None:
    from recause.flows.recovery import recover_mlflow

    assert recover_mlflow(tracking_uri(None, tmp_path)) == []
    assert not (tmp_path / "mlflow.db").exists()


def test_a_tracker_on_a_server_that_does_not_answer_names_the_uri(monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = "http://127.0.0.1:9"  # discard: nothing listens
    with pytest.raises(TrackingError, match=rf"MLflow tracking at {uri} failed: \[Errno 111\] Connection refused \({uri}/api/"):
        RunTracker(uri, "recause/synthetic", None)


def test_after_a_store_failure_the_tracker_makes_no_more_calls(tmp_path: Path) -> None:
    """The stage's run is not ended against a store that is gone, the parent is not finished: the
    first error goes up at once, not after another round of HTTP retries per call."""
    from mlflow.exceptions import MlflowException

    uri = tracking_uri(None, tmp_path)
    tracker = RunTracker(uri, "recause/synthetic", artifact_location(uri, tmp_path))
    tracker.start("run", {}, {})
    calls: list[str] = []

    class GoneAfterCreate:
        """The store answers ``create_run``, then is gone."""

        def __init__(self, client) -> None:
            self.client = client

        def __getattr__(self, name: str):
            def call(*args, **kwargs):
                calls.append(name)
                if name == "create_run":
                    return self.client.create_run(*args, **kwargs)
                raise MlflowException("API request to http://x/api/2.0/mlflow/runs/log-batch failed with exception "
                                      "HTTPConnectionPool(...): [Errno 111] Connection refused')")
            return call

    tracker._client = GoneAfterCreate(tracker._client)
    with pytest.raises(TrackingError, match=rf"MLflow tracking at {uri} failed: \[Errno 111\] Connection refused "
                                            r"\(http://x/api/2.0/mlflow/runs/log-batch\)$"):
        with tracker.stage("train") as stage:
            stage.log_metrics({"loss": 1.0})
    tracker.finish("FAILED")
    assert calls == ["create_run", "log_batch"] and tracker.failed is not None


def test_training_leaves_the_process_wide_tracking_uri_as_it_was(tmp_path: Path, monkeypatch) -> None:
    """Lightning's MLflow logger sets MLflow's process-wide URI, which MLflow also writes to ``MLFLOW_TRACKING_URI``;
    a later run or ``recause compare`` in the same process would take it for its configured store."""
    import os

    import mlflow

    from recause.mlflow_config.tracking import lightning_logger

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = tracking_uri(None, tmp_path)
    tracker = RunTracker(uri, "recause/synthetic", artifact_location(uri, tmp_path))
    tracker.start(run_name("synthetic", "smoke", 0), {}, {})
    with tracker.stage("train") as stage:
        logger = lightning_logger(stage.target(), prefix="gnn")
        assert logger.experiment.get_run(logger.run_id).info.run_id == stage.run_id  # the stage's own run
        logger.log_metrics({"loss": 1.0}, step=0)
    tracker.finish()
    assert "MLFLOW_TRACKING_URI" not in os.environ and mlflow.get_tracking_uri() != uri
