"""Nothing lost, whatever happens: run identity, atomic files, crash recovery, resume, concurrency.

The unit tests exercise each piece alone; the slow tests drive real ``recause run`` processes
(:mod:`faults`): four at once on one output root, and a run killed with SIGKILL as a stage starts,
then run again. ``bench/resume.py`` kills at every stage; here a representative two.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

import faults
from recause.flows.config import build_config, run_folder
from recause.flows.files import atomic_path, sweep_temporaries, write_text_atomic
from recause.flows.resume import KeyContext, StageStore, Unkeyable, stage_key
from recause.flows.runs import CLAIM_FILE, Owner, claim_run_folder, claimed_by
from recause.flows.stages import StageResult
from recause.tasks.config import ConfigurationError
from recause.tasks.data.split import SplitConfig


def dead_owner() -> Owner:
    """The owner record of a process that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    owner = Owner.of(process.pid)
    process.wait()
    return owner


# ---------------------------------------------------------------- identity


def test_default_run_folders_differ_within_one_second(tmp_path: Path) -> None:
    config = build_config("smoke", overrides=[f"runtime.output_root={tmp_path}"])
    now = datetime(2026, 12, 2, 7, 0, 0, tzinfo=timezone.utc)
    names = {run_folder(config, now).name for _ in range(50)}
    assert len(names) == 50
    assert all(re.fullmatch(r"20261202T070000Z-synthetic-smoke-[0-9a-f]{8}", n) for n in names)


def test_a_folder_is_claimed_once(tmp_path: Path) -> None:
    owner = Owner.current()
    folder = claim_run_folder(tmp_path / "run", owner, "first")
    record = json.loads((folder / CLAIM_FILE).read_text())
    assert (record["pid"], record["run_name"]) == (os.getpid(), "first")
    with pytest.raises(ConfigurationError, match=r"already holds another run's files \(run\.json\)"):
        claim_run_folder(folder, owner, "second")


def test_a_folder_with_files_is_refused_not_mixed(tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_text("{}")
    with pytest.raises(ConfigurationError, match=rf"{re.escape(str(tmp_path))} already holds .*summary\.json"):
        claim_run_folder(tmp_path, Owner.current(), "x")
    assert not (tmp_path / CLAIM_FILE).exists()


def test_an_empty_existing_folder_is_adopted(tmp_path: Path) -> None:
    assert claim_run_folder(tmp_path, Owner.current(), "x") == tmp_path and (tmp_path / CLAIM_FILE).is_file()
    assert claimed_by(tmp_path, Owner.current()) and not claimed_by(tmp_path, dead_owner())


def test_a_rerun_into_a_used_folder_is_refused_before_it_starts(tmp_path: Path) -> None:
    previous = tmp_path / "run"
    previous.mkdir()
    (previous / "summary.json").write_text(json.dumps({"validation/report": "THE PREVIOUS RUN'S REPORT"}))
    result = subprocess.run(faults.command("run", "--preset", "smoke", "--output-dir", str(previous)), cwd=faults.ROOT,
                            env=faults.environment(tmp_path / "root"), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"run folder {previous} already holds another run's files (summary.json)" in result.stderr
    assert "PREVIOUS RUN" not in result.stdout + result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in previous.iterdir()) == ["summary.json"]  # untouched
    assert not (tmp_path / "root" / "mlflow.db").exists()  # refused before anything started


def test_owner_tells_a_live_process_from_a_dead_one() -> None:
    me = Owner.current()
    assert Owner.from_tag(me.tag()) == me and me.alive() is True
    assert dead_owner().alive() is False
    assert Owner(me.pid, me.host, me.started - 100).alive() is False  # same pid, another process (pid reuse)
    assert Owner(me.pid, "another-host", me.started).alive() is None
    assert Owner.from_tag("not an owner") is None


# ---------------------------------------------------------------- atomic files


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = write_text_atomic(tmp_path / "summary.json", "old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as temp:
            temp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["summary.json"]
    write_text_atomic(path, "new")
    assert path.read_text() == "new"


def test_sweep_removes_what_killed_writers_left(tmp_path: Path) -> None:
    (tmp_path / "keep.csv").write_text("a")
    (tmp_path / ".keep.tmp-0123abcd.csv").write_text("half")
    (tmp_path / "sub" / ".data_docs.tmp-99").mkdir(parents=True)
    removed = sweep_temporaries(tmp_path)
    assert {p.name for p in removed} == {".keep.tmp-0123abcd.csv", ".data_docs.tmp-99"}
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["keep.csv", "sub"]


def test_doctor_sweeps_the_folders_of_dead_runs_only(tmp_path: Path) -> None:
    from recause.flows.recovery import sweep_dead_run_folders

    dead = claim_run_folder(tmp_path / "runs" / "dead", dead_owner(), "dead")
    live = claim_run_folder(tmp_path / "runs" / "live", Owner.current(), "live")
    for folder in (dead, live):
        (folder / ".summary.tmp-0123abcd.json").write_text("{")
    assert sweep_dead_run_folders(tmp_path / "runs") == [dead / ".summary.tmp-0123abcd.json"]
    assert (live / ".summary.tmp-0123abcd.json").exists()  # a live run may still be writing it


# ---------------------------------------------------------------- resume keys and store


def context(folder: Path, known: dict[int, str] | None = None) -> KeyContext:
    return KeyContext("code-v1", folder, known or {})


def test_the_key_follows_settings_code_and_upstream_results(tmp_path: Path) -> None:
    upstream = object()
    base = stage_key("split", (upstream, SplitConfig(), 0), {}, context(tmp_path, {id(upstream): "data-a"}))
    same = stage_key("split", (upstream, SplitConfig(), 0), {}, context(tmp_path, {id(upstream): "data-a"}))
    assert base == same
    changed = [
        stage_key("split", (upstream, SplitConfig(), 1), {}, context(tmp_path, {id(upstream): "data-a"})),  # seed
        stage_key("split", (upstream, SplitConfig(), 0), {}, context(tmp_path, {id(upstream): "data-b"})),  # data
        stage_key("split", (upstream, SplitConfig(), 0), {}, KeyContext("code-v2", tmp_path, {id(upstream): "data-a"})),
        stage_key("train", (upstream, SplitConfig(), 0), {}, context(tmp_path, {id(upstream): "data-a"})),
    ]
    assert len({base, *changed}) == 5


def test_paths_inside_the_run_folder_count_by_their_relative_path(tmp_path: Path) -> None:
    a, b = tmp_path / "run-a", tmp_path / "run-b"
    assert stage_key("x", (a / "model",), {}, context(a)) == stage_key("x", (b / "model",), {}, context(b))
    assert stage_key("x", (tmp_path / "cache",), {}, context(a)) != stage_key("x", (tmp_path / "other",), {}, context(a))


def test_an_object_no_stage_produced_has_no_key(tmp_path: Path) -> None:
    with pytest.raises(Unkeyable, match="object was not produced by a stage"):
        stage_key("x", (object(),), {}, context(tmp_path))


def test_the_store_gives_back_value_metrics_and_files(tmp_path: Path) -> None:
    first, second = tmp_path / "run-1", tmp_path / "run-2"
    (first / "evaluation").mkdir(parents=True)
    (first / "evaluation" / "baselines.csv").write_text("policy,recall\npop,0.5\n")
    result = StageResult({"answer": 42}, {"x/recall": 0.5}, (first / "evaluation" / "baselines.csv",), ("note",))
    store = StageStore(tmp_path / "stages")
    assert store.load("evaluate", "k1", second) is None
    assert store.save("evaluate", "k1", result, first, {"folder": str(first)}) is not None
    assert store.save("evaluate", "k1", result, first, {"folder": "elsewhere"}) is None  # first result stays
    reused = store.load("evaluate", "k1", second)
    assert reused is not None and reused.origin == {"folder": str(first)}
    assert (reused.result.value, reused.result.metrics, reused.result.notes) == ({"answer": 42}, {"x/recall": 0.5}, ("note",))
    assert reused.result.files == (second / "evaluation" / "baselines.csv",)
    assert (second / "evaluation" / "baselines.csv").read_text() == "policy,recall\npop,0.5\n"


def test_a_half_written_entry_is_never_read(tmp_path: Path) -> None:
    store = StageStore(tmp_path / "stages")
    half = store.entry("split", "k1").parent / ".k1.tmp-abc"
    half.mkdir(parents=True)
    (half / "result.pkl").write_bytes(b"\x80\x04trunc")
    assert store.load("split", "k1", tmp_path) is None
    os.utime(half, (time.time() - 7200, time.time() - 7200))
    assert store.sweep() == [half] and not half.exists()


# ---------------------------------------------------------------- recovery pieces


def test_recovery_closes_the_runs_of_dead_processes_only(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    from recause.flows.recovery import CRASH_TAG, recover_mlflow
    from recause.mlflow_config.tracking import RunTracker

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    dead, live = dead_owner(), Owner.current()
    crashed = RunTracker(uri, "recause/test", None, owner=dead.tag())
    crashed.start("crashed", {}, {})
    with pytest.raises(KeyboardInterrupt):
        with crashed.stage("train"):
            raise KeyboardInterrupt  # the stage run is closed FAILED; the parent stays RUNNING, as after kill -9
    running = RunTracker(uri, "recause/test", None, owner=live.tag())
    running.start("running", {}, {})
    closed = recover_mlflow(uri)
    client = MlflowClient(uri)
    assert closed == [crashed.run_id]
    parent = client.get_run(crashed.run_id)
    assert parent.info.status == "KILLED" and parent.info.end_time is not None
    assert parent.data.tags[CRASH_TAG].startswith(f"process {dead.pid} on {dead.host} ended without closing this run")
    assert client.get_run(running.run_id).info.status == "RUNNING"
    assert recover_mlflow(uri) == []  # idempotent


def test_the_watchdog_stops_the_children_of_a_killed_process() -> None:
    script = (
        "import subprocess, sys, time\n"
        "from recause.flows.watchdog import start_watchdog\n"
        "start_watchdog()\n"
        "child = subprocess.Popen(['sleep', '120'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    time.sleep(1.5)  # the watchdog notes descendants every 0.5 s
    assert faults.survivors([child], wait=0) == [child]
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    assert faults.survivors([child], wait=10) == []


# ---------------------------------------------------------------- real runs: concurrency, kill and resume


@pytest.fixture(scope="module")
def concurrent(tmp_path_factory) -> tuple[Path, list[faults.Finished]]:
    """Four ``recause run --preset smoke`` started together on one new output root."""
    root = tmp_path_factory.mktemp("concurrent")
    processes = [
        subprocess.Popen(faults.command("run", "--preset", "smoke"), cwd=faults.ROOT, env=faults.environment(root),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    done = []
    for process in processes:
        out, err = process.communicate(timeout=900)
        done.append(faults.Finished(process.returncode, out, err, 0.0))
    return root, done


@pytest.mark.slow
def test_four_concurrent_runs_stay_apart(concurrent) -> None:
    root, done = concurrent
    for finished in done:
        assert finished.returncode == 0, finished.stderr[-3000:]
        assert "database is locked" not in finished.stdout + finished.stderr
    folders = {f.summary_path.parent for f in done}
    assert len(folders) == 4 and all(p.parent == root / "runs" for p in folders)
    summaries = [f.summary() for f in done]
    assert all(s["validation/passed"] and all(f"stage/{st}/seconds" in s for st in faults.STAGES) for s in summaries)
    parents = [r for r in faults.mlflow_runs(root) if "recause.stage" not in r["tags"]]
    assert sorted(r["status"] for r in parents) == ["FINISHED"] * 4
    assert {r["id"] for r in parents} == {s["mlflow/run_id"] for s in summaries}
    reference = faults.comparable(summaries[0])
    assert all(faults.differences(reference, faults.comparable(s)) == [] for s in summaries[1:])
    # every run's trained models are logged, one checkpoint per model under its own name
    logged = sorted(p.parent.name for p in (root / "mlartifacts").rglob("model/checkpoints/*/best.ckpt"))
    assert logged == sorted(["gnn_causal", "gnn_naive", "gnn_t_learner"] * 4)


@pytest.mark.slow
@pytest.mark.parametrize(("stage", "repair"), [("train", "doctor"), ("contrast", "run")])
def test_a_killed_run_is_closed_and_the_next_one_resumes(stage: str, repair: str, concurrent, tmp_path: Path) -> None:
    killed = faults.kill_at_stage(tmp_path, stage, "--preset", "smoke")
    assert faults.survivors(killed.children) == []  # the temporary Prefect server died with the run
    assert any(r["status"] == "RUNNING" for r in faults.mlflow_runs(tmp_path))
    closing_line = "closed 1 MLflow run(s) left RUNNING by a dead process"
    if repair == "doctor":  # the repair alone, before any new run
        doctor = subprocess.run(faults.command("doctor"), cwd=faults.ROOT, env=faults.environment(tmp_path),
                                capture_output=True, text=True, timeout=300)
        assert doctor.returncode == 0 and closing_line in doctor.stdout, doctor.stdout + doctor.stderr[-2000:]
        assert not [r for r in faults.mlflow_runs(tmp_path) if r["status"] == "RUNNING"]

    resumed = faults.run(tmp_path, "--preset", "smoke")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    before = list(faults.CACHED_STAGES[: faults.CACHED_STAGES.index(stage)])
    assert resumed.reused == before
    assert (closing_line in resumed.stderr) == (repair == "run")

    runs = faults.mlflow_runs(tmp_path)
    assert not [r for r in runs if r["status"] == "RUNNING"]
    crashed = [r for r in runs if r["status"] == "KILLED"]
    assert crashed and all(r["end_time"] and str(killed.pid) in r["tags"]["recause.crash"] for r in crashed)
    flows, tasks = faults.prefect_runs(tmp_path)
    assert sorted(state for _, state in flows) == ["COMPLETED", "CRASHED"]
    assert not [t for t in tasks if t[1] in ("RUNNING", "PENDING")]

    reference = faults.comparable(concurrent[1][0].summary())
    assert faults.differences(reference, faults.comparable(resumed.summary())) == []


@pytest.mark.slow
def test_a_terminated_run_closes_its_own_runs(tmp_path: Path) -> None:
    """SIGTERM (a plain ``kill``, a scheduler's stop): Prefect traps it, so the run closes what it opened itself."""
    stopped = faults.kill_at_stage(tmp_path, "train", "--preset", "smoke", sig=signal.SIGTERM)
    assert "Execution was aborted by a termination signal" in stopped.output
    assert faults.survivors(stopped.children) == []
    runs = faults.mlflow_runs(tmp_path)
    parent = [r for r in runs if "recause.stage" not in r["tags"]]
    assert [r["status"] for r in parent] == ["FAILED"] and parent[0]["end_time"]
    assert not [r for r in runs if r["status"] == "RUNNING"]
    flows, tasks = faults.prefect_runs(tmp_path)
    assert [state for _, state in flows] == ["CRASHED"] and not [t for t in tasks if t[1] in ("RUNNING", "PENDING")]
