"""The sharded stages (evaluate, contrast) of a stored run, their maps timed (imported by ``bench/contrast_shards.py``
and, by name, by its Dask workers: the inputs stay in this module's globals in the run's process and never travel)."""

from __future__ import annotations

import glob
import os
import resource
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from prefect import flow, task

INPUTS: dict = {}
MAPS: list = []


def load(root: Path, stage: str):
    """The value of ``stage``'s stored result under ``root/stages`` (the one entry there)."""
    import cloudpickle

    paths = glob.glob(str(root / "stages" / stage / "*" / "result.pkl"))
    if len(paths) != 1:
        raise SystemExit(f"{root}/stages/{stage}: expected one stored result, found {len(paths)} (run one --fresh run there)")
    with open(paths[0], "rb") as handle:
        return cloudpickle.load(handle).value


def prepare(root: Path, seed: int) -> None:
    """The sharded stages' inputs from the store of one default synthetic run under ``root``."""
    from recause.flows.stages.features import EncoderSettings
    from recause.models.world.scm import WorldConfig
    from recause.tasks.data.synthetic import load_synthetic
    from recause.tasks.features.config import FeaturesConfig

    split, baselines, models, features, simulation = (load(root, s) for s in ("split", "baselines", "train", "features", "simulate"))
    INPUTS.update(split=split, dataset=load_synthetic(WorldConfig(), seed=seed), policy_sets=[baselines, models.policy_set()],
                  features=features, simulation=simulation, seed=seed,
                  embed=EncoderSettings(FeaturesConfig(), 1, root / "cache").embed())


class Timed:
    """A shard function that also returns where and when it computed: (pid, start, end, cpu, faults), ``cpu`` the seconds
    its thread was on a core (so a shard slowed by waiting for a core shows apart from one slowed while computing),
    ``faults`` the minor page faults its thread took (memory the kernel handed it afresh, zeroed)."""

    def __init__(self, fn):
        self.fn, self.__name__ = fn, fn.__name__

    def __call__(self, item, **common):
        start, cpu, faults = time.time(), time.thread_time(), resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        out = self.fn(item, **common)
        return out, (os.getpid(), start, time.time(), time.thread_time() - cpu,
                     resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - faults)


class TimedResults(Sequence):
    """A map's results without their timings, read as lazily as the mapper's own (each read is recorded)."""

    def __init__(self, inner: Sequence, record: dict) -> None:
        self.inner, self.record = inner, record

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        out, where = self.inner[index]
        self.record["shards"][index] = where
        self.record["read"] = time.time()
        return out


def timed(mapper):
    def run(fn, items, common, **options):
        record = {"name": fn.__name__, "start": time.time(), "read": None, "shards": [None] * len(items)}
        MAPS.append(record)
        results = mapper(Timed(fn), items, common, **options)
        record["returned"] = time.time()
        return TimedResults(results, record)
    return run


def stage(mapper, evaluate_mapper=None) -> tuple[dict[str, tuple[float, float]], list]:
    """Each sharded stage's (start, end) and, per map, {name, start, read (its last result read), shards: (pid, start, end, cpu)}
    (``time.time()`` seconds). ``evaluate_mapper``: evaluate's, where the flow gives it another (default ``mapper``)."""
    from recause.tasks.contrast.config import ContrastConfig
    from recause.tasks.contrast.stage import run_contrast
    from recause.tasks.evaluate import EvaluationConfig, evaluate_policies

    MAPS.clear()
    d = INPUTS
    spans = {}
    start = time.time()
    evaluate_policies(d["policy_sets"], d["split"], EvaluationConfig(), d["dataset"].world, timed(evaluate_mapper or mapper))
    spans["evaluate"] = (start, time.time())
    start = time.time()
    run_contrast(d["split"], d["dataset"], d["policy_sets"], d["features"], ContrastConfig(), d["seed"], d["simulation"],
                 d["embed"], timed(mapper))
    spans["contrast"] = (start, time.time())
    return spans, [dict(m) for m in MAPS]


def with_mapper(run):
    """``run(mapper)`` with the flow's mapper for this task (a context manager where ``shard_map`` is one)."""
    from recause.flows.shards import shard_map

    made = shard_map()
    if hasattr(made, "__enter__"):
        with made as mapper:
            return run(mapper)
    return run(made)


def warm() -> None:
    """The workers started, their Prefect engine run once and their imports done, as the stages before evaluate leave
    them in a run (``flows/shards.py``'s ``warm_workers`` at flow start, where that exists)."""
    import sys

    from prefect.context import FlowRunContext

    import recause.flows.shards as shards

    with_mapper(lambda m: list(m(np.sqrt, [1.0, 2.0, 3.0, 4.0], {})))
    if hasattr(shards, "warm_workers") and shards.warm_workers():
        client = FlowRunContext.get().task_runner.client
        names = shards.WARM_IMPORTS
        while not all(client.run(lambda: all(n in sys.modules for n in names)).values()):
            time.sleep(0.5)


@task
def sharded_stages_on_the_runner():
    """Both stages with the mappers the flow's stage tasks take: evaluate's keeps off a local cluster (in order)."""
    from recause.flows.shards import shard_map

    warm()
    with shard_map(local_cluster=False) as evaluate_mapper:
        return with_mapper(lambda mapper: stage(mapper, evaluate_mapper))


def on_dask(workers: int):
    from recause.flows.config import RuntimeConfig
    from recause.flows.runners import task_runner

    return flow(name="sharded-stages", task_runner=task_runner(RuntimeConfig(task_runner="dask", dask_workers=workers)))(
        sharded_stages_on_the_runner_flow)()


def sharded_stages_on_the_runner_flow():
    return sharded_stages_on_the_runner()
