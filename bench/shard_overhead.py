"""The runner's own CPU cost per shard on a local Dask cluster: trivial shards (``np.sqrt`` of a float) submitted
as the stages submit theirs (``flows/shards.py``: one Dask task per shard), with each process's CPU seconds.

    .venv/bin/python bench/shard_overhead.py [--shards 100] [--workers 2] [--root outputs]

The shards compute nothing, so every CPU second is the runner's: the workers' (Dask's worker; Prefect's task
engine too while each shard was a Prefect task run: 622 ms a shard in all then, 12 ms since), the run's process
(submitting, Dask's scheduler and client, reading results) and Prefect's temporary API (``<root>/prefect``, as
``recause run`` keeps it). One warm-up map of 4 shards first, as a run's first stage leaves the workers.
Ends with ``RESULT shards=... wall_s=... cpu_ms_per_shard=... workers_ms=... run_ms=... api_ms=...``.
"""

from __future__ import annotations

import _common  # noqa: F401  (one thread, offline; before numpy and torch)

import argparse
import os
import time
from pathlib import Path

import numpy as np
import psutil

WARM_SHARDS = 4


def cpu_seconds() -> dict[int, tuple[float, str]]:
    """Every process's CPU seconds (user + system) and its command line."""
    out = {}
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            times = process.cpu_times()
            out[process.pid] = (times.user + times.system, " ".join(process.info["cmdline"] or []))
        except psutil.Error:
            continue
    return out


def kind(pid: int, command: str) -> str:
    """Which part of the runner a process is: this run, a Dask worker, Prefect's API, or something else."""
    if pid == os.getpid():
        return "run"
    if "multiprocessing.spawn" in command:
        return "workers"
    if "prefect.server.api.server" in command:
        return "api"
    return "other"


def measure(n: int) -> tuple[float, dict[str, float]]:
    """Wall seconds of one map of ``n`` trivial shards and each kind's CPU seconds over it."""
    from recause.flows.shards import shard_map

    with shard_map() as mapper:
        list(mapper(np.sqrt, [1.0] * WARM_SHARDS, {}))
        time.sleep(3.0)  # the warm-up's last state reports settle
        before, start = cpu_seconds(), time.perf_counter()
        list(mapper(np.sqrt, [float(i) for i in range(n)], {}))
        wall = time.perf_counter() - start
        after = cpu_seconds()
    spent: dict[str, float] = {}
    for pid, (cpu, command) in after.items():
        k = kind(pid, command)
        spent[k] = spent.get(k, 0.0) + cpu - before.get(pid, (0.0, ""))[0]
    return wall, spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--root", type=Path, default=_common.ROOT / "outputs", help="output root: Prefect's state in <root>/prefect")
    args = parser.parse_args()

    from prefect import flow, task

    from recause.flows.config import RuntimeConfig
    from recause.flows.runners import task_runner
    from recause.flows.runtime import prepare_environment, share_api_with_workers

    prepare_environment(args.root, 1)
    share_api_with_workers()  # as `recause run` on dask: one API for the run and its workers
    print(_common.header(), flush=True)

    @task
    def one_map() -> tuple[float, dict[str, float]]:
        return measure(args.shards)

    @flow(name="shard-overhead", task_runner=task_runner(RuntimeConfig(task_runner="dask", dask_workers=args.workers)))
    def overhead() -> tuple[float, dict[str, float]]:
        return one_map()

    wall, spent = overhead()
    per = {k: 1000 * spent.get(k, 0.0) / args.shards for k in ("workers", "run", "api", "other")}
    print(_common.table([{"process": k, "cpu_s": spent.get(k, 0.0), "ms_per_shard": v} for k, v in per.items()],
                        ["process", "cpu_s", "ms_per_shard"]))
    print(f"RESULT shards={args.shards} wall_s={wall:.1f} cpu_ms_per_shard={sum(per[k] for k in ('workers', 'run', 'api')):.0f} "
          f"workers_ms={per['workers']:.0f} run_ms={per['run']:.0f} api_ms={per['api']:.0f}")


if __name__ == "__main__":
    main()
