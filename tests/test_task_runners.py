"""Task runners (``runtime.task_runner``): sharded stages give the same numbers whoever runs the shards."""

from __future__ import annotations

import json
import math
import pickle
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import numpy as np
import pytest

from recause.flows.config import build_config
from recause.tasks.config import ConfigurationError

ROOT = Path(__file__).resolve().parents[1]


def elsewhere(fn, items, common, *, priority=0):
    """A :data:`~recause.tasks.shards.MapShards` standing in for worker processes: ``fn`` must pickle by
    reference (module-level), the data travel as a worker receives them, and the shards run in reverse order
    (whatever the ``priority``)."""
    fn = pickle.loads(pickle.dumps(fn))
    items, common = cloudpickle.loads(cloudpickle.dumps((list(items), dict(common))))
    done = {i: fn(items[i], **common) for i in reversed(range(len(items)))}
    return [done[i] for i in range(len(items))]


def test_estimates_by_estimator_equal_one_paired_bootstrap_over_every_policy() -> None:
    from recause.models.ope.comparison import compare_policies
    from recause.tasks.contrast.config import ContrastConfig
    from recause.tasks.contrast.estimation import ESTIMATORS, Compressed, Rounds, estimate

    rng = np.random.default_rng(0)
    n = 300
    rounds = Rounds(user=rng.integers(0, 30, n), item=rng.integers(0, 9, n), slot=np.zeros(n, np.int64),
                    reward=(rng.random(n) < 0.3).astype(float), pscore=np.full(n, 1 / 9), n_slots=1, control="random")
    compressed = {}
    for name in ("control", "a", "b"):
        pi = rng.uniform(0.0, 0.5, n)
        q = rng.uniform(0.05, 0.6, (n, 2))
        compressed[name] = Compressed(np.stack([pi, 1 - pi], axis=1)[:, :, None], q[:, :, None], None, None)
    config = ContrastConfig(estimators=["dm", "ipw", "dr", "switch-dr"], n_bootstrap=60)
    sharded = estimate(compressed, rounds, "control", config, seed=3, map_shards=elsewhere)
    assert list(sharded) == ["dm", "ipw", "dr", "switch-dr"]
    for name in config.estimators:  # what the stage computed before it was sharded: all policies, one call
        whole = compare_policies(ESTIMATORS[name](), {k: c.action_dist for k, c in compressed.items()}, "control",
                                 estimated_rewards_by_reg_model={k: c.q_hat for k, c in compressed.items()},
                                 reward=rounds.reward, action=np.zeros(n, np.int64), pscore=rounds.pscore,
                                 alpha=config.alpha, n_bootstrap_samples=60, random_state=3)
        assert sharded[name] == whole, name


def test_the_two_action_form_by_user_shards_equals_it_in_one_piece() -> None:
    """compress's shards (runs of whole user blocks, computed elsewhere in any order) give exactly the one-shard arrays."""
    from recause.tasks.contrast.estimation import compressed_from, fit_reward_model, logged_rounds, start_compress
    from recause.tasks.contrast.interventions import SlotFree
    from recause.models.world.scm import WorldConfig
    from recause.tasks.data.split import SplitConfig, split_dataset
    from recause.tasks.data.synthetic import load_synthetic

    data = load_synthetic(WorldConfig(n_users=90, n_items=40, n_topics=4, slate_size=3, mean_sessions=4), seed=5)
    split = split_dataset(data, SplitConfig(), seed=5)
    rounds = logged_rounds(split, None, 2000, 5)
    rng = np.random.default_rng(5)
    table = rng.dirichlet(np.ones(split.n_items), split.n_users)
    def by_slot(users: np.ndarray, slots: np.ndarray) -> np.ndarray:
        sharper = table[users] ** (1.0 + slots[:, None])
        return sharper / sharper.sum(axis=1, keepdims=True)

    policies = {"flat": SlotFree(lambda users: table[users]), "by_slot": by_slot}
    model, context = fit_reward_model(rounds, split.n_users, np.zeros(split.n_items), folds=2, seed=5)
    world = (data.world, split.users.ids.astype(np.int64), split.items.ids.astype(np.int64))
    tau = rng.normal(size=(split.n_users, split.n_items))
    args = (policies, rounds, model, context, world, 8, lambda users: tau[users])
    whole = compressed_from(start_compress(*args, shards=1))
    sharded = compressed_from(start_compress(*args, map_shards=elsewhere, shards=4))
    assert len(np.unique(rounds.user)) > 3 * 8  # four shards of whole blocks
    for name in policies:
        for field in ("action_dist", "q_hat", "truth", "caused", "caused_hat", "caused_seen"):
            assert np.array_equal(getattr(whole[name], field), getattr(sharded[name], field)), (name, field)


def test_evaluation_by_policy_is_the_same_wherever_each_policy_is_scored() -> None:
    from recause.models.world.scm import WorldConfig
    from recause.tasks.baselines import BaselinesConfig, build_baselines
    from recause.tasks.data.split import SplitConfig, split_dataset
    from recause.tasks.data.synthetic import load_synthetic
    from recause.tasks.evaluate import EvaluationConfig, evaluate_policies

    data = load_synthetic(WorldConfig(n_users=80, n_items=60, n_topics=4, slate_size=3, mean_sessions=4), seed=2)
    split = split_dataset(data, SplitConfig(), seed=2)
    baselines = build_baselines(split, data, BaselinesConfig(), seed=2)
    here = evaluate_policies([baselines], split, EvaluationConfig(user_batch=16), data.world)
    there = evaluate_policies([baselines], split, EvaluationConfig(user_batch=16), data.world, map_shards=elsewhere)
    assert len(here.test) == 5 and here.test == there.test and here.val == there.val and here.best == there.best


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_dask_address_that_does_not_answer_is_refused_in_seconds_naming_it() -> None:
    from recause.flows.runners import check_scheduler

    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.perf_counter()
    with pytest.raises(ConfigurationError, match=f"runtime.dask_address '{address}': no Dask scheduler answered within 2 s"):
        check_scheduler(address, timeout=2)
    assert time.perf_counter() - started < 8


def test_recause_run_refuses_a_silent_dask_address_before_starting(tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "recause.flows.cli", "run", "--dataset", "synthetic", "--preset", "smoke",
         "--set", f"runtime.output_root={tmp_path}", "--set", "runtime.task_runner=dask", "--set", f"runtime.dask_address={address}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert f"runtime.dask_address '{address}': no Dask scheduler answered within 5 s" in result.stderr
    assert time.perf_counter() - started < 40  # imports and the 5 s wait; never the run
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_an_unknown_task_runner_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="'sequential', 'threads' or 'dask'"):
        build_config("smoke", overrides=["runtime.task_runner=ray"], env={})


TIMINGS = ("seconds", "per_second", "mlflow/run_id", "/peak_rss_gb")
"""Summary entries that legitimately differ between two runs: wall times, rates, peak memory, the MLflow run id —
and ``registry/...``: the second run registers version 2 beside the first's champion."""


@pytest.mark.slow
def test_the_flow_on_dask_gives_the_sequential_numbers(prefect_harness, tmp_path: Path) -> None:
    """A smoke run, then the sharded stages (features with an empty embedding cache, evaluate, contrast) again
    on a 2-worker local Dask cluster (the other stages reused from the first run): every number of the summary
    agrees."""
    from recause.flows.runners import pipeline_for

    def run(name: str, *overrides: str) -> dict:
        config = build_config("smoke", dataset="synthetic", output_dir=tmp_path / name,
                              overrides=[f"runtime.output_root={tmp_path}", *overrides], env={})
        state = pipeline_for(config)(config, return_state=True)
        assert state.is_completed(), state.message
        return json.loads((tmp_path / name / "summary.json").read_text())

    sequential = run("sequential")
    for stage in ("features", "evaluate", "contrast"):
        shutil.rmtree(tmp_path / "stages" / stage)
    shutil.rmtree(tmp_path / "cache" / "embeddings")  # so the features stage embeds every text again, in shards
    dask = run("dask", "runtime.task_runner=dask", "runtime.dask_workers=2")
    assert not {"features", "evaluate", "contrast"} & set(dask["run/reused_stages"].split(","))
    assert dask["features/cache_hits"] == 0 and dask["features/texts_embedded"] == sequential["features/texts_embedded"] > 0
    assert "simulate" in dask["run/reused_stages"]
    assert set(dask) == set(sequential)
    differ = {}
    for key, value in sequential.items():
        other = dask[key]
        if key.endswith(TIMINGS) or key.startswith("registry/") or key in ("run/reused_stages", "mlflow/tracking_uri"):
            continue
        if isinstance(value, float) and isinstance(other, float):
            if not (math.isclose(value, other, rel_tol=1e-6, abs_tol=1e-12) or (math.isnan(value) and math.isnan(other))):
                differ[key] = (value, other)
        elif value != other:
            differ[key] = (value, other)
    assert not differ
    assert sum(1 for key in sequential if key.startswith("interventions/")) > 20  # the sharded stages' numbers were compared


def twice(item: int, offset: int) -> int:
    """A shard function for the flow below (module-level: it travels by reference)."""
    return 2 * item + offset


def test_shards_on_threads_leave_the_stage_inputs_behind(prefect_harness) -> None:
    """The ``threads`` runner maps shards in order, and what a runner ships with each shard (Prefect's
    serialised context) no longer carries the stage task's parameters — the stage's whole inputs."""
    from prefect import flow, task
    from prefect.context import serialize_context

    from recause.flows.config import RuntimeConfig
    from recause.flows.runners import task_runner
    from recause.flows.shards import _without_the_stage_context, shard_map

    @task
    def stage(inputs: np.ndarray) -> tuple[list[int], dict, dict]:
        with _without_the_stage_context():
            shipped = serialize_context()["task_run_context"]
        with shard_map() as map_shards:
            return list(map_shards(twice, [3, 1, 2], {"offset": 10})), shipped, serialize_context()["task_run_context"]

    @flow(task_runner=task_runner(RuntimeConfig(task_runner="threads", dask_workers=2)))
    def pipeline() -> tuple[list[int], dict, dict]:
        return stage(np.zeros(1000))

    results, shipped, inside = pipeline()
    assert results == [16, 12, 14]
    assert "inputs" in inside["parameters"] and shipped == {}


def wait_for_the_stage(item: int, started: str) -> int:
    """A shard that waits until its stage has gone on past the map (the file ``started``) and fails if it never does."""
    deadline = time.monotonic() + 20
    while not Path(started).exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the stage did not go on while its shards ran")
        time.sleep(0.02)
    return item + 1


def test_a_map_on_a_parallel_runner_returns_before_its_shards_finish(prefect_harness, tmp_path) -> None:
    """The stage goes on with its own work while the shards run, and reads their results later in the items' order
    (with a blocking map the shards would wait for a file the stage writes only after the map returned)."""
    from prefect import flow, task

    from recause.flows.config import RuntimeConfig
    from recause.flows.runners import task_runner
    from recause.flows.shards import shard_map

    started = tmp_path / "started"

    @task
    def stage() -> list[int]:
        with shard_map() as map_shards:
            results = map_shards(wait_for_the_stage, [1, 2, 3], {"started": str(started)})
            started.touch()  # the stage's own work
            return list(results)

    @flow(task_runner=task_runner(RuntimeConfig(task_runner="threads", dask_workers=3)))
    def pipeline() -> list[int]:
        return stage()

    assert pipeline() == [2, 3, 4]


def test_a_stages_arguments_go_to_one_file_each_however_many_maps_take_them(tmp_path) -> None:
    """On a local cluster an object is written once per stage (by identity), plain values travel as they are, a
    worker keeps what it loaded for the stage and drops it at another stage's first shard, and closing the stage
    removes its files."""
    from recause.flows import shards
    from recause.flows.shards import Shards, Stored, loaded

    big, other = np.arange(1000.0), np.arange(1000.0)
    stage = Shards(by_file=True)
    first, again, twin = stage._reference(big), stage._reference(big), stage._reference(other)
    assert isinstance(first, Stored) and again == first and twin != first  # the same object once; an equal one apart
    assert stage._reference("ipw") == "ipw" and stage._reference(3) == 3 and stage._reference(None) is None
    folder = Path(first.path).parent
    assert sorted(p.name for p in folder.iterdir()) == ["0.pkl", "1.pkl"]
    assert np.array_equal(loaded(first), big) and loaded(first) is loaded(again)  # read once, then kept
    assert set(shards._LOADED) == {first.path}
    later = Shards(by_file=True)
    assert loaded(later._reference(np.ones(3))).sum() == 3.0 and first.path not in shards._LOADED
    stage.close()
    later.close()
    assert not folder.exists() and not Path(first.path).exists()


def test_local_dask_workers_keep_mallocs_adaptive_threshold() -> None:
    """distributed's MALLOC_TRIM_THRESHOLD_=65536 made the shards' numpy work 2.6-4.6x slower in its workers."""
    from distributed.nanny import _get_env_variables

    from recause.flows.config import RuntimeConfig
    from recause.flows.runners import task_runner

    task_runner(RuntimeConfig(task_runner="dask"))
    spawned = _get_env_variables("distributed.nanny.pre-spawn-environ")
    assert "MALLOC_TRIM_THRESHOLD_" not in spawned and spawned["OMP_NUM_THREADS"] == "1"


def test_dask_workers_are_started_and_import_the_shards_modules_before_the_first_shard(prefect_harness) -> None:
    """warm_workers: on a local Dask cluster the workers exist, and come to hold Lightning (what a GNN policy
    unpickles), torch and the sharded stages' modules, before any task was submitted; on the sequential runner
    there is nothing to warm. On that cluster a stage that keeps its shards off it (evaluate) maps in order."""
    from prefect import flow
    from prefect.context import FlowRunContext

    from recause.flows.config import RuntimeConfig
    from recause.flows.runners import task_runner
    from recause.flows.shards import WARM_IMPORTS, Shards, shard_map, warm_workers
    from recause.tasks.shards import in_order as in_order_mapper

    def imported() -> bool:
        return all(name in sys.modules for name in WARM_IMPORTS) and "lightning" in sys.modules

    @flow(task_runner=task_runner(RuntimeConfig(task_runner="dask", dask_workers=1)))
    def on_dask() -> bool:
        assert warm_workers()
        client = FlowRunContext.get().task_runner.client
        deadline = time.monotonic() + 120
        while not all(client.run(imported).values()):
            assert time.monotonic() < deadline, "the worker never imported the shards' modules"
            time.sleep(0.5)
        with shard_map(local_cluster=False) as here, shard_map() as there:
            assert here is in_order_mapper and isinstance(there, Shards)
        return True

    @flow
    def in_order() -> bool:
        return warm_workers()

    assert on_dask() and not in_order()


def test_a_scheduler_of_ones_own_takes_the_shards_but_not_those_that_read_this_machines_files(prefect_harness) -> None:
    """On ``runtime.dask_address`` every stage's shards go to that scheduler, except where the stage asks for
    ``own_scheduler=False`` (the features stage: its workers may not see the exported ONNX graph)."""
    from distributed import LocalCluster
    from prefect import flow

    from recause.flows.config import RuntimeConfig
    from recause.flows.runners import task_runner
    from recause.flows.shards import Shards, shard_map
    from recause.tasks.shards import in_order as in_order_mapper

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:

        @flow(task_runner=task_runner(RuntimeConfig(task_runner="dask", dask_address=cluster.scheduler_address)))
        def on_own_scheduler() -> bool:
            with shard_map() as there, shard_map(local_cluster=False) as also_there, shard_map(own_scheduler=False) as here:
                assert isinstance(there, Shards) and isinstance(also_there, Shards) and here is in_order_mapper
                assert list(there(twice, [1, 2], {"offset": 1})) == [3, 5]
            return True

        assert on_own_scheduler()


def started_at(item: int, seconds: float) -> float:
    """A shard that notes when it started, then takes ``seconds``."""
    start = time.time()
    time.sleep(seconds)
    return start


def test_on_dask_a_map_of_higher_priority_runs_ahead_of_the_queued_shards_of_an_earlier_one(prefect_harness) -> None:
    """One worker, a map of four 3 s shards at priority -1, then a map at the default 0 while the first shard runs:
    only the shard the worker already held starts before the second map's shards — neither first in, first
    out, nor one more held in the worker's own queue at distributed's default ``worker-saturation``."""
    from prefect import flow

    from recause.flows.config import RuntimeConfig
    from recause.flows.runners import task_runner
    from recause.flows.shards import shard_map

    @flow(task_runner=task_runner(RuntimeConfig(task_runner="dask", dask_workers=1)))
    def on_dask() -> tuple[list[float], float, list[float]]:
        with shard_map() as map_shards:
            # A warm worker; and a fresh cluster's first shards go to the worker unqueued, whatever their priority.
            list(map_shards(started_at, range(3), {"seconds": 0.0}))
            later = map_shards(started_at, range(4), {"seconds": 3.0}, priority=-1)
            first = map_shards(started_at, range(2), {"seconds": 0.0})
            submitted = time.time()
            return list(later), submitted, list(first)

    later, submitted, first = on_dask()
    assert submitted < min(later) + 3.0, "the second map was submitted only after the first shard had finished"
    # The worker holds the first map's first shard from its submission (it may start a moment after the second
    # map's): that one alone starts before the second map's shards. First in, first out starts three of them
    # before; a worker queue of two (distributed's default saturation), two.
    assert sorted(later)[1] > min(first), (later, submitted, first)


def halve(item: int) -> float:
    """A shard that refuses odd items."""
    if item % 2:
        raise ValueError(f"odd item {item}")
    return item / 2


def test_on_dask_each_shard_is_a_dask_task_and_no_prefect_task_run(prefect_harness) -> None:
    """On Dask a map's shards are plain Dask tasks (``shard:<function>-…``): results in the items' order, a shard's
    error raised where its result is read, and the flow run's only Prefect task run the stage's own — not one per
    shard, which cost ~620 ms of CPU each (``bench/shard_overhead.py``)."""
    from prefect import flow, task
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.context import FlowRunContext

    from recause.flows.config import RuntimeConfig
    from recause.flows.runners import task_runner
    from recause.flows.shards import shard_map

    @task(name="stage")
    def stage() -> tuple[list[float], float, list[str]]:
        with shard_map() as map_shards:
            halves = list(map_shards(halve, [4, 0, 2], {}))
            failing = map_shards(halve, [2, 3], {})
            with pytest.raises(ValueError, match="odd item 3"):
                failing[1]
            client = FlowRunContext.get().task_runner.client
            keys = sorted(client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.tasks)))
            return halves, failing[0], keys

    @flow(task_runner=task_runner(RuntimeConfig(task_runner="dask", dask_workers=1)))
    def on_dask() -> tuple[tuple[list[float], float, list[str]], str]:
        return stage(), str(FlowRunContext.get().flow_run.id)

    (halves, first, keys), flow_run_id = on_dask()
    assert halves == [2.0, 0.0, 1.0] and first == 1.0
    assert sum(k.startswith("shard:halve-") for k in keys) >= 2, keys  # the failing map's, still held by the stage
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    assert [run.name.split("-")[0] for run in runs] == ["stage"], [run.name for run in runs]
