"""Shards submitted to the flow run's task runner: the :data:`~recause.tasks.shards.MapShards` the flow layer supplies.

A stage task takes its mapper from :func:`shard_map`, a context around the stage's work. Inside a flow
run whose runner runs tasks in parallel (``runtime.task_runner`` threads or dask,
:mod:`recause.flows.runners`) it is a :class:`Shards`: each call submits one task per item and returns
at once; the results come back in the items' order as a :class:`Results`, and reading one waits for it
— so a stage can submit its shards early, do its own work while the workers compute, and read them
when it needs them. Elsewhere (the sequential runner, a task's ``.fn()`` in a test) it is
:func:`~recause.tasks.shards.in_order`.

On Dask each shard is one plain Dask task, ``shard:<function>-<map>-<i>`` on the Dask dashboard, sent
with the map's ``priority`` through the runner's own client; the stage's Prefect task run logs each map
(how many shards, how long submitting took) and Prefect's UI lists the stage tasks, not the shards. As
one Prefect task run each (``shard.map``), a shard cost ~620 ms of CPU before it computed anything
(``bench/shard_overhead.py``, 2026-12-04: 364 ms in the workers, 165 ms in the run's process, 93 ms in
Prefect's API): Prefect serialised its whole settings with every task, and each worker rebuilt them and
made two API clients — two TLS contexts with the CA bundle loaded — per task run. On threads (one
process, nothing is serialised) each shard stays a Prefect task run ``shard:<function>``.

On a local Dask cluster every argument the shards take (an item, or one of the arguments every shard
shares: the split, the policies with the models they close over, the simulator) is written once per
*stage* to a file (cloudpickle), however many maps of the stage take it — the same object, by
identity — and each shard carries only the files' paths (:class:`Stored`); a worker process loads a
file at its first shard that needs it and keeps it for the rest of the stage (:func:`loaded`). The
objects must not change while the stage runs (the stages' inputs never do). Sent with every shard
instead, Dask hashed and pickled them in the run's process for each one, which cost more than the
shards computed. On a scheduler of one's own (``runtime.dask_address``, workers that may not see this
machine's files) and on threads (one process, nothing is pickled) they travel by value.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import CancelledError
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task, unmapped
from prefect.context import FlowRunContext, TaskRunContext
from prefect.exceptions import MissingContextError

from recause.flows.runners import SequentialTaskRunner
from recause.flows.stages import TASK_OPTIONS
from recause.tasks.shards import MapShards, in_order

SLOW_SECONDS = 1.0
"""Writing and submitting a map, or loading an argument in a worker, that takes this long is logged: the runner's own cost."""

PLAIN = (str, bytes, int, float, bool, type(None))
"""Arguments that travel by value even on a local cluster: a file each would cost more than they do."""


@dataclass(frozen=True)
class Stored:
    """One shard argument written once to ``path`` (cloudpickle) in its stage's own temporary folder."""

    path: str


_LOADED: dict[str, Any] = {}  # per worker process: path -> object, all in one stage's folder


def loaded(value: Any) -> Any:
    """``value`` itself, or for a :class:`Stored` the object in its file (read once per process and stage, then kept;
    a shard of another stage — a file in another folder — first drops what the last stage's shards loaded)."""
    if not isinstance(value, Stored):
        return value
    if _LOADED and os.path.dirname(next(iter(_LOADED))) != os.path.dirname(value.path):
        _LOADED.clear()
    if value.path not in _LOADED:
        import cloudpickle

        start = time.perf_counter()
        with open(value.path, "rb") as handle:
            _LOADED[value.path] = cloudpickle.load(handle)
        seconds = time.perf_counter() - start
        if seconds >= SLOW_SECONDS:
            _logger().info("loaded a shared argument (%.0f MB) in %.1f s", os.path.getsize(value.path) / 1e6, seconds)
    return _LOADED[value.path]


def run_shard(fn: Callable[..., Any], item: Any, common: Mapping[str, Any]) -> Any:
    """One shard, on whichever worker the runner picked: ``fn(item, **common)``, each argument :func:`loaded`
    from its file where it is :class:`Stored`; torch on one thread there (the workers share the cores)."""
    import torch

    torch.set_num_threads(1)
    return fn(loaded(item), **{name: loaded(value) for name, value in common.items()})


@task(name="shard", **TASK_OPTIONS)
def shard(fn: Callable[..., Any], item: Any, common: Mapping[str, Any]) -> Any:
    """:func:`run_shard` as a Prefect task run (the ``threads`` runner)."""
    return run_shard(fn, item, common)


def _logger() -> logging.Logger | logging.LoggerAdapter:
    """The Prefect run's logger where there is a run (a shard on threads, the stage), else this module's (a Dask task)."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


class Results(Sequence):
    """A map's results in its items' order; reading one waits for its shard (and raises what the shard raised)."""

    def __init__(self, futures: Sequence[Any]) -> None:
        self._futures = list(futures)
        self._done: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self._futures)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        position = range(len(self))[index]
        if position not in self._done:
            self._done[position] = self._futures[position].result()
        return self._done[position]

    def wait(self) -> None:
        """Until every shard has finished, whatever it returned or raised."""
        for future in self._futures:
            if hasattr(future, "wait"):  # Prefect's
                future.wait()
            else:  # Dask's
                try:
                    future.exception()  # waits; None, or what it raised
                except CancelledError:  # the cluster went away: nothing left running either
                    pass


class Shards:
    """One stage's mapper on the flow run's parallel task runner: ``self(fn, items, common)`` submits
    ``fn(item, **common)`` per item and returns its :class:`Results` at once.

    ``by_file``: write the arguments to this stage's files (:class:`Stored`; a local Dask cluster), else
    send them by value; ``client``: the Dask client of the run's runner — each shard a plain Dask task at
    the map's ``priority`` — or None (threads): each shard a Prefect task run ``shard:<fn>``.
    :meth:`close` waits for every shard submitted and removes the files."""

    def __init__(self, by_file: bool, client: Any = None) -> None:
        self.by_file = by_file
        self.client = client
        self._folder: Path | None = None
        self._stored: dict[int, tuple[Any, Stored]] = {}  # id -> (the object, kept so its id stays its own; its file)
        self._maps: list[Results] = []

    def __call__(self, fn: Callable[..., Any], items: Sequence[Any], common: Mapping[str, Any], *, priority: int = 0) -> Results:
        start = time.perf_counter()
        items = [self._reference(item) for item in items]
        common = {name: self._reference(value) for name, value in common.items()}
        stored = time.perf_counter()
        if self.client is not None:
            key = f"shard:{fn.__name__}-{uuid.uuid4().hex[:8]}"
            futures = [self.client.submit(run_shard, fn, item, common, key=f"{key}-{i}", pure=False, priority=priority)
                       for i, item in enumerate(items)]
            _logger().info("map %s: %d shards on Dask (%s-0…%d), submitted in %.1f s (%.1f s of it writing their "
                           "arguments' files)", fn.__name__, len(items), key, len(items) - 1,
                           time.perf_counter() - start, stored - start)
        else:
            with _without_the_stage_context():
                futures = shard.with_options(name=f"shard:{fn.__name__}").map(unmapped(fn), items, unmapped(common))
            if (took := time.perf_counter() - start) >= SLOW_SECONDS:
                _logger().info("map %s: %d shards submitted in %.1f s (%.1f s of it writing their arguments' files)",
                               fn.__name__, len(items), took, stored - start)
        results = Results(futures)
        self._maps.append(results)
        return results

    def _reference(self, value: Any) -> Any:
        """``value`` or, on a local cluster, the :class:`Stored` file holding it (written at its first use in the stage)."""
        if not self.by_file or isinstance(value, PLAIN):
            return value
        if id(value) not in self._stored:
            import cloudpickle

            if self._folder is None:
                self._folder = Path(tempfile.mkdtemp(prefix="recause-shard-inputs-"))
            path = self._folder / f"{len(self._stored)}.pkl"
            with open(path, "wb") as out:
                cloudpickle.dump(value, out, protocol=pickle.HIGHEST_PROTOCOL)
            self._stored[id(value)] = (value, Stored(str(path)))
        return self._stored[id(value)][1]

    def close(self) -> None:
        """Wait for every shard this stage submitted (none may still read a file), then remove the files."""
        try:
            for results in self._maps:
                results.wait()
        finally:
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)
            self._stored.clear()


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


WARM_IMPORTS = (
    "onnxruntime",  # the features stage's embedding shards come first
    "recause.tasks.features.encoder",
    "torch",
    "recause.models.gnn.module",  # Lightning and PyG: unpickling a GNN policy imports them (~10 s cold here)
    "recause.tasks.evaluate",
    "recause.tasks.contrast.stage",
    "recause.tasks.simulate.simulator",
)
"""What a worker's first shards would import, imported by :func:`warm_workers` ahead of them."""


def warm_workers() -> bool:
    """On a Dask runner: start (or connect to) its cluster now, and have every worker import :data:`WARM_IMPORTS`
    in the background while the stages before the sharded ones compute; True when there were workers to warm.

    prefect-dask starts a local cluster at the first task submitted; without this the first sharded stage
    (evaluate) waited for the workers to spawn and import, and its GNN policies' shards for Lightning.
    """
    context = FlowRunContext.get()
    runner = context.task_runner if context is not None else None
    if type(runner).__name__ != "DaskTaskRunner":
        return False
    from distributed import fire_and_forget

    client = runner.client  # the property starts (or connects to) the cluster
    for worker in client.scheduler_info()["workers"]:
        fire_and_forget(client.submit(import_modules, WARM_IMPORTS, workers=[worker], allow_other_workers=False, pure=False))
    return True


def import_modules(names: Sequence[str]) -> None:
    """Import each module in ``names`` (in a worker: :func:`warm_workers`)."""
    import importlib

    for name in names:
        importlib.import_module(name)


@contextmanager
def shard_map(local_cluster: bool = True, own_scheduler: bool = True) -> Iterator[MapShards]:
    """A stage's mapper for the duration of the ``with``: :class:`Shards` inside a flow run on a parallel runner
    (closed at the end), else :func:`~recause.tasks.shards.in_order`.

    ``own_scheduler=False``: on a scheduler of one's own (``runtime.dask_address``) the shards run in order in
    the stage's process — for shards that read a file of this machine (the features stage's exported ONNX
    graph), which that scheduler's workers may not see.

    ``local_cluster=False``: on a local Dask cluster (no ``runtime.dask_address``) the shards run in order in
    the stage's process. For a stage whose shards are short and allocate a fresh block of scores per user
    block (evaluate): a worker process gets that memory from the kernel again for every block, which
    zeroes it (``clear_page_erms`` was 62% of the workers' samples in ``perf`` during evaluate, default
    world), while the run's own process reuses its heap. On the two cores the workers share with the run,
    evaluate's shards took 1.5–2.6× their in-order time and the stage lost on Dask at every size measured
    (README, "Scaling out"). A scheduler of one's own adds cores, so there the shards go to it."""
    context = FlowRunContext.get()
    runner = context.task_runner if context is not None else None
    if runner is None or isinstance(runner, SequentialTaskRunner):
        yield in_order
        return
    on_dask = type(runner).__name__ == "DaskTaskRunner"
    local = on_dask and not getattr(runner, "address", None)
    if (local and not local_cluster) or (on_dask and not local and not own_scheduler):
        yield in_order
        return
    shards = Shards(by_file=local, client=runner.client if on_dask else None)
    try:
        yield shards
    finally:
        shards.close()
