"""Test setup: one torch thread, no telemetry, offline, data root at ../shared/data.

Set before any heavy import so Prefect, MLflow and GX read them at start-up.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
# Two test workers share the two cores: a temporary Prefect server on a new database (its migrations:
# ~32 s here unloaded) may take twice as long to answer.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "240")
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="recause-prefect-"))
if SHARED_DATA.is_dir():
    os.environ.setdefault("RECAUSE_DATA_DIR", str(SHARED_DATA))


# The order of files, for `make test`'s two workers (pytest-xdist hands out whole files in collection order):
# first `test_recovery.py` (~14 min; its four concurrent runs fill both cores while the other worker goes through
# the unit-test files, which do not mind a slow core), then every file without end-to-end runs in its usual
# order, then those with them, longest first (the `--durations` table of a CI run), so both workers end together.
FIRST = "test_recovery.py"
LONGEST_LAST = ("test_ui.py", "test_cli.py", "test_deploy.py", "test_tracking_server.py", "test_task_runners.py",
                "test_flow.py", "test_bad_inputs.py", "test_compare.py")


def file_rank(name: str) -> int:
    return 0 if name == FIRST else 2 + LONGEST_LAST.index(name) if name in LONGEST_LAST else 1


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: file_rank(item.path.name))  # stable: a file's tests keep their order


@pytest.fixture
def one_thread():
    """torch on one thread for the test (5-8x faster on 2 cores; the setting tests and CI use)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The folder of real datasets (``../shared/data``); tests that need it skip without it."""
    root = Path(os.environ.get("RECAUSE_DATA_DIR", SHARED_DATA))
    if not root.is_dir():
        pytest.skip(f"real datasets not found at {root}")
    return root


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test API for the whole session (starting one costs ~10 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
