"""The sharded stages (evaluate, contrast) in order vs on a local Dask cluster, each map and shard timed (where the Dask runner's time goes).

    .venv/bin/python -m recause.flows.cli run --preset default --fresh   # once, with RECAUSE_OUTPUT_ROOT=/tmp/shards
    .venv/bin/python bench/contrast_shards.py --root /tmp/shards [--workers 2]

Reads the stored stage results of that one run (``<root>/stages``: split, baselines, train, features,
simulate), then runs ``recause.tasks.evaluate.evaluate_policies`` and ``recause.tasks.contrast.stage.run_contrast``
twice on them: with the shards in order in this process, then inside a Prefect flow on ``runtime.task_runner=dask`` (the flow's own
runner and ``flows/shards.py``; evaluate in order there, as the flow's evaluate stage on a local cluster). Each map (the policies' metrics, the estimates and bootstrap per
estimator, the simulator's values per policy, its feature-edit answers per edit) is timed — when it was
submitted, when its first shard finished, when its last result was read — and each shard's compute inside
its worker (and the part of it on a core: the rest waited for one; and its thread's minor page faults), so the compute and the runner's overhead show apart. One thread everywhere. Ends with
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


def show(label: str, spans: dict, maps: list, detail: bool = False) -> float:
    """Print each stage's seconds and its maps (when each was submitted and last read, the shards' compute); the total."""
    total = sum(b - a for a, b in spans.values())
    print(f"{label}: sharded stages {total:.1f} s")
    for stage, (begin, finish) in spans.items():
        print(f"  {stage}: {finish - begin:.1f} s")
        for m in (m for m in maps if begin <= m["start"] <= finish):
            shards = [s for s in m["shards"] if s is not None]
            compute = sum(s[2] - s[1] for s in shards)
            cpu = sum(s[3] for s in shards)
            faults = sum(s[4] for s in shards)
            first = min((s[2] for s in shards), default=m["start"]) - m["start"]
            print(f"    {m['name']:22s} {len(shards):2d} shards  submitted at {m['start'] - begin:5.1f} s (took "
                  f"{m['returned'] - m['start']:4.1f} s)  first done after "
                  f"{first:5.1f} s  last read at {(m['read'] or m['start']) - begin:5.1f} s  compute {compute:6.1f} s "
                  f"(on a core {cpu:6.1f} s, {faults / 1e3:5.0f} k page faults) in {len({s[0] for s in shards})} process(es)")
            if detail:
                print("      " + "  ".join(f"{pid % 1000}:{a - begin:.1f}-{b - begin:.1f}({c:.1f})" for pid, a, b, c, _ in shards))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="the output root of one finished default synthetic run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="the run's runtime.seed")
    parser.add_argument("--dask-only", action="store_true", help="skip the in-order pass (no RESULT line): to look at Dask alone")
    parser.add_argument("--detail", action="store_true", help="also print each shard's process and its start-end seconds in the stage")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    import _contrast_maps as maps
    from recause.tasks.shards import in_order

    from recause.flows.runtime import prepare_environment, share_api_with_workers

    # As `recause run` there: offline, no telemetry, Prefect's state in the run's PREFECT_HOME, whose database exists
    # (2026-12-04, on a slow machine, a fresh ~/.prefect database was still being made when the temporary API's 60 s ran out).
    prepare_environment(args.root, 1)
    maps.prepare(args.root, args.seed)
    print(_common.header(), flush=True)
    seq = None if args.dask_only else show("in order", *maps.stage(in_order), detail=args.detail)
    share_api_with_workers()  # as `recause run` on dask: the workers use this process's Prefect API, not one each
    dask = show(f"dask, {args.workers} workers", *maps.on_dask(args.workers), detail=args.detail)
    if seq is not None:
        print(f"RESULT in_order_s={seq:.1f} dask_s={dask:.1f} ratio={dask / seq:.3f}")


if __name__ == "__main__":
    main()
