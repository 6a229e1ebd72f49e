"""A tracking server on PostgreSQL (``recause tracking-server``, :mod:`recause.mlflow_config.server`), and a
run whose tracking server is not there or goes away (exit 5, the URI in the message, no summary).

The end-to-end tests (``slow`` + ``postgres``) make a throwaway cluster, start ``mlflow server`` on it on
free loopback ports, run a smoke flow against it as a user would (``recause run`` in a subprocess with
``MLFLOW_TRACKING_URI``), read the run back from the server and its rows from PostgreSQL, and check that
stopping leaves no process behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from faults import command, environment, run_until_stage, survivors
from recause.flows.cli import EXIT_TRACKING, EXIT_USAGE, main
from recause.mlflow_config import server as pg
from recause.mlflow_config.server import Cluster, TrackingServerError, free_port, start_tracking_server

ROOT = Path(__file__).resolve().parents[1]
SMALL = ("--preset", "smoke", "--set", "simulate.enabled=false", "--set", "features.enabled=false")
"""The smoke preset without its two slowest stages (a run through the server in ~50 s on 2 cores)."""
PARENT_STAGES = {"load", "validate", "split", "baselines", "train", "evaluate", "contrast", "recommend"}


def needs_postgres() -> None:
    try:
        pg.postgres_bin()
    except TrackingServerError as error:
        pytest.skip(str(error))


@pytest.fixture
def cluster_dir():
    """A new folder for a cluster, directly under /tmp: as root PostgreSQL runs as the ``postgres``
    user, whom ``/tmp/pytest-of-root`` (mode 0700) shuts out, and the socket's path must stay short."""
    needs_postgres()
    folder = Path(tempfile.mkdtemp(prefix="recause-pg-"))
    folder.chmod(0o711)
    yield folder / "data"
    shutil.rmtree(folder, ignore_errors=True)


def tree(process: subprocess.Popen) -> list[int]:
    """``process`` and every process below it."""
    import psutil

    return [process.pid, *(c.pid for c in psutil.Process(process.pid).children(recursive=True))]


def run_folder(output_root: Path) -> Path:
    (folder,) = (output_root / "runs").iterdir()
    return folder


# ---------------------------------------------------------------------------------------------- fast: errors
def test_missing_binaries_say_how_to_install_them(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(pg, "DEBIAN_ROOT", tmp_path / "none")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(TrackingServerError, match=r"initdb, postgres\) are not in .*none/<version>/bin nor on PATH: "
                                                  r"install them with `apt-get install postgresql`"):
        pg.postgres_bin()


def test_a_busy_port_is_named_with_the_option_that_moves_it() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(TrackingServerError, match=rf"port {port} on 127.0.0.1 is busy .*the MLflow server needs a free one: "
                                                      r"choose another with --port"):
            pg.require_free_port(port, "the MLflow server", "--port")


def test_a_server_not_healthy_in_time_shows_the_tail_of_its_log(tmp_path: Path) -> None:
    log = tmp_path / "mlflow.log"
    log.write_text("".join(f"line {i}\n" for i in range(10)))
    process = pg._spawn(["sleep", "30"], tmp_path / "other.log")
    try:
        with pytest.raises(TrackingServerError, match=r"the server was not healthy within 0.5 s: line 5 \| line 6 \| line 7 "
                                                      rf"\| line 8 \| line 9 \(log: {log}\)"):
            pg._wait(lambda: False, process, log, 0.5, "the server")
    finally:
        pg.stop_process(process, pg.signal.SIGTERM)
    assert process.returncode is not None


def test_a_data_folder_with_other_files_is_not_a_cluster(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(TrackingServerError, match=rf"{tmp_path} holds files but no PostgreSQL cluster \(no PG_VERSION\)"):
        pg.init_cluster(tmp_path)


def test_the_backend_uri_for_a_port_and_for_a_socket() -> None:
    assert Cluster(Path("/d"), 5433).uri() == "postgresql+psycopg2://recause@127.0.0.1:5433/mlflow"
    assert Cluster(Path("/d"), 5433, tcp=False).uri() == "postgresql+psycopg2://recause@/mlflow?host=/d&port=5433"
    assert Cluster(Path("/d"), 5433, tcp=False).connect_args()["host"] == "/d"


@pytest.mark.parametrize(("argv", "message"), [
    (["--port", "0"], "--port must be a TCP port (1-65535), got 0"),
    (["--pg-port", "70000"], "--pg-port must be a TCP port (1-65535), got 70000"),
    (["--timeout", "0"], "--timeout must be a positive number of seconds, got 0"),
    (["--backend-store-uri", "postgresql://u@h/db", "--socket-only"],
     "--backend-store-uri names a database of its own: --socket-only would set up a cluster it does not use"),
])
def test_tracking_server_usage_errors(argv: list[str], message: str, capsys) -> None:
    assert main(["tracking-server", *argv]) == EXIT_USAGE
    assert message in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- slow: real runs
@pytest.mark.slow
def test_a_run_against_a_server_that_is_not_there_fails_in_seconds_naming_it(tmp_path: Path) -> None:
    """Nothing listens at the URI: exit 5 and one line naming it, within MLflow's bounded retries
    (its defaults wait about four minutes), and no run folder with a summary or a report."""
    uri = f"http://127.0.0.1:{free_port()}"
    start = time.perf_counter()
    done = subprocess.run(command("run", "--preset", "smoke"), cwd=ROOT, env=environment(tmp_path, MLFLOW_TRACKING_URI=uri),
                          capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - start
    errors = [line for line in done.stderr.splitlines() if line.startswith("recause:")]
    assert done.returncode == EXIT_TRACKING, done.stderr[-3000:]
    assert errors == [f"recause: MLflow tracking at {uri} failed: [Errno 111] Connection refused "
                      f"({uri}/api/2.0/mlflow/experiments/search)"]
    assert "Traceback" not in done.stderr and seconds < 60
    assert not list(tmp_path.glob("runs/*/summary.json")) and not list(tmp_path.glob("runs/*/report.html"))


@pytest.mark.slow
@pytest.mark.postgres
def test_a_smoke_run_is_recorded_in_postgresql_through_the_server(cluster_dir: Path, tmp_path: Path) -> None:
    import psycopg2
    from mlflow import MlflowClient

    server = start_tracking_server(tmp_path / "server", free_port(), data_dir=cluster_dir, pg_port=free_port(), sync=False)
    try:
        processes = tree(server.mlflow) + tree(server.postgres)
        output = tmp_path / "out"
        done = subprocess.run(command("run", *SMALL), cwd=ROOT, env=environment(output, MLFLOW_TRACKING_URI=server.url),
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        summary = json.loads((run_folder(output) / "summary.json").read_text())
        run_id = summary["mlflow/run_id"]
        assert summary["mlflow/tracking_uri"] == server.url
        assert not (output / "mlflow.db").exists() and not (output / "mlartifacts").exists()  # nothing tracked locally

        client = MlflowClient(server.url)
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED"
        assert run.data.metrics["ranking/recall_at_20"] == pytest.approx(summary["ranking/recall_at_20"])
        assert run.data.metrics["KEY/ranking/recall_at_20"] == pytest.approx(summary["ranking/recall_at_20"])
        stages = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")
        assert {s.data.tags["recause.stage"] for s in stages} == PARENT_STAGES
        assert any(key.endswith("train/loss") for s in stages for key in s.data.metrics)  # Lightning's logger, through the server
        downloaded = Path(client.download_artifacts(run_id, "summary.json", str(tmp_path)))
        assert json.loads(downloaded.read_text())["mlflow/run_id"] == run_id
        (stored,) = server.artifacts.glob(f"*/{run_id}/artifacts/summary.json")  # the proxy kept it in its folder
        assert stored.read_text() == downloaded.read_text()
        assert {"report.html", "summary_table.json", "recommender"} <= {a.path for a in client.list_artifacts(run_id)}

        db = psycopg2.connect(**server.cluster.connect_args())
        try:
            with db.cursor() as cursor:
                cursor.execute("SELECT status, count(*) FROM runs GROUP BY status")
                assert dict(cursor.fetchall()) == {"FINISHED": 1 + len(PARENT_STAGES)}
                cursor.execute("SELECT value FROM metrics WHERE run_uuid = %s AND key = 'ranking/recall_at_20'", (run_id,))
                assert cursor.fetchone()[0] == pytest.approx(summary["ranking/recall_at_20"])
        finally:
            db.close()
    finally:
        server.stop()
    assert survivors(processes, wait=10) == []
    assert "database system is shut down" in server.logs["PostgreSQL"].read_text()


@pytest.mark.slow
@pytest.mark.postgres
def test_a_server_killed_mid_run_fails_the_run_naming_it_and_stops_its_database(cluster_dir: Path, tmp_path: Path) -> None:
    """``recause tracking-server`` started as a user would; its MLflow server killed as the run's first
    stage starts: the run exits 5 naming the URI and leaves no summary, report or temporary; the
    tracking-server command sees MLflow gone, stops PostgreSQL and exits 5 with MLflow's log tail."""
    import psutil

    port = free_port()
    server = subprocess.Popen(command("tracking-server", "--port", str(port), "--data-dir", str(cluster_dir)), cwd=ROOT,
                              env=environment(tmp_path / "server"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert server.stdout is not None
        lines = [server.stdout.readline() for _ in range(2)]
        uri = f"http://127.0.0.1:{port}"
        assert lines[1].strip() == f"MLFLOW_TRACKING_URI={uri}", "".join(lines) + server.stdout.read()
        processes = tree(server)
        mlflow = next(p for p in psutil.Process(server.pid).children() if "mlflow" in " ".join(p.cmdline()))
        output = tmp_path / "out"
        run, printed = run_until_stage(output, "load", *SMALL, timeout=300, MLFLOW_TRACKING_URI=uri)
        os.killpg(mlflow.pid, pg.signal.SIGKILL)
        printed += run.stdout.readlines()
        assert run.wait(120) == EXIT_TRACKING, "".join(printed)[-3000:]
        errors = [line.strip() for line in printed if line.startswith("recause:")]
        assert len(errors) == 1 and errors[0].startswith(f"recause: MLflow tracking at {uri} failed: "), errors
        folder = run_folder(output)
        assert not (folder / "summary.json").exists() and not (folder / "report.html").exists()
        assert not list(folder.rglob("*.tmp-*"))
        assert server.wait(60) == EXIT_TRACKING
        assert "recause: MLflow stopped unexpectedly" in server.stdout.read()
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(60)
    assert survivors(processes, wait=10) == []


def as_from_a_terminal() -> None:
    """Ctrl-C's signal at its default, as in a terminal: a suite started in the background (``make test &``)
    ignores SIGINT, and its commands would inherit that and never see the test's Ctrl-C."""
    pg.signal.signal(pg.signal.SIGINT, pg.signal.SIG_DFL)


@pytest.mark.slow
@pytest.mark.postgres
def test_the_command_stops_both_on_a_signal_and_a_second_start_reuses_the_cluster(cluster_dir: Path, tmp_path: Path) -> None:
    """Started twice on one data folder (made by initdb the first time, reused the second), stopped by
    SIGTERM then by SIGINT (Ctrl-C): each time exit 0, ``stopped``, PostgreSQL's clean shutdown in its
    log, and no process left."""
    for sig in (pg.signal.SIGTERM, pg.signal.SIGINT):
        port = free_port()
        server = subprocess.Popen(command("tracking-server", "--port", str(port), "--data-dir", str(cluster_dir)), cwd=ROOT,
                                  env=environment(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  preexec_fn=as_from_a_terminal)
        assert server.stdout is not None
        lines = [server.stdout.readline() for _ in range(2)]
        assert lines[1].strip() == f"MLFLOW_TRACKING_URI=http://127.0.0.1:{port}", "".join(lines) + server.stdout.read()
        assert pg.healthy(f"http://127.0.0.1:{port}")
        processes = tree(server)
        server.send_signal(sig)
        try:  # the command's own bound: each server's stop timeout, then its kill
            server.wait(2 * (pg.STOP_TIMEOUT + pg.KILL_WAIT) + 20)
        except subprocess.TimeoutExpired:
            server.kill()
            logs = {name: (tmp_path / "tracking-server" / name).read_text()[-2000:] for name in ("mlflow.log", "postgres.log")}
            pytest.fail(f"{sig.name}: no exit; output {server.stdout.read()!r}; logs {logs}")
        output = server.stdout.read().splitlines()
        assert server.returncode == 0 and output[-1] == "stopped", output
        assert [line.split(" in ")[0] for line in output[-3:-1]] == ["MLflow stopped", "PostgreSQL stopped"], output
        assert survivors(processes, wait=10) == []
    log = (tmp_path / "tracking-server" / "postgres.log").read_text()
    assert log.count("database system is shut down") == 2 and (cluster_dir / "PG_VERSION").is_file()
