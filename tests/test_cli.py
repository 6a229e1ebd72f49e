"""The ``recause`` command as a user runs it (subprocesses, real exit codes and output)."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def recause(*args: str, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}  # its own ephemeral API
    return subprocess.run(
        [sys.executable, "-m", "recause.flows.cli", *args],
        cwd=ROOT, env={**full_env, **(env or {})}, capture_output=True, text=True, timeout=timeout,
    )


def test_help_lists_the_commands() -> None:
    result = recause("--help")
    assert result.returncode == 0
    assert all(word in result.stdout for word in ("run", "validate", "config", "presets", "compare"))


def test_bad_setting_is_a_usage_error() -> None:
    result = recause("config", "--set", "world.n_users=-3")
    assert result.returncode == 2 and "world.n_users" in result.stderr and "Traceback" not in result.stderr


def test_missing_data_root_names_the_folder(tmp_path: Path) -> None:
    result = recause("validate", "--dataset", "coat", "--set", f"data.root={tmp_path}", "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 3
    assert str(tmp_path / "coat") in result.stderr and "Traceback" not in result.stderr


def corrupt_coat(source: Path, target: Path) -> set[tuple[str, int]]:
    """Copy Coat and break three cells; return the (file, line) pairs that must be quarantined."""
    shutil.copytree(source, target)

    def edit(name: str, line: int, value: str, observed_in: str | None = None) -> None:
        path = target / name
        lines = path.read_text().splitlines()
        cells = lines[line - 1].split()
        ref = (target / (observed_in or name)).read_text().splitlines()[line - 1].split()
        col = next(i for i, v in enumerate(ref) if float(v) != 0)
        cells[col] = value
        lines[line - 1] = " ".join(cells)
        path.write_text("\n".join(lines) + "\n")

    edit("train.ascii", 3, "9")  # rating outside 1..5
    edit("test.ascii", 5, "7")  # rating outside 1..5 in the randomized split
    edit("propensities.ascii", 10, "0", observed_in="train.ascii")  # propensity of an observed train cell = 0
    return {("coat/train.ascii", 3), ("coat/test.ascii", 5), ("coat/train.ascii", 10)}


@pytest.mark.integration
def test_validate_a_corrupted_coat_names_and_quarantines_exactly_the_bad_rows(tmp_path: Path, data_root: Path) -> None:
    expected = corrupt_coat(data_root / "coat", tmp_path / "data" / "coat")
    out = tmp_path / "out"
    result = recause("validate", "--dataset", "coat", "--set", f"data.root={tmp_path / 'data'}", "--output-dir", str(out))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for file, line in expected:
        assert f"{file} line {line}" in result.stderr
    quarantine = pd.read_parquet(out / "validation" / "quarantine.parquet")
    assert set(zip(quarantine["source_file"], quarantine["source_row"])) == expected
    assert set(quarantine["column"]) == {"outcome", "propensity"}


@pytest.mark.integration
def test_validate_the_real_coat_passes(tmp_path: Path, data_root: Path) -> None:
    result = recause("validate", "--dataset", "coat", "--output-dir", str(tmp_path), env={"RECAUSE_DATA_DIR": str(data_root)})
    assert result.returncode == 0, result.stderr
    assert "passed" in result.stdout


@pytest.mark.slow
def test_run_prints_the_summary_path(tmp_path: Path) -> None:
    env = {"RECAUSE_OUTPUT_ROOT": str(tmp_path), "PREFECT_HOME": str(tmp_path / "prefect")}
    result = recause("run", "--preset", "smoke", env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(l for l in result.stdout.splitlines() if l.startswith("summary: "))
    path = Path(line.removeprefix("summary: "))
    assert path.exists() and path.is_relative_to(tmp_path / "runs") and re.fullmatch(r"\d{8}T\d{6}Z-synthetic-smoke-[0-9a-f]{8}", path.parent.name)
    # what the printed path holds: this run's summary, data that passed, metrics in range
    summary = json.loads(path.read_text())
    assert (summary["run/dataset"], summary["run/preset"]) == ("synthetic", "smoke")
    assert summary["validation/passed"] is True and summary["validation/n_quarantined"] == 0
    assert 0.0 <= summary["ranking/recall_at_20"] <= 1.0 and 0.0 < summary["causal/pehe"] < 1.0
    assert summary["causal/cp_at_10"] <= summary["causal/cp_at_10_oracle"]
    assert all(summary[f"stage/{s}/seconds"] > 0 for s in ("load", "validate", "split", "train", "evaluate"))
    for key, value in summary.items():  # runtime facts, where the summary reports them, are the run's settings
        if key == "runtime/seed":
            assert value == 0
        elif key == "runtime/threads":
            assert value == 1
        elif key.startswith("runtime/") and isinstance(value, (int, float)) and not isinstance(value, bool):
            assert value >= 0, key
    # the MLflow run it names is in the SQLite store under the output root, finished, in this dataset's experiment
    store = tmp_path / "mlflow.db"
    assert summary["mlflow/tracking_uri"] == f"sqlite:///{store.resolve().as_posix()}"
    with closing(sqlite3.connect(store)) as db:
        rows = db.execute(
            "SELECT r.status, e.name FROM runs r JOIN experiments e ON r.experiment_id = e.experiment_id WHERE r.run_uuid = ?",
            (summary["mlflow/run_id"],),
        ).fetchall()
        tags = dict(db.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (summary["mlflow/run_id"],)).fetchall())
    assert rows == [("FINISHED", "recause/synthetic")]
    assert tags["recause.preset"] == "smoke" and tags["recause.output_dir"] == str(path.parent)


@pytest.mark.slow
def test_an_edit_naming_an_unknown_topic_is_a_usage_error(tmp_path: Path) -> None:
    env = {"RECAUSE_OUTPUT_ROOT": str(tmp_path), "PREFECT_HOME": str(tmp_path / "prefect")}
    result = recause("run", "--preset", "smoke", "--set", "gnn.enabled=false", "--set",
                     "contrast.interventions=[{kind: user_edit, name: more-tea, topic: darjeeling}]", env=env, timeout=600)
    assert result.returncode == 2, result.stderr[-3000:]
    # the command's own last word is the clean message (Prefect's task log above it still carries the exception)
    ours = [line for line in result.stderr.splitlines() if line.startswith("recause:")]
    assert ours and ours[-1].startswith("recause: invalid configuration: topic 'darjeeling': no topic has that term")
