"""Deployments: the flow a schedule or the Prefect UI starts, with small typed parameters.

:func:`recause_flow` takes what a person fills in a form — ``dataset`` (a dropdown of the known
names; ``data_path`` for your own folder), ``preset`` (a dropdown), ``seed`` and ``overrides`` (a
dict of ``--set``-style settings, e.g. ``{"world.n_users": 500}``) — and builds the configuration
*inside* the run from the preset, the environment of the process that runs it (``RECAUSE_DATA_DIR``,
``RECAUSE_OUTPUT_ROOT``, ``MLFLOW_TRACKING_URI``) and the overrides, so a partial override keeps
every other setting of its preset. It then runs :func:`~recause.flows.pipeline.pipeline` as a subflow
and ends in its state (a run whose data fail validation ends Failed with the validation report).

:func:`serve_deployments` is ``recause deploy``: Prefect 3's ``serve`` with two deployments of this
flow — ``nightly`` on a cron schedule and ``on-demand`` for the UI's "Run" button. ``serve`` (not a
work pool) because Recause runs on one machine beside its data: the serving process is the worker,
no pool or infrastructure block to set up, and it stops with Ctrl-C. A team with workers elsewhere
can deploy the same entrypoint (``recause.flows.deployments:recause_flow``) to a process work pool.
"""

from __future__ import annotations

import json
import os
from typing import Any, Literal

from prefect import flow, get_run_logger

DatasetName = Literal["synthetic", "movielens-100k", "coat", "open-bandit", "yahoo-r3"]
PresetName = Literal["smoke", "default", "full"]

NIGHTLY_CRON = "0 3 * * *"


def override_texts(seed: int, overrides: dict[str, Any] | None) -> list[str]:
    """``{"world.n_users": 500}`` → ``["runtime.seed=0", "world.n_users=500"]`` (values as JSON, which YAML reads)."""
    texts = [f"runtime.seed={int(seed)}"]
    for key, value in (overrides or {}).items():
        texts.append(f"{key}={json.dumps(value)}")
    return texts


def deployment_config(dataset: str, data_path: str, preset: str, seed: int, overrides: dict[str, Any] | None, env):
    """The run's configuration: preset < environment < dataset < seed and overrides."""
    from recause.flows.config import build_config

    chosen = f"dir:{data_path}" if data_path else dataset
    return build_config(preset, dataset=chosen, overrides=override_texts(seed, overrides), env=env)


@flow(name="recause", log_prints=True)
def recause_flow(
    dataset: DatasetName = "synthetic",
    preset: PresetName = "smoke",
    seed: int = 0,
    overrides: dict[str, Any] | None = None,
    data_path: str = "",
):
    """Run Recause on a dataset with a preset; the configuration is built inside the run.

    Args:
        dataset: A known dataset (ignored when data_path is given).
        preset: smoke (about a minute), default or full.
        seed: The run's random seed.
        overrides: Settings on top of the preset, e.g. {"world.n_users": 500, "gnn.epochs": 20}.
        data_path: A folder of your own interactions on the machine that runs the flow (read as dir:PATH).
    """
    from recause.flows.runners import check_runner, pipeline_for
    from recause.flows.runtime import prepare_environment

    config = deployment_config(dataset, data_path, preset, seed, overrides, os.environ)
    prepare_environment(config.runtime.output_root, config.runtime.threads)
    get_run_logger().info("recause: %s, preset %s, seed %d, overrides %s", config.data.dataset, preset, seed, overrides or {})
    check_runner(config.runtime)
    state = pipeline_for(config)(config, return_state=True)
    if not state.is_completed():  # this run ends as the pipeline did, with its message (a validation report)
        from prefect.states import Failed

        return Failed(message=state.message)
    return state.result()


def serve_deployments(cron: str = NIGHTLY_CRON, nightly_preset: str = "default") -> None:
    """Register ``nightly`` (``cron``, preset ``nightly_preset``) and ``on-demand``, and serve both until stopped."""
    from prefect import serve

    nightly = recause_flow.to_deployment(
        name="nightly", cron=cron, parameters={"preset": nightly_preset}, tags=["recause"],
        description=f"Recause on its schedule ({cron}), preset {nightly_preset}.")
    on_demand = recause_flow.to_deployment(
        name="on-demand", tags=["recause"], description="Recause when you press Run: pick the dataset and preset.")
    serve(nightly, on_demand)

