"""Data-parallel training (``gnn.strategy: ddp_fork``): the batches shard, two processes train the
model one process trains, and a strategy the machine cannot run is a configuration error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recause.models.gnn import batches as gb
from recause.tasks.config import ConfigurationError
from recause.tasks.evaluate import EvaluationConfig, causal_metrics_of
from recause.tasks.train.config import TrainConfig
from recause.tasks.train.distributed import check_distributed
from recause.tasks.train.fit import train_model
from test_train import FAST, world_split  # noqa: F401  (the tiny world and its fixture)

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------------------------- sharding
def _rows(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if v.dim()}


def test_the_processes_shards_partition_the_one_process_batch(monkeypatch) -> None:
    """7 rows in batches of 4 on 2 processes: each batch's parts split row by row between the
    processes (the uniform draws included, since both draw them from the same generator)."""
    make = lambda rows, g: {"exp_u": rows, "uni_u": torch.randint(100, (4,), generator=g), "share": torch.tensor(0.5)}  # noqa: E731
    single = list(gb.EpochBatches(7, 4, make, seed=3))
    shards = []
    for rank in (0, 1):
        monkeypatch.setattr(gb, "process_shard", lambda rank=rank: (rank, 2))
        shards.append(list(gb.EpochBatches(7, 4, make, seed=3)))
    assert [len(s) for s in shards] == [len(single)] * 2 == [2, 2]
    for whole, first, second in zip(single, *shards):
        for key, value in _rows(whole).items():
            assert sorted(torch.cat([first[key], second[key]]).tolist()) == sorted(value.tolist()), key
        assert first["share"] == second["share"] == whole["share"]
    assert sorted(torch.cat([b["exp_u"] for s in shards for b in s]).tolist()) == list(range(7))


def test_a_last_batch_smaller_than_the_processes_is_topped_up(monkeypatch) -> None:
    """5 rows in batches of 2 on 2 processes: the last batch has one row, so the first row of the
    epoch's permutation is added (as DistributedSampler pads): no process gets an empty batch."""
    chunks = {}
    for rank in (0, 1):
        monkeypatch.setattr(gb, "process_shard", lambda rank=rank: (rank, 2))
        chunks[rank] = list(gb.ShardedChunks(5, 2, seed=0))
    assert [len(c) for c in chunks[0]] == [len(c) for c in chunks[1]] == [1, 1, 1]
    epoch = [a + b for a, b in zip(chunks[0], chunks[1])]  # the one-process batches, rebuilt from the shards
    assert sorted(epoch[0] + epoch[1] + epoch[2][:1]) == [0, 1, 2, 3, 4]  # every row once ...
    assert epoch[2][1] == epoch[0][0]  # ... and the epoch's first row again


# ---------------------------------------------------------------------------------------------- one process vs two
@pytest.mark.slow
def test_two_processes_train_the_model_one_process_trains(world_split) -> None:  # noqa: F811
    """The tiny world's causal GNN (20 epochs at most, batch 2,048), in one process and with DDP on
    two forked CPU processes (gloo), from the same seed.

    Why they agree: each process draws the same batch from the same seeded generator and keeps every
    other row of each part (exposed rows, exposure pairs, organic finds, uniform pairs). Every loss
    term is a mean over its part's rows, so the mean of the two half-batch means is the full batch's
    mean and DDP's averaged gradient is the one-process gradient. Only the summation order differs
    (float32 rounding, ~1e-7 relative per step; measured: weights 1.7e-7 apart after 2 epochs) and
    the last batch of each epoch (19,054 exposed rows = 9 × 2,048 + 622: 311 + 311, an even split,
    so exact here too). Adam and 20 epochs let the rounding grow, so the test allows 1e-4 on
    losses and the best AUUC (their epoch-to-epoch changes are ~1e-3) and 2e-3 on CP@10, and asks for
    the same stopping and chosen epoch. The AUUC curve gets 1e-3 (its epoch-to-epoch changes here are
    1e-2 to 1e-1): it is a ranking of pairs weighed by inverse propensities, and in the first epochs the
    zero-started outcome heads (``gnn.outcome_interaction_start``) score many pairs nearly alike, so a
    rounding difference can swap two near-tied pairs of large weight (measured: 3.7e-4 at epoch 1, the
    losses equal to 1.5e-8 and the AUUC to 7.5e-9 at every other epoch).
    """
    dataset, split = world_split
    models = {}
    for name, extra in {"one": {}, "ddp": {"strategy": "ddp_fork", "devices": 2}}.items():
        models[name] = train_model(split, dataset.meta, TrainConfig(variant="causal", **FAST, **extra), seed=1, threads=1)
    one, ddp = models["one"], models["ddp"]
    for key in ("epochs", "best_epoch", "steps_per_epoch"):
        assert ddp.history[key] == one.history[key], key
    assert ddp.history["epoch_choice"] == one.history["epoch_choice"]
    for key in ("best_val/outcome_loss", "best_val/auuc_ipw"):
        assert ddp.history[key] == pytest.approx(one.history[key], abs=1e-4), key
    # the curves: validation (every process, whole set) and the training loss (synced over the shards)
    assert len(ddp.curves) == len(one.curves)
    for a, b in zip(one.curves, ddp.curves):
        for key, tolerance in (("val/outcome_loss", 1e-4), ("val/auuc_ipw", 1e-3), ("train/loss", 1e-4)):
            assert b[key] == pytest.approx(a[key], abs=tolerance), (key, a["epoch"])
    # the caller's module holds the chosen epoch's weights (not rank 0's last ones): same scores, same test metric
    users = np.arange(50)
    np.testing.assert_allclose(ddp.uplift(users), one.uplift(users), atol=1e-4)
    evaluation = EvaluationConfig()
    cp = {name: causal_metrics_of(m.uplift_policy(), split, dataset.world, evaluation)["causal/cp_at_10"]
          for name, m in models.items()}
    assert cp["ddp"] == pytest.approx(cp["one"], abs=2e-3)


# ---------------------------------------------------------------------------------------------- bad settings
HERE = dict(threads=1, cpus=2, gpus=0, environ={})
BAD = [
    (dict(devices=2), {}, "gnn.strategy is auto.*set gnn.strategy=ddp_fork"),
    (dict(num_nodes=2, devices=1), {}, "gnn.strategy is auto"),
    (dict(strategy="ddp_fork", devices=4, accelerator="gpu"), {}, "needs 4 CUDA device.*torch sees 0.*gnn.accelerator=cpu"),
    (dict(strategy="ddp_fork", devices=4), {"gpus": 2}, "gnn.devices=4 GPUs.*torch sees 2.*gnn.devices=2"),
    (dict(strategy="ddp_fork", devices=3), {}, "3 CPU processes.*has 2: set gnn.devices=2$"),
    (dict(strategy="ddp_fork", devices=2), {"threads": 2}, "need 4 cores.*set gnn.devices=1 or lower runtime.threads"),
    (dict(strategy="ddp_fork", devices=1, num_nodes=2), {"environ": {"MASTER_ADDR": "10.0.0.1"}},
     "gnn.num_nodes=2 needs MASTER_ADDR.*missing: MASTER_PORT, NODE_RANK.*gnn.num_nodes=1"),
]


@pytest.mark.parametrize(("settings", "machine", "message"), BAD, ids=[m.split(".*")[0] for *_, m in BAD])
def test_a_strategy_the_machine_cannot_run_names_what_to_change(settings: dict, machine: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        check_distributed(TrainConfig(**settings), **(HERE | machine))


def test_what_the_machine_can_run_passes() -> None:
    check_distributed(TrainConfig(), **HERE)  # today's default: one process
    check_distributed(TrainConfig(strategy="ddp_fork", devices=2), **HERE)
    check_distributed(TrainConfig(strategy="ddp_fork", devices=2, accelerator="gpu"), **(HERE | {"gpus": 2}))
    check_distributed(TrainConfig(strategy="ddp_fork", num_nodes=2),
                      **(HERE | {"environ": {"MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500", "NODE_RANK": "1"}}))


def test_an_unknown_strategy_is_refused_by_the_config() -> None:
    with pytest.raises(ValueError, match="'auto' or 'ddp_fork'"):
        TrainConfig(strategy="ddp")
