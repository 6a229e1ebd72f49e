"""Crash recovery: runs whose process died (``kill -9``, power loss, OOM) are closed, not left RUNNING.

Every run records its owner (:class:`~recause.flows.runs.Owner`: pid, host, process start time)
as the MLflow tag ``recause.owner`` on its parent and stage runs and as the Prefect tag
``recause-owner:<owner>`` on its flow run. :func:`recover_mlflow` and :func:`recover_prefect` —
called by each ``recause run`` before it starts, and by ``recause doctor`` (which also removes the
half-written files of dead runs, :func:`sweep_dead_run_folders`) — find the runs still marked
running whose owner process is gone on this host and close them: MLflow runs become ``KILLED`` with an end time and a
``recause.crash`` tag saying what happened; Prefect flow and task runs become ``Crashed``. Runs
owned by live processes, or by processes on other hosts (a shared tracking server), are left alone.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from recause.flows.files import sweep_temporaries
from recause.flows.runs import CLAIM_FILE, Owner
from recause.mlflow_config.tracking import OWNER_TAG, sqlite_path, store_lock

CRASH_TAG = "recause.crash"
PREFECT_OWNER_PREFIX = "recause-owner:"


@dataclass
class Recovered:
    """What one recovery pass closed: MLflow run ids and Prefect flow/task run ids."""

    mlflow_runs: list[str] = field(default_factory=list)
    prefect_flow_runs: list[str] = field(default_factory=list)
    prefect_task_runs: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        if self.mlflow_runs:
            out.append(f"closed {len(self.mlflow_runs)} MLflow run(s) left RUNNING by a dead process (status KILLED, tag {CRASH_TAG})")
        if self.prefect_flow_runs:
            out.append(f"marked {len(self.prefect_flow_runs)} Prefect flow run(s) and {len(self.prefect_task_runs)} task run(s) Crashed")
        return out


def crash_message(owner: Owner) -> str:
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return f"process {owner.pid} on {owner.host} ended without closing this run; closed by recause at {when}"


def recover_mlflow(uri: str) -> list[str]:
    """Close the RUNNING MLflow runs (any experiment in the store at ``uri``) whose owner is gone;
    returns their ids. A local store that does not exist yet holds none, and is not made here
    (the run makes it: :func:`~recause.mlflow_config.tracking.open_client`)."""
    from mlflow import MlflowClient

    path = sqlite_path(uri)
    if path is not None and not path.exists():
        return []
    client = MlflowClient(tracking_uri=uri)
    with store_lock(uri):
        experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return []
    closed = []
    runs = client.search_runs(experiments, filter_string="attributes.status = 'RUNNING'", max_results=50000)
    for run in runs:
        owner = Owner.from_tag(run.data.tags.get(OWNER_TAG, ""))
        if owner is None or owner.alive() is not False:
            continue
        client.set_tag(run.info.run_id, CRASH_TAG, crash_message(owner))
        client.set_terminated(run.info.run_id, status="KILLED", end_time=int(time.time() * 1000))
        closed.append(run.info.run_id)
    return closed


def recover_prefect(client) -> tuple[list[str], list[str]]:
    """Mark Crashed the running Prefect flow runs (and their running task runs) whose owner is
    gone; ``client`` is a sync Prefect client. Returns (flow run ids, task run ids)."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterState,
        FlowRunFilterStateType,
        TaskRunFilter,
        TaskRunFilterState,
        TaskRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    active = [StateType.RUNNING, StateType.PENDING]
    runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=active))))
    flows, tasks = [], []
    for run in runs:
        owners = [Owner.from_tag(t[len(PREFECT_OWNER_PREFIX):]) for t in run.tags if t.startswith(PREFECT_OWNER_PREFIX)]
        owner = next((o for o in owners if o is not None), None)
        if owner is None or owner.alive() is not False:
            continue
        message = crash_message(owner)
        task_runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])),
            task_run_filter=TaskRunFilter(state=TaskRunFilterState(type=TaskRunFilterStateType(any_=active))),
        )
        for task_run in task_runs:
            client.set_task_run_state(task_run.id, Crashed(message=message), force=True)
            tasks.append(str(task_run.id))
        client.set_flow_run_state(run.id, Crashed(message=message), force=True)
        flows.append(str(run.id))
    return flows, tasks


def sweep_dead_run_folders(runs_root: Path) -> list[Path]:
    """Remove the temporaries (half-written files) in the run folders under ``runs_root`` whose
    owner process is gone; folders of live runs are left alone. Returns what was removed."""
    removed: list[Path] = []
    for claim in sorted(Path(runs_root).glob(f"*/{CLAIM_FILE}")):
        try:
            record = json.loads(claim.read_text())
            owner = Owner(int(record["pid"]), str(record["host"]), float(record["started"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if owner.alive() is False:
            removed += sweep_temporaries(claim.parent)
    return removed
