"""The contrast stage in order vs on a local Dask cluster, each map and each shard timed (where the Dask runner's time goes).

    .venv/bin/python -m recause.flows.cli run --preset default --fresh   # once, with RECAUSE_OUTPUT_ROOT=/tmp/shards
    .venv/bin/python bench/contrast_shards.py --root /tmp/shards [--workers 2]

Reads the stored stage results of that one run (``<root>/stages``: split, baselines, train, features,
simulate), then runs ``recause.tasks.contrast.stage.run_contrast`` twice on them: with the shards in
order in this process, then inside a Prefect flow on ``runtime.task_runner=dask`` (the flow's own
runner and ``flows/shards.py``). Each map (estimates and bootstrap per estimator, the simulator's
values per policy, its feature-edit answers per edit) is timed, and each shard's compute inside its
worker, so the compute and the runner's overhead show apart. One thread everywhere. Ends with
``RESULT in_order_s=... dask_s=... ratio=...``.
"""

from __future__ import annotations

import _common  # noqa: F401  (one thread, offline; before numpy and torch)

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])])  # workers import _contrast_maps by name


def show(label: str, total: float, maps: list) -> None:
    print(f"{label}: contrast stage {total:.1f} s")
    for name, start, end, shards in maps:
        compute = sum(b - a for _, a, b in shards)
        print(f"  {name:22s} {len(shards):2d} shards  map {end - start:6.1f} s  compute {compute:6.1f} s "
              f"in {len({p for p, _, _ in shards})} process(es)")
    print(f"  not sharded {total - sum(end - start for _, start, end, _ in maps):6.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="the output root of one finished default synthetic run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="the run's runtime.seed")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    import _contrast_maps as maps
    from recause.tasks.shards import in_order

    from recause.flows.runtime import quiet_environment, share_api_with_workers

    quiet_environment()  # as `recause run`: offline, no telemetry
    maps.prepare(args.root, args.seed)
    print(_common.header(), flush=True)
    seq = maps.stage(in_order)
    show("in order", *seq)
    share_api_with_workers()  # as `recause run` on dask: the workers use this process's Prefect API, not one each
    dask = maps.on_dask(args.workers)
    show(f"dask, {args.workers} workers", *dask)
    print(f"RESULT in_order_s={seq[0]:.1f} dask_s={dask[0]:.1f} ratio={dask[0] / seq[0]:.3f}")


if __name__ == "__main__":
    main()
