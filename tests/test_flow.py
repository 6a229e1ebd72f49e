"""The pipeline flow end to end under Prefect's test harness, tracked in a temporary MLflow store."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recause.flows.config import build_config

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


ORACLES = ("oracle_relevance", "oracle_uplift")
STAGES = ("load", "validate", "split", "features", "baselines", "train", "simulate", "evaluate", "contrast", "recommend")


def selected_model(summary: dict) -> tuple[set[str], float, str]:
    """The selection rule, read off the summary: the non-oracle policies whose validation entry
    ``<prefix>/<name>/<model/selected_by>`` is largest; returns (names, best value, prefix of each)."""
    suffix = "/" + summary["model/selected_by"]
    scores = {}
    for key, value in summary.items():
        if key.endswith(suffix) and key.count("/") == suffix.count("/") + 1:  # <prefix>/<name><suffix>
            prefix, name = key.split("/")[:2]
            if name not in ORACLES:
                scores[name] = (value, prefix)
    best = max(v for v, _ in scores.values())
    return {n for n, (v, _) in scores.items() if v == best}, best, {n: p for n, (_, p) in scores.items()}


@pytest.fixture(scope="module")
def smoke_run(prefect_harness, tmp_path_factory):
    """One smoke run of the pipeline on the synthetic world: (output root, config, final state, wall seconds)."""
    from recause.flows.pipeline import pipeline

    tmp_path = tmp_path_factory.mktemp("smoke")
    config = smoke_config(tmp_path)
    started = time.perf_counter()
    state = pipeline(config, return_state=True)
    return tmp_path, config, state, time.perf_counter() - started


def test_smoke_pipeline_on_the_synthetic_world(smoke_run) -> None:
    from recause.tasks.data.synthetic import load_synthetic

    tmp_path, config, state, wall = smoke_run
    assert state.is_completed(), state.message
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    # the baselines' ranking and causal metrics and the oracles' true policy values are there
    for name in ("random", "popularity", "logging", "content", "oracle_relevance", "oracle_uplift"):
        assert 0.0 <= summary[f"baseline/{name}/ranking/recall_at_20"] <= 1.0
        assert f"baseline/{name}/causal/cp_at_10" in summary and f"baseline/{name}/policy/true_value" in summary
    assert summary["causal/cp_at_10_oracle"] >= summary["causal/cp_at_10"]
    assert 0 < summary["truth/logging_policy/value"] < 1
    # the model is the non-oracle policy, baseline or GNN, that is best on the validation metric it names
    assert summary["model/selected_by"] == "val/ranking/ndcg_at_20"
    best_names, best_value, prefixes = selected_model(summary)
    assert {"random", "popularity", "logging", "content", "gnn_causal", "gnn_causal_uplift", "gnn_naive"} <= set(prefixes)
    assert summary["model/validation_leader"] in best_names, (summary["model/validation_leader"], best_names, best_value)
    # the leader is the model of record when its advantage over popularity clears its bootstrap interval
    kept = summary["model/validation_leader"] if summary.get("model/selection_advantage_low", 1.0) > 0 else "popularity"
    assert summary["model/name"] == kept, summary["model/selection_reason"]
    chosen = f"{prefixes[summary['model/name']]}/{summary['model/name']}"
    for metric in ("ranking/recall_at_20", "ranking/ndcg_at_20", "policy/true_value"):
        assert summary[metric] == summary[f"{chosen}/{metric}"], metric  # the headline numbers are the chosen one's
    # except CP@10: the uplift model the run acts on (uplift is identified here)
    assert summary["causal/cp_at_10_policy"] == f"{summary['uplift/model']}_uplift"
    assert summary["causal/cp_at_10"] == summary[f"gnn/{summary['causal/cp_at_10_policy']}/causal/cp_at_10"]
    assert summary["validation/passed"] is True and summary["causal/identifiable"] is True
    # stage times: every stage ran, took time, and together no more than the flow did
    seconds = {s: summary[f"stage/{s}/seconds"] for s in STAGES}
    assert all(v > 0 for v in seconds.values()) and sum(seconds.values()) <= wall
    # the causal GNN's policies are namespaced gnn/, never baseline/
    assert "gnn/gnn_causal_uplift/causal/cp_at_10" in summary and "gnn/gnn_naive/causal/cp_at_10" in summary
    assert "gnn/gnn_causal/ranking/recall_at_20" in summary and prefixes["gnn_causal"] == "gnn"
    assert not [k for k in summary if k.startswith("baseline/gnn_")]
    # uplift against the world's truth: better than predicting no effect anywhere, and consistent with the ATE
    dataset = load_synthetic(config.world, seed=config.runtime.seed)
    users, items = dataset.users["user_id"].to_numpy(np.int64), dataset.items["item_id"].to_numpy(np.int64)
    tau = dataset.world.uplift(users, items)
    assert summary["causal/ate_true"] == pytest.approx(tau.mean(), rel=1e-9)  # the same pairs as the pipeline's
    zero_pehe = float(np.sqrt(np.mean(tau**2)))
    assert 0 < summary["causal/pehe"] < zero_pehe
    assert summary["causal/ate_abs_error"] == pytest.approx(abs(summary["causal/ate"] - summary["causal/ate_true"]))
    assert summary["causal/pehe"] >= summary["causal/ate_abs_error"]  # RMSE of τ̂ - τ >= |mean of τ̂ - τ|
    assert 0 < summary["causal/pehe_t_learner"] < 1
    assert 0 <= summary["propensity/mae"] < 1
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
    children = sorted((r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id),
                      key=lambda r: r.info.start_time)
    assert [r.data.tags["recause.stage"] for r in children] == list(STAGES)  # one each, in the flow's order
    for run, following in zip(children, children[1:] + [None]):
        name = run.data.tags["recause.stage"]
        assert run.info.status == "FINISHED"
        assert run.data.metrics[f"stage/{name}/seconds"] == pytest.approx(seconds[name])
        # the stage run was open at least as long as the stage was timed (ms clock), and closed before the next opened
        assert (run.info.end_time - run.info.start_time) / 1000 >= seconds[name] - 0.002, name
        if following is not None:
            assert run.info.end_time <= following.info.start_time, name
    assert parent.info.start_time <= children[0].info.start_time and children[-1].info.end_time <= parent.info.end_time
    [train_run] = [r for r in runs if r.data.tags.get("recause.stage") == "train"]
    assert "gnn_causal-train/loss" in train_run.data.metrics  # Lightning's logger wrote into the stage's run
    assert "interventions/random/lift" in summary and summary["contrast/control"] == "logging policy"
    assert summary["interventions/random/ci_low"] <= summary["interventions/random/lift"] <= summary["interventions/random/ci_high"]
    # the simulator: fitted on the GNN's states, checked, and answering the feature edits beside the truth
    assert summary["simulator/states"] == "gnn" and summary["simulator/members"] == 2
    assert 0.0 <= summary["simulator/c2st_auc"] <= 1.0 and summary["simulator/calibration_error"] < 0.1
    [simulate_run] = [r for r in runs if r.data.tags.get("recause.stage") == "simulate"]
    assert "simulator_0-train/loss" in simulate_run.data.metrics
    for edit in ("interest-topic-0", "rewrite-topic-0-to-1", "twice-the-heavy-users"):
        assert summary[f"interventions/{edit}/ci_low"] <= summary[f"interventions/{edit}/lift"] <= summary[f"interventions/{edit}/ci_high"]
        assert f"interventions/{edit}/true_lift" in summary and f"interventions/{edit}/true_direct_lift" in summary
    # a population shift changes who is shown, not what: its direct and total effects are one number
    assert summary["interventions/twice-the-heavy-users/true_lift"] == summary["interventions/twice-the-heavy-users/true_direct_lift"]
    assert summary["interventions/random/simulator/ci_low"] <= summary["interventions/random/simulator/estimate"]
    assert (tmp_path / "run" / "simulator" / "fidelity.png").is_file() and (tmp_path / "run" / "contrast" / "simulated_vs_true.png").is_file()
    assert summary["features/has_text"] is True and summary["features/backend"] == "onnx"
    assert "baseline/content/ranking/recall_at_20" in summary
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"summary.json", "report.html", "provenance.json"} <= artifacts
    provenance = json.loads((tmp_path / "run" / "provenance.json").read_text())
    assert provenance["seed"] == config.runtime.seed and provenance["data_hash"] == parent.data.tags["recause.data_hash"]
    assert provenance["mlflow_run_id"] == parent.info.run_id and provenance["versions"]["torch"]
    # the GNN's estimate of what each policy causes, beside the truth of the same estimand
    table = pd.read_csv(tmp_path / "run" / "contrast" / "interventions.csv").set_index("policy")
    assert table.loc["random", "caused_lift_low"] <= table.loc["random", "caused_lift"] <= table.loc["random", "caused_lift_high"]
    swaps = table[table["kind"].isna()]  # policy swaps (feature edits are the simulator's: no importance weights)
    assert np.isfinite(table.loc["control", "true_caused_seen"]) and swaps["ess"].gt(0).all()
    for name in ("training_curves", "propensity_calibration", "uplift_vs_truth"):
        assert (tmp_path / "run" / "model" / f"{name}.csv").is_file() and (tmp_path / "run" / "model" / f"{name}.png").is_file()
    # recommendations: top 10 per user by uplift, never what the user already has, 1 slot in 10 exploring
    lists = pd.read_parquet(tmp_path / "run" / "recommendations" / "recommendations.parquet")
    assert summary["recommend/strategy"] == "uplift" and "recommend/fallback" not in summary
    assert len(lists) == 200 * 10 and lists.groupby("user_id")["item_id"].nunique().eq(10).all()
    assert lists["exploration"].mean() == pytest.approx(0.1) and lists["reason"].str.len().gt(20).all()
    data = load_synthetic(config.world, seed=config.runtime.seed)
    had = data.interactions[data.interactions["outcome"] >= 1][["user_id", "item_id"]]
    assert lists.merge(had, on=["user_id", "item_id"]).empty
    assert 0 < summary["recommend/true_caused"] < summary["recommend/true_value"] < 1
    curves = pd.read_csv(tmp_path / "run" / "model" / "training_curves.csv")
    assert set(curves["model"]) == {"gnn_causal", "gnn_naive", "gnn_t_learner"} and curves["train/loss"].notna().all()


def test_the_champion_is_served_over_http_with_the_lists_of_the_run(smoke_run, capsys) -> None:
    """``mlflow models serve -m models:/recause-synthetic@champion`` on 127.0.0.1 answers a JSON request
    with the lists of ``recommendations.parquet``; ``recause recommend`` answers from the same model."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import urllib.request

    from recause.flows.cli import main

    tmp_path, _, state, _ = smoke_run
    assert state.is_completed(), state.message
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["registry/model"] == "recause-synthetic" and summary["registry/champion"] is True
    lists = pd.read_parquet(tmp_path / "run" / "recommendations" / "recommendations.parquet")
    users = [str(u) for u in lists["user_id"].unique()[:3]]
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    bin_dir = Path(sys.executable).parent
    env = os.environ | {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    server = subprocess.Popen([str(bin_dir / "mlflow"), "models", "serve", "-m", "models:/recause-synthetic@champion",
                               "--env-manager", "local", "--host", "127.0.0.1", "-p", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "mlflow models serve did not come up"
                time.sleep(0.5)
        body = json.dumps({"dataframe_records": [{"user_id": u} for u in users] + [{"user_id": "never-seen"}],
                           "params": {"k": 10}}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", body, {"Content-Type": "application/json"})
        answer = pd.DataFrame(json.loads(urllib.request.urlopen(request, timeout=60).read())["predictions"])
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    expected = lists[lists["user_id"].astype(str).isin(users)].astype({"user_id": str, "item_id": str})
    served = answer[answer["user_id"] != "never-seen"]
    assert served[["user_id", "rank", "item_id", "reason"]].values.tolist() == expected[["user_id", "rank", "item_id", "reason"]].values.tolist()
    assert np.allclose(served["score"], expected["score"], equal_nan=True)  # NaN: exploration beyond the candidates
    cold = answer[answer["user_id"] == "never-seen"]
    assert len(cold) == 10 and (cold["strategy"] == "popularity (cold user)").all()
    # the CLI reads the same champion; k <= 0 and an unknown dataset's model are one-line errors
    os.environ["RECAUSE_OUTPUT_ROOT"] = str(tmp_path)
    try:
        assert main(["recommend", "--user", users[0], "--k", "3"]) == 0
        out = capsys.readouterr().out
        assert out.startswith("recause-synthetic version 1") and f"user {users[0]}: uplift" in out
        assert main(["recommend", "--user", users[0], "--k", "0"]) == 2
        assert main(["recommend", "--user", users[0], "--dataset", "coat"]) == 2
        assert "no champion of 'recause-coat'" in capsys.readouterr().err
    finally:
        del os.environ["RECAUSE_OUTPUT_ROOT"]


@pytest.mark.browser
def test_the_run_report_in_a_real_browser(smoke_run) -> None:
    """The smoke run's report.html in headless Chromium: the answer comes first and names the top
    intervention with its interval, nothing is fetched from beyond this machine, and a full-page
    screenshot is saved (outputs/test-screenshots/report-smoke.png)."""
    from recause.tasks.report import answer
    from browser import SCREENSHOTS, chromium_page

    tmp_path, _, state, _ = smoke_run
    assert state.is_completed(), state.message
    folder = tmp_path / "run"
    summary = json.loads((folder / "summary.json").read_text())
    top = answer(pd.read_csv(folder / "contrast" / "interventions.csv"), summary)[0]
    assert top.subject  # the smoke world's GNN estimates uplift: some intervention leads
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with chromium_page() as page:
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto((folder / "report.html").as_uri(), wait_until="load")
        first = page.locator("main > section").first
        assert first.get_attribute("id") == "answer"
        # nothing but the title sits above the answer, which fits in the first screen
        box = first.bounding_box()
        assert box is not None and box["y"] < 150
        headline = first.locator("p.headline").inner_text()
        assert headline.startswith(top.subject) and re.search(r"\[[-+]?\d+\.\d+, [-+]?\d+\.\d+", headline), headline
        images = page.locator("img")
        assert images.count() >= 5 and all(images.nth(i).evaluate("i => i.naturalWidth > 0") for i in range(images.count()))
        page.screenshot(path=str(SCREENSHOTS / "report-smoke.png"), full_page=True)
    external = [url for url in requests if not url.startswith(("file:", "data:"))]
    assert external == [], external
    assert (SCREENSHOTS / "report-smoke.png").stat().st_size > 0


@pytest.mark.integration
def test_pipeline_stops_on_bad_data_and_keeps_the_evidence(prefect_harness, tmp_path: Path, data_root: Path) -> None:
    from recause.flows.pipeline import pipeline

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
    page = (tmp_path / "run" / "report.html").read_text()  # the report says why the run stopped, and links the evidence
    assert "The data failed validation, so the run stopped before modelling" in page and "coat/train.ascii line 3" in page
    assert "href='validation/quarantine.parquet'" in page
    _, runs = mlflow_runs(tmp_path, "recause/coat")
    [parent] = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.status == "FAILED"
