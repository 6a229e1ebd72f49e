"""Fault injection for real ``recause run`` processes: kill one with SIGKILL as a stage starts, run
several at once, and read what they left in the MLflow and Prefect stores.

Used by ``tests/test_recovery.py`` (a representative subset) and ``bench/resume.py`` (every stage).
Everything here drives the command as a user would (subprocesses, the files and databases it
writes); nothing reaches into the pipeline's internals.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("load", "validate", "split", "features", "baselines", "train", "simulate", "evaluate", "contrast", "recommend")
CACHED_STAGES = STAGES[3:]  # load and validate always run (they read the data); split is recomputed, not stored
# Summary entries that differ between two runs of the same config by design: timings, ids, places.
# The embedding cache's counters say how much work a run did, not what it found.
VOLATILE_PREFIXES = ("stage/", "mlflow/", "registry/")  # registry: which version, and whether it took champion
VOLATILE_KEYS = {"run/reused_stages", "features/cache_hits", "features/cache_hit_rate", "features/texts_embedded"}


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "recause.flows.cli", *args]


def environment(output_root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_HOME", "MLFLOW_TRACKING_URI")}
    return {**env, "RECAUSE_OUTPUT_ROOT": str(output_root), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **extra}


@dataclass
class Finished:
    """A completed ``recause run``: exit code, output, and the summary it printed (if any)."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def summary_path(self) -> Path | None:
        lines = [line for line in self.stdout.splitlines() if line.startswith("summary: ")]
        return Path(lines[-1].removeprefix("summary: ")) if lines else None

    def summary(self) -> dict:
        assert self.summary_path is not None, f"no summary printed:\n{self.stdout[-2000:]}\n{self.stderr[-2000:]}"
        return json.loads(self.summary_path.read_text())

    @property
    def reused(self) -> list[str]:
        line = next((l for l in self.stdout.splitlines() if l.startswith("reused: ")), "reused: ")
        text = line.removeprefix("reused: ")
        return [] if text.startswith("none") or not text else [s.strip() for s in text.split(",")]


def run(output_root: Path, *args: str, timeout: float = 900) -> Finished:
    start = time.perf_counter()
    done = subprocess.run(command("run", *args), cwd=ROOT, env=environment(output_root), capture_output=True,
                          text=True, timeout=timeout)
    return Finished(done.returncode, done.stdout, done.stderr, time.perf_counter() - start)


@dataclass
class Killed:
    """A run killed with SIGKILL when ``stage`` started: its pid, the descendants it had then
    (the temporary Prefect server among them), and what it printed before."""

    stage: str
    pid: int
    children: list[int]
    output: str
    seconds: float


def kill_at_stage(output_root: Path, stage: str, *args: str, timeout: float = 900,
                  sig: signal.Signals = signal.SIGKILL) -> Killed:
    """Start ``recause run`` and send it ``sig`` (SIGKILL) as soon as it logs ``stage <stage>: started``;
    returns once it has exited."""
    import psutil

    start = time.perf_counter()
    process, lines = run_until_stage(output_root, stage, *args, timeout=timeout)
    children = [c.pid for c in psutil.Process(process.pid).children(recursive=True)]
    os.kill(process.pid, sig)
    lines += process.stdout.readlines()  # what it says while it goes (nothing, after SIGKILL)
    process.wait(timeout=120)
    return Killed(stage, process.pid, children, "".join(lines), time.perf_counter() - start)


def run_until_stage(output_root: Path, stage: str, *args: str, timeout: float = 900,
                    **env: str) -> tuple[subprocess.Popen, list[str]]:
    """Start ``recause run`` (``env`` added to its environment) and return it, still running, with
    the lines it printed, as soon as it logs ``stage <stage>: started``; its output stays a pipe to read."""
    start = time.perf_counter()
    process = subprocess.Popen(command("run", *args), cwd=ROOT, env=environment(output_root, **env), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    lines = []
    marker = f"stage {stage}: started"
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if marker in line:
            return process, lines
        if time.perf_counter() - start > timeout:
            break
    process.kill()
    raise AssertionError(f"the run never logged {marker!r}; it printed:\n{''.join(lines)[-3000:]}")


def survivors(pids: list[int], wait: float = 15.0) -> list[int]:
    """The processes among ``pids`` still running after ``wait`` seconds (the watchdog's grace is 5 s)."""
    import psutil

    deadline = time.time() + wait
    while True:
        alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        if not alive or time.time() > deadline:
            return alive
        time.sleep(0.25)


def mlflow_runs(output_root: Path) -> list[dict]:
    """Every run in the local MLflow store: id, name, status, end time, and its recause tags."""
    with closing(sqlite3.connect(output_root / "mlflow.db")) as db:
        rows = db.execute("SELECT run_uuid, name, status, end_time FROM runs").fetchall()
        tags = db.execute("SELECT run_uuid, key, value FROM tags WHERE key LIKE 'recause.%'").fetchall()
    by_run: dict[str, dict] = {}
    for run_id, key, value in tags:
        by_run.setdefault(run_id, {})[key] = value
    return [{"id": r, "name": n, "status": s, "end_time": e, "tags": by_run.get(r, {})} for r, n, s, e in rows]


def prefect_runs(output_root: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(flow runs, task runs) in the local Prefect database as (name, state type)."""
    with closing(sqlite3.connect(output_root / "prefect" / "prefect.db")) as db:
        flows = db.execute("SELECT name, state_type FROM flow_run").fetchall()
        tasks = db.execute("SELECT name, state_type FROM task_run").fetchall()
    return flows, tasks


def comparable(summary: dict) -> dict:
    """A summary without the entries that differ between identical runs (timings, ids, places)."""
    return {k: v for k, v in summary.items()
            if not k.startswith(VOLATILE_PREFIXES) and k not in VOLATILE_KEYS and "second" not in k}


def differences(a: dict, b: dict, rel: float = 1e-9) -> list[str]:
    """Keys whose values differ (numbers beyond a relative ``rel``)."""
    out = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, (int, float)) and isinstance(y, (int, float)) and not isinstance(x, bool):
            if not (x == y or abs(x - y) <= rel * max(abs(x), abs(y))):
                out.append(f"{key}: {x} != {y}")
        elif x != y:
            out.append(f"{key}: {str(x)[:80]} != {str(y)[:80]}")
    return out
