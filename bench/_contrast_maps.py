"""The contrast stage of a stored run, its maps timed (imported by ``bench/contrast_shards.py`` and, by name, by
its Dask workers: the inputs stay in this module's globals in the run's process and never travel)."""

from __future__ import annotations

import glob
import os
import time
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
    """The contrast stage's inputs from the store of one default synthetic run under ``root``."""
    from recause.flows.stages.features import EncoderSettings
    from recause.models.world.scm import WorldConfig
    from recause.tasks.data.synthetic import load_synthetic
    from recause.tasks.features.config import FeaturesConfig

    split, baselines, models, features, simulation = (load(root, s) for s in ("split", "baselines", "train", "features", "simulate"))
    INPUTS.update(split=split, dataset=load_synthetic(WorldConfig(), seed=seed), policy_sets=[baselines, models.policy_set()],
                  features=features, simulation=simulation, seed=seed,
                  embed=EncoderSettings(FeaturesConfig(), 1, root / "cache").embed())


class Timed:
    """A shard function that also returns where and when it computed: (pid, start, end)."""

    def __init__(self, fn):
        self.fn, self.__name__ = fn, fn.__name__

    def __call__(self, item, **common):
        start = time.time()
        out = self.fn(item, **common)
        return out, (os.getpid(), start, time.time())


def timed(mapper):
    def run(fn, items, common):
        start = time.time()
        out = mapper(Timed(fn), items, common)
        MAPS.append((fn.__name__, start, time.time(), [o[1] for o in out]))
        return [o[0] for o in out]
    return run


def stage(mapper) -> tuple[float, list]:
    """Seconds of the whole contrast stage and, per map, (name, start, end, per shard (pid, start, end))."""
    from recause.tasks.contrast.config import ContrastConfig
    from recause.tasks.contrast.stage import run_contrast

    MAPS.clear()
    d = INPUTS
    start = time.perf_counter()
    run_contrast(d["split"], d["dataset"], d["policy_sets"], d["features"], ContrastConfig(), d["seed"], d["simulation"],
                 d["embed"], timed(mapper))
    return time.perf_counter() - start, list(MAPS)


@task
def contrast_on_the_runner():
    from recause.flows.shards import shard_map

    shard_map()(np.sqrt, [1.0, 2.0], {})  # the workers start and import first, as the flow's earlier stages make them
    return stage(shard_map())


def on_dask(workers: int):
    from recause.flows.config import RuntimeConfig
    from recause.flows.runners import task_runner

    return flow(name="contrast-shards", task_runner=task_runner(RuntimeConfig(task_runner="dask", dask_workers=workers)))(
        contrast_on_the_runner_flow)()


def contrast_on_the_runner_flow():
    return contrast_on_the_runner()
