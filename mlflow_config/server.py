"""A tracking server on a real database: a PostgreSQL cluster and ``mlflow server``, started and stopped together.

``recause tracking-server`` (:func:`start_tracking_server`, then :func:`serve_until_stopped`) makes a
PostgreSQL cluster in ``<output_root>/tracking-server/postgres`` (or reuses the one there, or any
folder given), starts it on 127.0.0.1 (or on a unix socket alone), creates the database ``mlflow``
owned by the role ``recause``, and starts ``mlflow server`` on it with one worker, artifacts
proxied to a local folder, job execution and telemetry off. It returns once ``/health`` answers;
clients then set ``MLFLOW_TRACKING_URI=http://127.0.0.1:<port>``. With an existing
``backend_store_uri`` (``postgresql://user@host:port/db``) no cluster is started.

PostgreSQL refuses to run as root: as root, ``initdb`` and ``postgres`` run as the ``postgres``
system user (Debian's package creates it) through ``setpriv``, which execs the program itself, so
the process we hold is PostgreSQL's postmaster and a signal reaches it directly. The data folder is
then given to that user, and every folder above it must be open to it (``/tmp/pytest-of-root``,
mode 0700, is not: tests put their cluster under ``/tmp`` itself).

Each server runs in its own session (process group), so a Ctrl-C in the terminal reaches only
this process, which stops MLflow first (SIGTERM to its group: the CLI and its uvicorn worker) and
then PostgreSQL (SIGINT, its "fast" shutdown: clients disconnected, a checkpoint written).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
ROLE, DATABASE = "recause", "mlflow"
SERVICE_USER = "postgres"
"""The system user PostgreSQL runs as when we are root (it refuses root)."""
DEBIAN_ROOT = Path("/usr/lib/postgresql")
INSTALL_HINT = "install them with `apt-get install postgresql`"
SOCKET_PATH_LIMIT = 107
"""Longest unix socket path Linux takes (``sun_path`` is 108 bytes with the final NUL)."""
SERVER_ENVIRONMENT = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
"""No job runner processes (16 by default, ~2 GB) and no usage reports."""


STOP_TIMEOUT = 30.0
"""Seconds each server has to exit after its stop signal before it is killed."""
KILL_WAIT = 10.0
"""Seconds a killed server has to be reaped."""


class TrackingServerError(RuntimeError):
    """The tracking server cannot start or stopped: what is missing or what its log says."""


# ---------------------------------------------------------------------------------------------- PostgreSQL
def postgres_bin() -> Path:
    """The folder of PostgreSQL's server programs (``initdb``, ``postgres``): Debian's newest
    ``/usr/lib/postgresql/<version>/bin``, else the folder of ``initdb`` on ``PATH``."""
    versions = [p for p in DEBIAN_ROOT.glob("*/bin") if (p / "initdb").is_file() and p.parent.name.isdigit()]
    if versions:
        return max(versions, key=lambda p: int(p.parent.name))
    found = shutil.which("initdb")
    if found and (Path(found).parent / "postgres").is_file():
        return Path(found).parent
    raise TrackingServerError(f"PostgreSQL's server programs (initdb, postgres) are not in {DEBIAN_ROOT}/<version>/bin "
                              f"nor on PATH: {INSTALL_HINT}")


def as_service_user(command: list[str]) -> list[str]:
    """``command`` as the :data:`SERVICE_USER` when we are root (PostgreSQL refuses root), else as is."""
    if os.geteuid() != 0:
        return command
    _service_ids()
    return ["setpriv", f"--reuid={SERVICE_USER}", f"--regid={SERVICE_USER}", "--init-groups", "--", *command]


def _service_ids() -> tuple[int, int]:
    import pwd

    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise TrackingServerError(f"PostgreSQL refuses to run as root, and there is no {SERVICE_USER!r} user to run it as: "
                                  f"{INSTALL_HINT} (the package creates the user), or run as another user") from None
    return entry.pw_uid, entry.pw_gid


def init_cluster(data_dir: Path, sync: bool = True) -> bool:
    """Make a PostgreSQL cluster in ``data_dir`` (role :data:`ROLE`, trust authentication: it only
    ever listens on loopback or a socket in the data folder); returns False when one is already there.
    ``sync=False`` skips initdb's fsync (seconds saved, for throwaway clusters)."""
    data_dir = Path(data_dir).resolve()
    if (data_dir / "PG_VERSION").is_file():
        return False
    if data_dir.exists() and any(data_dir.iterdir()):
        raise TrackingServerError(f"{data_dir} holds files but no PostgreSQL cluster (no PG_VERSION): "
                                  "give an empty or new folder, or an existing cluster's")
    initdb = postgres_bin() / "initdb"
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    if os.geteuid() == 0:
        os.chown(data_dir, *_service_ids())
        reach = subprocess.run(as_service_user(["test", "-w", str(data_dir)]), capture_output=True)
        if reach.returncode != 0:
            raise TrackingServerError(f"the {SERVICE_USER} user (PostgreSQL refuses root) cannot write {data_dir}: every folder "
                                      "above it must be open to it (chmod o+x), or give a data folder elsewhere")
    command = [str(initdb), "-D", str(data_dir), "-U", ROLE, "--auth=trust", "-E", "UTF8", "--no-instructions"]
    done = subprocess.run(as_service_user(command + ([] if sync else ["--no-sync"])), capture_output=True, text=True)
    if done.returncode != 0:
        raise TrackingServerError(f"initdb failed in {data_dir}: {_tail(done.stdout + done.stderr)}")
    return True


@dataclass(frozen=True)
class Cluster:
    """A PostgreSQL cluster's address: its data folder (which also holds its unix socket) and port;
    ``tcp=False`` listens on the socket alone."""

    data_dir: Path
    port: int
    tcp: bool = True

    def connect_args(self, database: str = DATABASE) -> dict[str, object]:
        """Keyword arguments of ``psycopg2.connect``."""
        host = HOST if self.tcp else str(self.data_dir)
        return {"host": host, "port": self.port, "user": ROLE, "dbname": database, "connect_timeout": 3}

    def uri(self, database: str = DATABASE) -> str:
        """The SQLAlchemy URI MLflow's ``--backend-store-uri`` takes."""
        if self.tcp:
            return f"postgresql+psycopg2://{ROLE}@{HOST}:{self.port}/{database}"
        return f"postgresql+psycopg2://{ROLE}@/{database}?host={self.data_dir}&port={self.port}"


def start_postgres(cluster: Cluster, log: Path, timeout: float) -> subprocess.Popen:
    """Start the postmaster of ``cluster`` (its output to ``log``), wait until it takes connections
    and create the database :data:`DATABASE` if missing; returns the running process."""
    data_dir = Path(cluster.data_dir).resolve()
    socket_file = data_dir / f".s.PGSQL.{cluster.port}"
    if len(str(socket_file)) > SOCKET_PATH_LIMIT:
        raise TrackingServerError(f"the socket path {socket_file} is longer than {SOCKET_PATH_LIMIT} characters: "
                                  "give a data folder with a shorter path")
    if cluster.tcp:
        require_free_port(cluster.port, "PostgreSQL", "--pg-port")
    postgres = postgres_bin() / "postgres"
    command = [str(postgres), "-D", str(data_dir), "-k", str(data_dir), "-p", str(cluster.port),
               "-h", HOST if cluster.tcp else ""]
    return _start(as_service_user(command), log, lambda: _database_ready(cluster), f"PostgreSQL on {data_dir}", timeout,
                  signal.SIGINT)


def _database_ready(cluster: Cluster) -> bool:
    """Whether the cluster takes connections; once it does, the database :data:`DATABASE` is made if missing."""
    import psycopg2

    try:
        connection = psycopg2.connect(**cluster.connect_args("postgres"))
    except psycopg2.OperationalError:
        return False
    try:
        connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        connection.close()
    return True


# ---------------------------------------------------------------------------------------------- MLflow
def start_mlflow(backend_store_uri: str, artifacts: Path, port: int, log: Path, timeout: float) -> subprocess.Popen:
    """``mlflow server`` on ``HOST:port`` over ``backend_store_uri``, artifacts proxied into the
    folder ``artifacts``, one worker; returns once ``/health`` answers."""
    require_free_port(port, "the MLflow server", "--port")
    Path(artifacts).mkdir(parents=True, exist_ok=True)
    mlflow = Path(sys.executable).with_name("mlflow")
    command = [str(mlflow), "server", "--backend-store-uri", backend_store_uri,
               "--artifacts-destination", str(Path(artifacts).resolve()),
               "--host", HOST, "--port", str(port), "--workers", "1"]
    return _start(command, log, lambda: healthy(f"http://{HOST}:{port}"), f"the MLflow server on port {port}", timeout,
                  signal.SIGTERM, os.environ | SERVER_ENVIRONMENT)


def healthy(url: str) -> bool:
    """Whether the MLflow server at ``url`` answers ``/health`` with ``OK``."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=2) as response:
            return response.status == 200 and response.read().strip() == b"OK"
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------- both
@dataclass
class TrackingServer:
    """A running tracking server: the URL clients use, the store behind it, its processes and logs
    (``cluster`` and ``postgres`` are None when the store is someone else's database)."""

    url: str
    backend_store_uri: str
    artifacts: Path
    mlflow: subprocess.Popen
    cluster: Cluster | None
    postgres: subprocess.Popen | None
    logs: dict[str, Path]

    def processes(self) -> dict[str, subprocess.Popen]:
        return {"MLflow": self.mlflow} | ({"PostgreSQL": self.postgres} if self.postgres else {})

    def wait(self, poll: float = 0.5) -> str:
        """Block until one of the processes exits; returns its name."""
        while True:
            for name, process in self.processes().items():
                if process.poll() is not None:
                    return name
            time.sleep(poll)

    def stop(self, timeout: float = STOP_TIMEOUT, announce: Callable[[str], None] | None = None) -> None:
        """MLflow first (its clients' last writes land), then PostgreSQL; ``announce`` hears each one's seconds."""
        for name, process, sig in (("MLflow", self.mlflow, signal.SIGTERM), ("PostgreSQL", self.postgres, signal.SIGINT)):
            if process is not None:
                start = time.monotonic()
                how = stop_process(process, sig, timeout)
                if announce is not None:
                    announce(f"{name} {how} in {time.monotonic() - start:.1f} s")

    def __enter__(self) -> TrackingServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_tracking_server(folder: Path, port: int, *, data_dir: Path | None = None, pg_port: int | None = None,
                          socket_only: bool = False, backend_store_uri: str | None = None, artifacts: Path | None = None,
                          timeout: float = 60.0, sync: bool = True) -> TrackingServer:
    """Start PostgreSQL (unless ``backend_store_uri`` names a store) and ``mlflow server`` on ``port``.

    ``folder`` holds the logs and, by default, the cluster (``postgres/``) and the artifacts
    (``artifacts/``); ``pg_port`` defaults to a free port; ``timeout`` (seconds) bounds each
    server's start. On any failure, whatever was started is stopped again.
    """
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    logs = {"PostgreSQL": folder / "postgres.log", "MLflow": folder / "mlflow.log"}
    artifacts = Path(artifacts).resolve() if artifacts else folder / "artifacts"
    cluster = postgres = None
    try:
        if backend_store_uri is None:
            cluster = Cluster(Path(data_dir).resolve() if data_dir else folder / "postgres", pg_port or free_port(), not socket_only)
            init_cluster(cluster.data_dir, sync)
            postgres = start_postgres(cluster, logs["PostgreSQL"], timeout)
            backend_store_uri = cluster.uri()
        mlflow = start_mlflow(backend_store_uri, artifacts, port, logs["MLflow"], timeout)
    except BaseException:
        if postgres is not None:
            stop_process(postgres, signal.SIGINT)
        raise
    return TrackingServer(f"http://{HOST}:{port}", backend_store_uri, artifacts, mlflow, cluster, postgres, logs)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM raises :class:`KeyboardInterrupt`, as Ctrl-C does, so both stop the servers."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve_until_stopped(server: TrackingServer, announce: Callable[[str], None]) -> None:
    """Announce the server, then wait for Ctrl-C (SIGINT; SIGTERM too under :func:`sigterm_as_interrupt`)
    or for a process to die (an error with its log's tail), and stop both."""
    try:
        announce(f"MLFLOW_TRACKING_URI={server.url}")
        announce(f"store: {_without_password(server.backend_store_uri)}; artifacts: {server.artifacts}; logs: "
                 f"{', '.join(str(p) for p in server.logs.values() if p.exists())}")
        announce("Ctrl-C or SIGTERM stops " + " and ".join(server.processes()))
        died = server.wait()
        raise TrackingServerError(f"{died} stopped unexpectedly: {_tail(_read(server.logs[died]))} (log: {server.logs[died]})")
    except KeyboardInterrupt:
        announce("stopping " + " and ".join(server.processes()))
    finally:
        server.stop(announce=announce)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


# ---------------------------------------------------------------------------------------------- processes and ports
def free_port() -> int:
    """A TCP port on :data:`HOST` that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def require_free_port(port: int, what: str, option: str) -> None:
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError as error:
            raise TrackingServerError(f"port {port} on {HOST} is busy ({error.strerror}); {what} needs a free one: "
                                      f"choose another with {option}") from None


def stop_process(process: subprocess.Popen, sig: signal.Signals, timeout: float = STOP_TIMEOUT) -> str:
    """Send ``sig`` to ``process``'s process group (its own session); SIGKILL it after ``timeout`` seconds.

    Returns how it ended: ``stopped``, ``killed`` (no exit within ``timeout``) or ``had exited``. At most
    ``timeout`` + :data:`KILL_WAIT` seconds."""
    how = "had exited"
    if process.poll() is None:
        _signal_group(process, sig)
        how = "stopped"
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            how = "killed"
            process.wait(KILL_WAIT)
    _signal_group(process, signal.SIGKILL)  # what it left in its group (a uvicorn worker)
    return how


def _signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _spawn(command: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    with open(log, "ab") as output:  # the child keeps its own descriptor
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)


def _start(command: list[str], log: Path, ready: Callable[[], bool], what: str, timeout: float, stop: signal.Signals,
           env: dict[str, str] | None = None) -> subprocess.Popen:
    """Spawn ``command`` and wait until ``ready()``; if it fails to (or we are interrupted), stop it with ``stop``."""
    process = _spawn(command, log, env)
    try:
        _wait(ready, process, log, timeout, what)
    except BaseException:
        stop_process(process, stop)
        raise
    return process


def _wait(ready: Callable[[], bool], process: subprocess.Popen, log: Path, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            raise TrackingServerError(f"{what} exited with code {process.returncode}: {_tail(_read(log))} (log: {log})")
        if time.monotonic() > deadline:
            raise TrackingServerError(f"{what} was not healthy within {timeout:g} s: {_tail(_read(log))} (log: {log})")
        time.sleep(0.25)


def _read(path: Path) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def _tail(text: str, lines: int = 5) -> str:
    kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(kept) if kept else "(no output)"


def _without_password(uri: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))
