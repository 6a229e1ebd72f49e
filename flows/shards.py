"""Shards submitted to the flow run's task runner: the :data:`~recause.tasks.shards.MapShards` the flow layer supplies.

Inside a flow run whose runner runs tasks in parallel (``runtime.task_runner`` threads or dask,
:mod:`recause.flows.runners`), :func:`shard_map` returns a mapper that submits one Prefect task
``shard`` per item (``shard.map``) and waits for their results in order; elsewhere (the sequential
runner, a task's ``.fn()`` in a test) it is :func:`~recause.tasks.shards.in_order`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from prefect import task, unmapped
from prefect.context import FlowRunContext

from recause.flows.runners import SequentialTaskRunner
from recause.flows.stages import TASK_OPTIONS
from recause.tasks.shards import MapShards, in_order


@task(name="shard", **TASK_OPTIONS)
def shard(fn: Callable[..., Any], item: Any, common: Mapping[str, Any]) -> Any:
    """One shard, on whichever worker the runner picked; torch on one thread there (the workers share the cores)."""
    import torch

    torch.set_num_threads(1)
    return fn(item, **common)


def submitted(fn: Callable[..., Any], items: Sequence[Any], common: Mapping[str, Any]) -> list[Any]:
    """``fn`` over ``items`` as mapped ``shard`` tasks named after ``fn``, on the flow run's task runner."""
    futures = shard.with_options(name=f"shard:{fn.__name__}").map(unmapped(fn), list(items), unmapped(dict(common)))
    return [future.result() for future in futures]


def shard_map() -> MapShards:
    """:func:`submitted` inside a flow run on a parallel runner, else :func:`~recause.tasks.shards.in_order`."""
    context = FlowRunContext.get()
    if context is None or context.task_runner is None or isinstance(context.task_runner, SequentialTaskRunner):
        return in_order
    return submitted
