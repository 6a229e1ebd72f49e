"""Deployments: a real Prefect server on 127.0.0.1, ``recause deploy`` serving the two deployments, runs
triggered through the REST API — a partial override keeps the rest of its preset, and a run whose data
fail validation ends Failed with the validation report in its state message."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import get_args

import pytest

from bad_inputs import interactions, with_cell, write_tables

BIN = Path(sys.executable).parent
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_form_choices_are_the_known_datasets_and_presets() -> None:
    from recause.flows.config import available_presets
    from recause.flows.deployments import DatasetName, PresetName, override_texts
    from recause.tasks.data import DATASETS

    assert set(get_args(DatasetName)) == set(DATASETS) and set(get_args(PresetName)) == set(available_presets())
    assert override_texts(3, {"world.n_users": 150, "contrast.estimators": ["dr", "ipw"]}) == [
        "runtime.seed=3", "world.n_users=150", 'contrast.estimators=["dr", "ipw"]']


def test_a_partial_override_keeps_the_rest_of_the_preset_and_the_environment(tmp_path: Path) -> None:
    from recause.flows.config import build_config
    from recause.flows.deployments import deployment_config

    env = {"RECAUSE_OUTPUT_ROOT": str(tmp_path), "RECAUSE_DATA_DIR": "/data"}
    config = deployment_config("coat", "", "smoke", 4, {"world.n_users": 150}, env)
    smoke = build_config("smoke", dataset="coat", env=env)
    assert config.world.n_users == 150 and config.runtime.seed == 4
    assert config.world.n_items == smoke.world.n_items and config.gnn == smoke.gnn and config.preset == "smoke"
    assert str(config.runtime.output_root) == str(tmp_path) and str(config.data.root) == "/data"  # read at run time
    assert deployment_config("synthetic", "/my/logs", "smoke", 0, None, env).data.dataset == "dir:/my/logs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


RETRYABLE = (429, 503)  # what Prefect's own client retries: the server answers 503 when SQLite is busy


def api(url: str, path: str, body: dict | None = None, attempts: int = 6) -> object:
    """One call to the Prefect REST API, retried with backoff on the statuses Prefect's client retries
    (a busy SQLite store rolls the request back, so a retried POST does not create twice)."""
    request = urllib.request.Request(f"{url}{path}", json.dumps(body).encode() if body is not None else None,
                                     {"Content-Type": "application/json"}, method="POST" if body is not None else "GET")
    for attempt in range(attempts):
        try:
            return json.loads(urllib.request.urlopen(request, timeout=30).read())
        except urllib.error.HTTPError as error:
            if error.code not in RETRYABLE or attempt == attempts - 1:
                raise
            time.sleep(2**attempt)


def wait_for(check, timeout: float, what: str, step: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check()
        except OSError:
            found = None
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(step)


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.mark.slow
def test_deployments_run_from_the_rest_api_with_partial_overrides(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_TRACKING_URI"))} | {
        "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_API_URL": url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1", "RECAUSE_OUTPUT_ROOT": str(tmp_path / "out"), "RECAUSE_DATA_DIR": str(SHARED_DATA),
        "OMP_NUM_THREADS": "1", "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    server = start([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)], env,
                   tmp_path / "server.log")
    serving = None
    try:
        wait_for(lambda: api(url, "/health"), 120, "the Prefect server")
        serving = start([str(BIN / "recause"), "deploy"], env, tmp_path / "deploy.log")
        deployments = wait_for(lambda: {d["name"]: d for d in api(url, "/deployments/filter", {})}
                               if len(api(url, "/deployments/filter", {})) == 2 else None, 120, "two deployments")
        assert deployments["nightly"]["schedules"][0]["schedule"]["cron"] == "0 3 * * *"
        assert deployments["nightly"]["parameters"] == {"preset": "default"}
        schema = deployments["on-demand"]["parameter_openapi_schema"]["properties"]
        assert "coat" in json.dumps(schema["dataset"]) and "smoke" in json.dumps(schema["preset"])  # dropdowns

        # a partial override through the REST API: one setting changed, the rest from the preset
        run = api(url, f"/deployments/{deployments['on-demand']['id']}/create_flow_run",
                  {"parameters": {"dataset": "synthetic", "preset": "smoke", "overrides": {"world.n_users": 150}}})
        state = wait_for(lambda: (s := api(url, f"/flow_runs/{run['id']}")["state"])["type"] in
                         ("COMPLETED", "FAILED", "CRASHED") and s, 600, "the deployment run", 2.0)
        assert state["type"] == "COMPLETED", (state, (tmp_path / "deploy.log").read_text()[-3000:])
        [summary_path] = (tmp_path / "out" / "runs").glob("*synthetic-smoke*/summary.json")
        summary = json.loads(summary_path.read_text())
        from mlflow import MlflowClient

        params = MlflowClient(f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}").get_run(summary["mlflow/run_id"]).data.params
        assert params["world.n_users"] == "150" and summary["data/n_users"] == 150
        assert params["world.n_items"] == "150" and params["preset"] == "smoke"  # smoke's own values stay
        assert params["runtime.output_root"] == str(tmp_path / "out")  # the serving process's environment, at run time

        # data that fail validation: the run ends Failed, its message the validation report
        case = tmp_path / "bad"
        write_tables(case, inter=with_cell(interactions(), 1, "outcome", "lots"))
        run = api(url, f"/deployments/{deployments['on-demand']['id']}/create_flow_run",
                  {"parameters": {"data_path": str(case / "data"), "preset": "smoke"}})
        state = wait_for(lambda: (s := api(url, f"/flow_runs/{run['id']}")["state"])["type"] in
                         ("COMPLETED", "FAILED", "CRASHED") and s, 300, "the failing deployment run", 2.0)
        assert state["type"] == "FAILED" and "outcome" in state["message"] and "line 3" in state["message"], state
    finally:
        if serving is not None:
            stop(serving)
        stop(server)
