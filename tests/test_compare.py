"""``recause compare``: the table, the parameter diff, the chart and the compare-view address from
plain run records; which runs a command means, read from a real SQLite store; its usage errors;
and, slow, two real pipeline runs compared through the command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recause.flows.compare import (
    CompareError,
    RunRecord,
    clip,
    compare_view,
    default_chart_path,
    difference,
    differing_params,
    draw_chart,
    format_value,
    key_table,
    read_runs,
    report,
    run_reference,
)

ROOT = Path(__file__).resolve().parents[1]
KEYS = "model/name,ranking/recall_at_20,causal/cp_at_10,causal/identifiable"


def record(run_id: str, name: str, metrics: dict, params: dict, tags: dict | None = None, start: int = 0) -> RunRecord:
    tags = {"recause.key_metrics": KEYS, **(tags or {})}
    return RunRecord(run_id, name, "1", "recause/synthetic", start, "FINISHED", metrics, params, tags)


FIRST = record("a" * 32, "synthetic-smoke-s0-1202-092728",
               {"KEY/ranking/recall_at_20": 0.5, "ranking/recall_at_20": 0.5, "KEY/causal/cp_at_10": 0.0625,
                "KEY/causal/identifiable": 1.0},
               {"runtime.seed": "0", "world.n_users": "200", "gnn.enabled": "true"},
               {"summary.model/name": "logging"}, start=1_764_667_648_000)
SECOND = record("b" * 32, "synthetic-smoke-s1-1202-093012",
                {"KEY/ranking/recall_at_20": 0.75, "KEY/causal/cp_at_10": 0.125, "KEY/causal/identifiable": 1.0},
                {"runtime.seed": "1", "world.n_users": "200"},
                {"summary.model/name": "gnn_causal"}, start=1_764_667_812_000)


# ---------------------------------------------------------------------------------------------- pure parts
def test_a_value_comes_from_key_then_the_plain_metric_then_the_summary_string() -> None:
    run = record("c" * 32, "r", {"KEY/x": 1.5, "x": 9.0, "y": 2.0}, {}, {"summary.z": "text", "summary.x": "no"})
    assert (run.value("x"), run.value("y"), run.value("z"), run.value("w")) == (1.5, 2.0, "text", None)


def test_the_key_table_has_each_runs_headline_in_the_order_logged() -> None:
    older = record("c" * 32, "old", {"ranking/recall_at_20": 0.25}, {}, {"recause.key_metrics": ""})  # logged before KEY/
    newer = record("d" * 32, "new", {"KEY/extra": 3.0}, {}, {"recause.key_metrics": "extra," + KEYS})
    assert key_table([FIRST, SECOND]) == [
        ("model/name", ["logging", "gnn_causal"]),
        ("ranking/recall_at_20", [0.5, 0.75]),
        ("causal/cp_at_10", [0.0625, 0.125]),
        ("causal/identifiable", [1.0, 1.0]),
    ]
    # names in the order they first appear across runs; an old run answers by its plain metric or not at all
    assert key_table([older, newer])[:3] == [("extra", [None, 3.0]), ("model/name", [None, None]),
                                             ("ranking/recall_at_20", [0.25, None])]
    with pytest.raises(CompareError, match="none of the runs .* records its key metrics .*run them again"):
        key_table([older, older])


def test_only_the_params_that_differ_and_absence_is_a_difference() -> None:
    assert differing_params([FIRST, SECOND]) == {"gnn.enabled": ["true", None], "runtime.seed": ["0", "1"]}
    assert differing_params([FIRST, FIRST]) == {}


@pytest.mark.parametrize("value, text", [
    (None, "—"), ("gnn_causal", "gnn_causal"), (0.123456, "0.1235"), (1.0, "1"), (0.0, "0"), (-0.00004, "-0.0000"),
    (12345.678, "1.235e+04"), (float("nan"), "nan"),
])
def test_values_are_written_with_four_decimals_whole_numbers_plain(value, text) -> None:
    assert format_value(value) == text


def test_the_difference_is_second_minus_first_for_two_numbers_only() -> None:
    assert difference([0.5, 0.75]) == "+0.2500" and difference([0.75, 0.5]) == "-0.2500"
    assert difference(["logging", "gnn_causal"]) == difference([0.5, None]) == difference([1.0, 2.0, 3.0]) == ""


def test_long_values_are_clipped_in_the_middle() -> None:
    path = "/tmp/outputs/runs/20261202T092728Z-synthetic-smoke-5d7d1d5a"  # 56 characters
    assert clip(path, 20) == "/tmp/outp…e-5d7d1d5a" and len(clip(path, 20)) == 20
    assert clip("short", 20) == "short"


def test_the_report_shows_both_runs_key_metrics_their_difference_and_the_params_that_differ(tmp_path: Path) -> None:
    view = compare_view("http://127.0.0.1:5000", [FIRST.run_id, SECOND.run_id], ["1", "1"])
    text = report([FIRST, SECOND], key_table([FIRST, SECOND]), differing_params([FIRST, SECOND]),
                  "http://127.0.0.1:5000", tmp_path / "c.png", view)
    lines = text.splitlines()
    assert lines[0] == "2 runs in recause/synthetic (http://127.0.0.1:5000):"
    assert lines[1].split() == [FIRST.name, FIRST.run_id, "finished", "2025-12-02", "09:27:28", "UTC"]
    rows = {line.split()[0]: line.split()[1:] for line in lines if line and not line.startswith(" ")}
    assert rows["key"] == ["metric", FIRST.name, SECOND.name, "2nd", "-", "1st"]
    assert rows["model/name"] == ["logging", "gnn_causal"]
    assert rows["ranking/recall_at_20"] == ["0.5000", "0.7500", "+0.2500"]
    assert rows["causal/cp_at_10"] == ["0.0625", "0.1250", "+0.0625"]
    assert rows["causal/identifiable"] == ["1", "1", "+0.0000"]
    assert "params that differ (2 of 3):" in lines
    params = {line.split()[0]: line.split()[1:] for line in lines if line.startswith("  ") and len(line.split()) == 3}
    assert params["runtime.seed"] == ["0", "1"] and params["gnn.enabled"] == ["true", "—"]
    assert lines[-2:] == [f"chart: {tmp_path / 'c.png'}", f"MLflow compare view: {view.url}"]


def test_the_compare_view_address_is_mlflows_route_on_the_server_or_the_local_ui() -> None:
    server = compare_view("https://mlflow.example.org/", ["r1", "r2"], ["3", "1", "3"])
    assert server.url == ("https://mlflow.example.org/#/compare-runs?runs=[%22r1%22,%22r2%22]&experiments=[%221%22,%223%22]"
                          "&workflowType=machine_learning")
    assert server.note is None
    local = compare_view("sqlite:////tmp/out/mlflow.db", ["r1", "r2"], ["1", "1"])
    assert local.url == "http://127.0.0.1:5000/#/compare-runs?runs=[%22r1%22,%22r2%22]&experiments=[%221%22]&workflowType=machine_learning"
    assert local.note.endswith("mlflow ui --backend-store-uri sqlite:////tmp/out/mlflow.db --host 127.0.0.1 --port 5000")


def test_the_chart_has_a_panel_per_numeric_key_metric(tmp_path: Path) -> None:
    from PIL import Image

    path = draw_chart([FIRST, SECOND], key_table([FIRST, SECOND]), tmp_path / "sub" / "chart.png")
    # three numeric metrics (model/name is text): one row of three 3.4 x 2.4 in panels + 0.8 in legend, 120 dpi
    with Image.open(path) as image:
        assert (image.format, image.size) == ("PNG", (round(3 * 3.4 * 120), round((2.4 + 0.8) * 120)))
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["chart.png"]  # no temporary left beside it
    assert draw_chart([FIRST, SECOND], [("model/name", ["logging", "gnn_causal"])], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_the_default_chart_path_names_the_runs_under_the_output_root(tmp_path: Path) -> None:
    assert default_chart_path(tmp_path, [FIRST, SECOND]) == tmp_path / "comparisons" / "aaaaaaaa-vs-bbbbbbbb.png"
    many = [record(f"{i}" * 32, str(i), {}, {}) for i in range(6)]
    assert default_chart_path(tmp_path, many).name == "00000000-vs-11111111-vs-22222222-vs-33333333-and-2-more.png"


def test_a_run_folder_names_its_run_and_store(tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_text(json.dumps({"mlflow/run_id": "abc", "mlflow/tracking_uri": "sqlite:////x.db"}))
    assert run_reference(str(tmp_path)) == run_reference(str(tmp_path / "summary.json")) == ("abc", "sqlite:////x.db")
    assert run_reference("54e25b30d9954c20a41a257a747e61a5") == ("54e25b30d9954c20a41a257a747e61a5", None)


@pytest.mark.parametrize("content, message", [
    (None, r"expected an MLflow run id or a run folder holding summary.json; .*summary.json does not exist"),
    ("{not json", r"summary.json: not readable as a run's summary"),
    (json.dumps({"mlflow/run_id": ""}), r"names no MLflow run .*tracking.enabled=false"),
    (json.dumps([1, 2]), r"names no MLflow run"),
])
def test_a_folder_that_names_no_run_is_refused(tmp_path: Path, content, message) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    if content is not None:
        (folder / "summary.json").write_text(content)
    with pytest.raises(CompareError, match=message):
        run_reference(str(folder))


def test_runs_of_two_stores_one_run_and_a_missing_store_are_refused_before_mlflow(tmp_path: Path) -> None:
    for name, uri in (("a", "sqlite:////a/mlflow.db"), ("b", "sqlite:////b/mlflow.db")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps({"mlflow/run_id": name, "mlflow/tracking_uri": uri}))
    with pytest.raises(CompareError, match=r"different MLflow stores \(sqlite:////a/mlflow.db, sqlite:////b/mlflow.db\)"):
        read_runs([str(tmp_path / "a"), str(tmp_path / "b")], "sqlite:////c.db", None, "recause/synthetic")
    with pytest.raises(CompareError, match=r"compare needs two runs or more, got one \(abc\)"):
        read_runs(["abc"], "sqlite:////c.db", None, "recause/synthetic")
    store = tmp_path / "none" / "mlflow.db"
    with pytest.raises(CompareError, match=f"no MLflow store at {store}: .*run `recause run` first"):
        read_runs([], f"sqlite:///{store}", None, "recause/synthetic")
    assert not store.parent.exists()  # reading makes no store


def test_a_server_that_does_not_answer_is_named(monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # the command gives up after 2 retries; the test at once
    with pytest.raises(CompareError, match=r"cannot read the MLflow store at http://127.0.0.1:9: .*Connection refused"):
        read_runs([], "http://127.0.0.1:9", None, "recause/synthetic")


# ---------------------------------------------------------------------------------------------- a real store
@pytest.fixture(scope="module")
def store(tmp_path_factory) -> dict:
    """A SQLite store with three parent runs in recause/synthetic (two finished, then one failed;
    the first with a stage run) and one in recause/coat."""
    from recause.mlflow_config.tracking import RunTracker, artifact_location, tracking_uri

    root = tmp_path_factory.mktemp("store")
    uri = tracking_uri(None, root)
    ids = {}
    for label, experiment, status, seed in (("first", "recause/synthetic", "FINISHED", 0), ("second", "recause/synthetic", "FINISHED", 1),
                                            ("failed", "recause/synthetic", "FAILED", 2), ("coat", "recause/coat", "FINISHED", 0)):
        tracker = RunTracker(uri, experiment, artifact_location(uri, root))
        tracker.start(f"{label}-run", {"runtime.seed": str(seed)}, {})
        if label == "first":
            with tracker.stage("train") as stage:
                ids["stage"] = stage.run_id
        tracker.log_summary({"model/name": label, "ranking/recall_at_20": 0.1 * (seed + 1)}, ("model/name", "ranking/recall_at_20"))
        tracker.finish(status)
        ids[label] = tracker.run_id
    return {"uri": uri, "root": root, **ids}


def test_with_no_run_named_the_latest_two_finished_parent_runs_older_first(store) -> None:
    uri, runs = read_runs([], store["uri"], None, "recause/synthetic")
    assert uri == store["uri"] and [r.run_id for r in runs] == [store["first"], store["second"]]
    assert [r.value("ranking/recall_at_20") for r in runs] == pytest.approx([0.1, 0.2])
    assert [r.value("model/name") for r in runs] == ["first", "second"]


def test_named_runs_in_the_order_named_across_experiments(store) -> None:
    _, runs = read_runs([store["coat"], store["failed"]], store["uri"], None, "recause/synthetic")
    assert [(r.experiment, r.status) for r in runs] == [("recause/coat", "FINISHED"), ("recause/synthetic", "FAILED")]


@pytest.mark.parametrize("specs, experiment, message", [
    (["0" * 32, "second"], None, r"no MLflow run '0{32}' in sqlite:///.*RUN is a run id or a run folder"),
    (["stage", "second"], None, r"run \w+ is the 'train' stage of run (\w+): compare parent runs \(recause compare \1"),
    (["first", "coat"], "recause/synthetic", r"run\(s\) \w+ are not in experiment 'recause/synthetic'"),
    (["first", "first"], None, r"compare needs two different runs; .* name\(s\) one"),
    ([], "recause/nothing", r"no experiment 'recause/nothing' in .*experiments there: recause/coat, recause/synthetic\)"),
    ([], "recause/coat", r"compare needs two finished runs; experiment 'recause/coat' .* has 1"),
])
def test_runs_that_cannot_be_compared_are_named(store, specs, experiment, message) -> None:
    specs = [store.get(spec, spec) for spec in specs]
    with pytest.raises(CompareError, match=message):
        read_runs(specs, store["uri"], experiment, "recause/synthetic")


def test_the_command_prints_the_table_and_exits_2_in_one_line_for_bad_input(store, capsys) -> None:
    from recause.flows.cli import main

    root = store["root"]
    png = root / "out" / "two.png"
    assert main(["compare", "--set", f"runtime.output_root={root}", "--png", str(png)]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert lines[1][:3] == ["first-run", store["first"], "finished"] and lines[2][:3] == ["second-run", store["second"], "finished"]
    assert ["ranking/recall_at_20", "0.1000", "0.2000", "+0.1000"] in lines and png.is_file()
    assert main(["compare", "--set", f"runtime.output_root={root}", "--experiment", "recause/nothing"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("recause: no experiment 'recause/nothing'") and err.count("\n") == 1


# ---------------------------------------------------------------------------------------------- two real runs
@pytest.mark.slow
def test_compare_two_smoke_runs_prints_both_runs_key_metrics(prefect_harness, tmp_path: Path) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    from recause.flows.config import build_config
    from recause.flows.pipeline import KEY_METRICS, pipeline

    summaries = []
    for seed in (0, 1):  # the smoke world without text features or the simulator, the GNN for 3 epochs: 5-12 s each
        config = build_config("smoke", output_dir=tmp_path / f"run-{seed}", overrides=[
            f"runtime.output_root={tmp_path}", f"runtime.seed={seed}", "features.enabled=false", "simulate.enabled=false",
            "gnn.epochs=3"])
        assert pipeline(config, return_state=True).is_completed()
        summaries.append(json.loads((tmp_path / f"run-{seed}" / "summary.json").read_text()))
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"} | {"RECAUSE_OUTPUT_ROOT": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "recause.flows.cli", "compare", str(tmp_path / "run-0"), str(tmp_path / "run-1")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if line and not line.startswith(" ")}
    for key in KEY_METRICS:
        if key in summaries[0]:
            assert rows[key][:2] == [format_value(s[key] if isinstance(s[key], str) else float(s[key])) for s in summaries], key
    assert "runtime.seed" in result.stdout
    ids = [s["mlflow/run_id"] for s in summaries]
    png = tmp_path / "comparisons" / f"{ids[0][:8]}-vs-{ids[1][:8]}.png"
    assert f"chart: {png}" in result.stdout and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f'runs=[%22{ids[0]}%22,%22{ids[1]}%22]' in result.stdout
    # the UI's view of the store: one live experiment, tagged for model training; the runs named for what they ran
    client = MlflowClient(summaries[0]["mlflow/tracking_uri"])
    live = client.search_experiments(view_type=ViewType.ACTIVE_ONLY)
    assert [(e.name, e.tags.get("mlflow.experimentKind")) for e in live] == [("recause/synthetic", "custom_model_development")]
    assert [e.name for e in client.search_experiments(view_type=ViewType.DELETED_ONLY)] == ["Default"]
    assert [client.get_run(i).info.run_name.rsplit("-", 2)[0] for i in ids] == ["synthetic-smoke-s0", "synthetic-smoke-s1"]
