"""The task runner of a pipeline run (``runtime.task_runner``), chosen where the run starts.

Prefect takes a flow's task runner at decoration; :func:`pipeline_for` hands the one pipeline flow
the runner its config names (``flow.with_options``), so ``recause run`` and the deployments start
the same flow function. The stages stay thin tasks called in order; the runner executes the shards
that the sharded stages submit (:mod:`recause.flows.shards`).

- ``sequential`` (default): :class:`SequentialTaskRunner`, the flow's own; shards run inside their stage.
- ``threads``: Prefect's ``ThreadPoolTaskRunner`` with ``runtime.dask_workers`` threads.
- ``dask``: prefect-dask's ``DaskTaskRunner`` on a local cluster of ``runtime.dask_workers``
  single-threaded worker processes, or on the scheduler at ``runtime.dask_address`` (checked first:
  :func:`check_scheduler`).
"""

from __future__ import annotations

from prefect.task_runners import ThreadPoolTaskRunner

from recause.flows.config import PipelineConfig, RuntimeConfig
from recause.tasks.config import ConfigurationError

SCHEDULER_TIMEOUT = 5.0
"""Seconds a Dask scheduler at ``runtime.dask_address`` has to answer before the run is refused."""


class SequentialTaskRunner(ThreadPoolTaskRunner):
    """The flow's default runner, and a mark: shards are computed in order inside their stage."""

    def __init__(self, max_workers: int | None = 1) -> None:
        super().__init__(max_workers=1)


def task_runner(runtime: RuntimeConfig):
    """The Prefect task runner ``runtime.task_runner`` names (a Dask address is not contacted here)."""
    if runtime.task_runner == "sequential":
        return SequentialTaskRunner()
    if runtime.task_runner == "threads":
        return ThreadPoolTaskRunner(max_workers=runtime.dask_workers)
    from prefect_dask import DaskTaskRunner

    if runtime.dask_address:
        return DaskTaskRunner(address=runtime.dask_address)
    _keep_malloc_adaptive()
    _queue_on_the_scheduler()
    return DaskTaskRunner(cluster_class="distributed.LocalCluster",
                          cluster_kwargs={"n_workers": runtime.dask_workers, "threads_per_worker": 1, "processes": True,
                                          "dashboard_address": ":0"})


def _keep_malloc_adaptive() -> None:
    """Start local Dask workers without distributed's ``MALLOC_TRIM_THRESHOLD_=65536``.

    distributed puts that variable in its workers' environment so they hand freed memory back to the
    OS; but with it set, glibc stops adapting its mmap threshold, and every large temporary array of
    the shards (users × items blocks) is mmap'd, zero-filled and unmapped again. Measured on the default
    world's contrast stage: its shards computed 2.6–4.6× slower in a worker than in the run's process, and
    faster than there once the variable was dropped. A variable the user sets still reaches the workers
    (they inherit the environment)."""
    import dask

    dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None})


def check_scheduler(address: str, timeout: float = SCHEDULER_TIMEOUT) -> None:
    """Raise :class:`ConfigurationError` naming ``address`` unless a Dask scheduler answers there within ``timeout`` seconds."""
    from distributed import Client

    try:
        with Client(address, timeout=timeout, set_as_default=False):
            return
    except (OSError, TimeoutError, ValueError) as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise ConfigurationError(
            f"runtime.dask_address {address!r}: no Dask scheduler answered within {timeout:g} s ({reason}); start one there "
            "(`dask scheduler`), correct the address, or leave runtime.dask_address unset for a local cluster") from None


def check_runner(runtime: RuntimeConfig) -> None:
    """Before a run starts: the Dask scheduler at ``runtime.dask_address`` answers (:func:`check_scheduler`), when one is named."""
    if runtime.task_runner == "dask" and runtime.dask_address:
        check_scheduler(runtime.dask_address)


def pipeline_for(config: PipelineConfig):
    """The pipeline flow with the task runner ``config.runtime`` names (check it first: :func:`check_runner`)."""
    from recause.flows.pipeline import pipeline

    if config.runtime.task_runner == "sequential":
        return pipeline
    return pipeline.with_options(task_runner=task_runner(config.runtime))


def _queue_on_the_scheduler() -> None:
    """Have the local scheduler hand each worker thread one shard at a time (``worker-saturation`` 1.0).

    At distributed's default (1.1, rounded up: two tasks per single-threaded worker) a worker holds a
    second shard in its own queue, and a map a stage submits later at a higher priority
    (:mod:`recause.tasks.shards`) waits behind it: measured on the default world's contrast stage, compress
    and the estimators started 3–7 s after a worker was free. The scheduler runs in the run's process, so
    this setting reaches it."""
    import dask

    dask.config.set({"distributed.scheduler.worker-saturation": 1.0})
