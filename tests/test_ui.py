"""The two UIs a team works in, driven in headless Chromium (Debian's chromium via Playwright), with
every server on 127.0.0.1 started and stopped here:

- the Prefect UI: open the ``recause/on-demand`` deployment's custom-run form, choose dataset ``coat``
  and preset ``smoke``, submit, wait for Completed, and read the run's markdown artifact (key metrics
  and a link to the MLflow run);
- the MLflow UI: the compare view of two runs opens on the headline ``KEY/`` metrics.

Screenshots: ``outputs/test-screenshots/prefect-*.png`` and ``mlflow-compare.png``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from browser import SCREENSHOTS, chromium_page
from test_deploy import BIN, SHARED_DATA, api, free_port, start, stop, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def finished(url: str, run_id: str) -> dict | None:
    state = api(url, f"/flow_runs/{run_id}")["state"]
    return state if state["type"] in ("COMPLETED", "FAILED", "CRASHED") else None


def choose(page, name: str, value: str, attempts: int = 3) -> None:
    """Pick ``value`` in the form's dropdown ``name``, waiting until the form shows it.

    The select re-renders as the form loads (under CI load a first pick can land on a list that is
    being replaced), so the pick is retried until the displayed value is the one chosen.
    """
    from playwright.sync_api import expect

    field = page.locator(".schema-form-property", has_text=f"{name} (Optional)").first
    shown = field.locator(".p-select-button__value")
    for attempt in range(attempts):
        field.locator("button.p-select-button__control").click()
        page.keyboard.press("ArrowDown")  # opens the dropdown's list
        page.locator("[role=option]", has_text=value).first.click()
        try:
            expect(shown).to_have_text(value, timeout=10_000)
            return
        except AssertionError:
            if attempt == attempts - 1:
                raise
            page.keyboard.press("Escape")


def submitted_run(url: str, deployment_id: str) -> str | None:
    runs = api(url, "/flow_runs/filter", {"deployments": {"id": {"any_": [deployment_id]}}})
    return runs[0]["id"] if runs else None


def submit(page, url: str, deployment_id: str, tmp_path: Path, wait: float = 90.0) -> str:
    """Click the form's Submit and return the flow run it created, read from the API.

    The UI navigates back to the deployment after the POST returns, but under CI load that POST
    (SQLite behind the ephemeral server) has taken longer than a navigation timeout, so the test waits
    on the run itself. A click that created nothing (the page still on the form) is repeated once; when
    no run comes, the page is kept as ``prefect-submitted.png`` and the server log's tail is in the error.
    """
    for attempt in range(2):
        page.get_by_role("button", name="Submit").click()
        try:
            return wait_for(lambda: submitted_run(url, deployment_id), wait, "the flow run submitted from the form")
        except AssertionError:
            page.screenshot(path=str(SCREENSHOTS / "prefect-submitted.png"), full_page=True)
            if attempt == 1 or not page.url.rstrip("/").endswith("/run"):
                raise AssertionError(f"no flow run after Submit; page {page.url}; server log tail:\n"
                                     + (tmp_path / "server.log").read_text()[-3000:]) from None
    raise AssertionError("unreachable")


def test_prefect_form_to_completed_run_and_mlflow_compare(tmp_path: Path) -> None:
    prefect_port, mlflow_port = free_port(), free_port()
    url, ui = f"http://127.0.0.1:{prefect_port}/api", f"http://127.0.0.1:{prefect_port}"
    mlflow_ui = f"http://127.0.0.1:{mlflow_port}"
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_TRACKING_URI"))} | {
        "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_API_URL": url, "PREFECT_UI_API_URL": url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "RECAUSE_OUTPUT_ROOT": str(out),
        "RECAUSE_DATA_DIR": str(SHARED_DATA), "RECAUSE_MLFLOW_UI_URL": mlflow_ui, "OMP_NUM_THREADS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true", "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    processes = [start([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(prefect_port)],
                       env, tmp_path / "server.log")]
    try:
        wait_for(lambda: api(url, "/health"), 120, "the Prefect server")
        processes.append(start([str(BIN / "recause"), "deploy"], env, tmp_path / "deploy.log"))
        deployment = wait_for(lambda: next((d for d in api(url, "/deployments/filter", {}) if d["name"] == "on-demand"), None),
                              120, "the on-demand deployment")
        with chromium_page(1400, 1000) as page:
            page.goto(f"{ui}/deployments/deployment/{deployment['id']}/run", wait_until="networkidle")
            for name, value in (("dataset", "coat"), ("preset", "smoke")):
                choose(page, name, value)
            form_height = page.evaluate("document.documentElement.scrollHeight")
            page.screenshot(path=str(SCREENSHOTS / "prefect-form.png"), full_page=True)
            run_id = submit(page, url, deployment["id"], tmp_path)
            state = wait_for(lambda: finished(url, run_id), 600, "the run submitted from the form", 2.0)
            assert state["type"] == "COMPLETED", (state, (tmp_path / "deploy.log").read_text()[-3000:])
            parameters = api(url, f"/flow_runs/{run_id}")["parameters"]
            assert (parameters["dataset"], parameters["preset"]) == ("coat", "smoke")
            page.goto(f"{ui}/runs/flow-run/{run_id}", wait_until="networkidle")
            page.get_by_text("Completed").first.wait_for(timeout=60_000)
            page.screenshot(path=str(SCREENSHOTS / "prefect-run-completed.png"), full_page=True)
            # the run's markdown artifact: the key metrics and a link to the MLflow run
            [artifact] = api(url, "/artifacts/filter", {"artifacts": {"key": {"any_": ["recause-summary"]}}})
            page.goto(f"{ui}/artifacts/artifact/{artifact['id']}", wait_until="networkidle")
            page.get_by_text("Recause run: coat (smoke)").first.wait_for(timeout=60_000)
            page.screenshot(path=str(SCREENSHOTS / "prefect-artifact.png"), full_page=True)
            body = page.inner_text("main") if page.locator("main").count() else page.inner_text("body")
            assert "debias/auc" in body and "Report:" in body and "Interventions against the control" in body, body[-3000:]
            link = page.get_by_role("link", name="open").first.get_attribute("href")
            assert link.startswith(f"{mlflow_ui}/#/experiments/") and "/runs/" in link
            page.screenshot(path=str(SCREENSHOTS / "prefect-artifact.png"), full_page=True)
        assert form_height < 2000  # the whole form, submit button included, fits about two screens

        # a second run to compare (REST), then the MLflow UI's compare view of the two
        second = api(url, f"/deployments/{deployment['id']}/create_flow_run",
                     {"parameters": {"dataset": "coat", "preset": "smoke", "seed": 1}})
        assert wait_for(lambda: finished(url, second["id"]), 600, "the second run", 2.0)["type"] == "COMPLETED"
        from mlflow import MlflowClient

        client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
        experiment = client.get_experiment_by_name("recause/coat")
        runs = [r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" not in r.data.tags]
        assert len(runs) == 2
        processes.append(start([str(BIN / "mlflow"), "ui", "--backend-store-uri", f"sqlite:///{out / 'mlflow.db'}",
                                "--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1"], env, tmp_path / "mlflow.log"))
        wait_for(lambda: _up(mlflow_ui), 120, "the MLflow UI")
        ids = json.dumps([r.info.run_id for r in runs]).replace(" ", "")
        with chromium_page(1400, 1000) as page:
            page.goto(f"{mlflow_ui}/#/compare-runs?runs={ids}&experiments=[\"{experiment.experiment_id}\"]"
                      "&workflowType=machine_learning", wait_until="domcontentloaded")  # the UI polls: no network idle
            page.get_by_text("KEY/debias/auc").first.wait_for(timeout=120_000)  # the headline metrics, first
            for run in runs:
                assert page.get_by_text(run.info.run_name).count() >= 1
            page.get_by_text("KEY/debias/auc").first.scroll_into_view_if_needed()  # the page scrolls inside a panel
            page.screenshot(path=str(SCREENSHOTS / "mlflow-compare.png"), full_page=True)
    finally:
        for process in reversed(processes):
            stop(process)


def _up(url: str) -> bool:
    import urllib.request

    try:
        return urllib.request.urlopen(f"{url}/health", timeout=5).status == 200
    except OSError:
        return False
