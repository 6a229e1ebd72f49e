"""Shards submitted to the flow run's task runner: the :data:`~recause.tasks.shards.MapShards` the flow layer supplies.

Inside a flow run whose runner runs tasks in parallel (``runtime.task_runner`` threads or dask,
:mod:`recause.flows.runners`), :func:`shard_map` returns a mapper that submits one Prefect task
``shard`` per item (``shard.map``) and waits for their results in order; elsewhere (the sequential
runner, a task's ``.fn()`` in a test) it is :func:`~recause.tasks.shards.in_order`.

On a local Dask cluster the items and the arguments every shard shares (the split, the policies
with the models they close over, the simulator: up to ~170 MB on the default world) are written
once to a file (cloudpickle: what items share is written once) and each shard carries only its
item's position and the file's path (:class:`SharedInputs`); a worker process loads the file at its
first shard and keeps it for the rest of the map (:func:`shared_inputs`). Sent with every shard
instead, Dask hashed and pickled them in the run's process for each one, which cost more than the
shards computed. On a scheduler of one's own (``runtime.dask_address``, workers that may not see
this machine's files) and on threads (one process, nothing is pickled) they travel by value.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from prefect import task, unmapped
from prefect.context import FlowRunContext, TaskRunContext

from recause.flows.runners import SequentialTaskRunner
from recause.flows.stages import TASK_OPTIONS
from recause.tasks.shards import MapShards, in_order


@dataclass(frozen=True)
class SharedInputs:
    """A map's items and common arguments, written once to ``path`` (cloudpickle) for worker processes on this machine."""

    path: str


_LOADED: dict[str, dict[str, Any]] = {}  # per worker process: the SharedInputs file it read last


def shared_inputs(shared: SharedInputs) -> dict[str, Any]:
    """``{"items": [...], "common": {...}}`` from the file (read once per process and map, then kept)."""
    if shared.path not in _LOADED:
        import cloudpickle

        _LOADED.clear()  # one map's inputs at a time
        with open(shared.path, "rb") as handle:
            _LOADED[shared.path] = cloudpickle.load(handle)
    return _LOADED[shared.path]


@task(name="shard", **TASK_OPTIONS)
def shard(fn: Callable[..., Any], item: Any, common: Mapping[str, Any] | SharedInputs) -> Any:
    """One shard, on whichever worker the runner picked: ``fn(item, **common)``, where with
    :class:`SharedInputs` the item is its position in the file's items; torch on one thread there
    (the workers share the cores)."""
    import torch

    torch.set_num_threads(1)
    if isinstance(common, SharedInputs):
        loaded = shared_inputs(common)
        return fn(loaded["items"][item], **loaded["common"])
    return fn(item, **common)


def submitted(fn: Callable[..., Any], items: Sequence[Any], common: Mapping[str, Any]) -> list[Any]:
    """``fn`` over ``items`` as mapped ``shard`` tasks named after ``fn``, on the flow run's task runner."""
    with _by_reference(list(items), dict(common)) as (mapped, shared):
        with _without_the_stage_context():
            futures = shard.with_options(name=f"shard:{fn.__name__}").map(unmapped(fn), mapped, unmapped(shared))
        return [future.result() for future in futures]  # before the shared file goes


@contextmanager
def _without_the_stage_context() -> Iterator[None]:
    """Submit outside the stage task's run context: Prefect sends the context with every task it hands to
    Dask (``serialize_context``), and a task run's context holds that task's parameters — here the whole
    stage's inputs (the split, the fitted models), which Dask then hashed and pickled once per shard. The
    shards still belong to the flow run; they are no longer listed under the stage task."""
    token = TaskRunContext.__var__.set(None)
    try:
        yield
    finally:
        TaskRunContext.__var__.reset(token)


@contextmanager
def _by_reference(items: list[Any], common: dict[str, Any]) -> Iterator[tuple[list[Any], dict[str, Any] | SharedInputs]]:
    """On a local Dask cluster, the items' positions and a :class:`SharedInputs` file holding the items and
    ``common`` while the shards run; else ``items`` and ``common`` themselves."""
    context = FlowRunContext.get()
    runner = context.task_runner if context is not None else None
    if type(runner).__name__ != "DaskTaskRunner" or getattr(runner, "address", None):
        yield items, common
        return
    import cloudpickle

    handle, path = tempfile.mkstemp(prefix="recause-shard-inputs-", suffix=".pkl")
    try:
        with os.fdopen(handle, "wb") as out:
            cloudpickle.dump({"items": items, "common": common}, out, protocol=pickle.HIGHEST_PROTOCOL)
        yield list(range(len(items))), SharedInputs(path)
    finally:
        os.unlink(path)


def shard_map() -> MapShards:
    """:func:`submitted` inside a flow run on a parallel runner, else :func:`~recause.tasks.shards.in_order`."""
    context = FlowRunContext.get()
    if context is None or context.task_runner is None or isinstance(context.task_runner, SequentialTaskRunner):
        return in_order
    return submitted
