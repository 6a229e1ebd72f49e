"""Process-level settings applied once, at the edge (the CLI or a deployment), before heavy imports.

Third-party libraries read their settings from environment variables at import time; this is the
one place Recause writes them. Values already set by the user win.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

# Offline and quiet: no telemetry, no hub look-ups, no update checks.
QUIET_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # A new output root's temporary server migrates a new database first (~32 s on a 2-core machine).
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "GX_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


# A command that only reads a tracking server gives up in seconds when it does not answer
# (MLflow's defaults retry for about four minutes).
READER_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}
# A run rides out a blip of a few seconds and fails within about ten when its tracking server is
# gone (MLflow's defaults: 7 retries, backoff factor 2, about four minutes before the error).
RUN_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                "MLFLOW_HTTP_REQUEST_TIMEOUT": "60"}


def quiet_environment(env: MutableMapping[str, str] = os.environ) -> None:
    """The quiet/offline defaults alone."""
    for key, value in QUIET_DEFAULTS.items():
        env.setdefault(key, value)


def prepare_reader_environment(env: MutableMapping[str, str] = os.environ) -> None:
    """For commands that only read the tracking store (``compare``): quiet, and quick to give up on a server."""
    quiet_environment(env)
    for key, value in READER_DEFAULTS.items():
        env.setdefault(key, value)


def prepare_environment(output_root: Path, threads: int, env: MutableMapping[str, str] = os.environ) -> None:
    """Quiet/offline defaults, MLflow's HTTP retries bounded (:data:`RUN_DEFAULTS`), Prefect's local
    state under ``output_root``, thread counts.

    ``PREFECT_HOME`` (Prefect's ephemeral SQLite API and result storage) defaults to
    ``<output_root>/prefect`` unless ``PREFECT_HOME`` or ``PREFECT_API_URL`` is set.
    """
    quiet_environment(env)
    for key, value in RUN_DEFAULTS.items():
        env.setdefault(key, value)
    if "PREFECT_API_URL" not in env:
        env.setdefault("PREFECT_HOME", str(Path(output_root).resolve() / "prefect"))
        Path(env["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    for key in THREAD_VARIABLES:
        env.setdefault(key, str(threads))



def share_api_with_workers(env: MutableMapping[str, str] = os.environ) -> None:
    """Point the processes this run starts (Dask workers) at its Prefect API: without ``PREFECT_API_URL``
    the run talks to a temporary server it started, and each worker would otherwise start its own (~25 s each)."""
    if "PREFECT_API_URL" in env:
        return
    from prefect import get_client

    with get_client(sync_client=True) as client:  # the temporary server, already started by this process
        env["PREFECT_API_URL"] = str(client.api_url).rstrip("/")
