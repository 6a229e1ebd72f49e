"""The pipeline flow end to end under Prefect's test harness, tracked in a temporary MLflow store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from flows.config import build_config

pytestmark = pytest.mark.slow


def smoke_config(tmp_path: Path, dataset: str = "synthetic", *overrides: str):
    return build_config(
        "smoke", dataset=dataset, output_dir=tmp_path / "run",
        overrides=[f"runtime.output_root={tmp_path}", *overrides],
        env={"RECAUSE_DATA_DIR": str(Path(__file__).resolve().parents[2] / "shared" / "data")},
    )


def mlflow_runs(tmp_path: Path, experiment: str):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    found = client.get_experiment_by_name(experiment)
    return client, client.search_runs([found.experiment_id])


def test_smoke_pipeline_on_the_synthetic_world(prefect_harness, tmp_path: Path) -> None:
    from flows.pipeline import pipeline

    state = pipeline(smoke_config(tmp_path), return_state=True)
    assert state.is_completed(), state.message
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    # the baselines' ranking and causal metrics and the oracles' true policy values are there
    for name in ("random", "popularity", "logging", "content", "oracle_relevance", "oracle_uplift"):
        assert 0.0 <= summary[f"baseline/{name}/ranking/recall_at_20"] <= 1.0
        assert f"baseline/{name}/causal/cp_at_10" in summary and f"baseline/{name}/policy/true_value" in summary
    assert summary["causal/cp_at_10_oracle"] >= summary["causal/cp_at_10"]
    assert 0 < summary["truth/logging_policy/value"] < 1
    assert summary["model/name"] in ("random", "popularity", "logging", "content", "gnn_causal", "gnn_causal_uplift",
                                     "gnn_naive", "gnn_t_learner", "gnn_t_learner_uplift")
    assert summary["validation/passed"] is True and summary["causal/identifiable"] is True
    stage_names = {"load", "validate", "split", "features", "baselines", "train", "evaluate", "contrast"}
    assert all(summary[f"stage/{s}/seconds"] > 0 for s in stage_names)
    # the causal GNN: identifiable here, its uplift in the harness and against the truth, an effect map
    assert "baseline/gnn_causal_uplift/causal/cp_at_10" in summary and "baseline/gnn_naive/causal/cp_at_10" in summary
    assert summary["causal/pehe"] > 0 and 0 <= summary["propensity/mae"] < 1
    assert (tmp_path / "run" / "model" / "causal_effect_map.png").is_file()
    assert (tmp_path / "run" / "model" / "checkpoints" / "gnn_causal" / "best.ckpt").is_file()
    # MLflow: one parent run with the config as params and a nested run per stage
    client, runs = mlflow_runs(tmp_path, "recause/synthetic")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    [parent] = parents
    assert parent.info.run_id == summary["mlflow/run_id"] and parent.info.status == "FINISHED"
    assert parent.data.params["world.n_users"] == "200" and parent.data.tags["recause.preset"] == "smoke"
    assert len(parent.data.tags["recause.data_hash"]) == 64 and parent.data.tags["prefect.flow_run_id"]
    assert np.isclose(parent.data.metrics["ranking/recall_at_20"], summary["ranking/recall_at_20"])
    stages = {r.data.tags["recause.stage"] for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert stages == stage_names
    [train_run] = [r for r in runs if r.data.tags.get("recause.stage") == "train"]
    assert "gnn_causal-train/loss" in train_run.data.metrics  # Lightning's logger wrote into the stage's run
    assert "interventions/random/lift" in summary and summary["contrast/control"] == "logging policy"
    assert summary["interventions/random/ci_low"] <= summary["interventions/random/lift"] <= summary["interventions/random/ci_high"]
    assert summary["features/has_text"] is True and summary["features/backend"] == "onnx"
    assert "baseline/content/ranking/recall_at_20" in summary
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert "summary.json" in artifacts


@pytest.mark.integration
def test_pipeline_stops_on_bad_data_and_keeps_the_evidence(prefect_harness, tmp_path: Path, data_root: Path) -> None:
    from flows.pipeline import pipeline

    corrupt = tmp_path / "data" / "coat"
    shutil.copytree(data_root / "coat", corrupt)
    lines = (corrupt / "train.ascii").read_text().splitlines()
    row = lines[2].split()
    col = next(i for i, v in enumerate(row) if v != "0")
    row[col] = "9"  # a rating outside 1..5 on line 3
    lines[2] = " ".join(row)
    (corrupt / "train.ascii").write_text("\n".join(lines) + "\n")

    config = smoke_config(tmp_path, "coat", f"data.root={tmp_path / 'data'}")
    state = pipeline(config, return_state=True)
    assert state.is_failed() and "coat/train.ascii line 3" in state.message
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["validation/passed"] is False and summary["validation/n_quarantined"] == 1
    assert (tmp_path / "run" / "validation" / "quarantine.parquet").exists()
    _, runs = mlflow_runs(tmp_path, "recause/coat")
    [parent] = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.status == "FAILED"
