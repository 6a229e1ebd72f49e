"""Each setting of the train stage resolves once: the regime fills what the user left open, the run
supplies the seed and the thread count, and every model is planned exactly once."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from pydantic import ValidationError

from recause.models.world.scm import WorldConfig
from recause.tasks.data.schema import Dataset, DatasetMeta
from recause.tasks.data.split import SplitConfig, split_dataset
from recause.tasks.data.synthetic import load_synthetic
from recause.tasks.train import plan as planning
from recause.tasks.train.config import AUTO, TrainConfig, resolve
from recause.tasks.train.fit import train_models
from recause.tasks.train.plan import plan_models

warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
TINY = WorldConfig(n_users=60, n_items=40, n_topics=4, slate_size=3, mean_sessions=4)


@pytest.fixture(scope="module")
def synthetic():
    data = load_synthetic(TINY, seed=2)
    return data, split_dataset(data, SplitConfig(), seed=2)


def implicit_only(data: Dataset) -> Dataset:
    """The synthetic log reduced to what MovieLens has: positives, no exposure information."""
    positives = data.interactions[data.interactions["outcome"] >= 1].assign(exposed=False)
    meta = DatasetMeta("implicit", "binary", (0.0, 1.0), 1.0, False, None, True, ("user_id", "item_id", "timestamp"))
    return Dataset(positives.reset_index(drop=True), data.items, data.users, meta)


@pytest.mark.parametrize("regime", ["ranking", "debias", "uplift"])
def test_resolve_fills_what_is_open_from_the_regime_and_keeps_what_is_set(regime: str) -> None:
    resolved = resolve(TrainConfig(lr=0.5, num_layers=2), "causal", regime, seed=11, threads=3)
    assert (resolved.lr, resolved.num_layers) == (0.5, 2)
    for key in ("batch_size", "init_std", "l2", "patience"):
        assert getattr(resolved, key) == AUTO[regime][key]
    assert (resolved.regime, resolved.seed, resolved.threads, resolved.variant) == (regime, 11, 3, "causal")
    with pytest.raises(ValidationError, match="frozen"):
        resolved.lr = 1.0


def test_seed_and_threads_have_one_home() -> None:
    # neither the world nor the train stage carries a seed or a thread count of its own
    assert "seed" not in WorldConfig.model_fields
    assert not {"seed", "threads"} & set(TrainConfig.model_fields)
    with pytest.raises(ValidationError, match="seed"):
        TrainConfig(seed=3)


def test_plans_carry_the_regimes_settings_into_the_objective(synthetic) -> None:
    data, split = synthetic
    plans = plan_models(TrainConfig(l2=None), split, data.meta, seed=5, threads=1)
    assert [s.name for s in plans.specs] == ["gnn_causal", "gnn_naive", "gnn_t_learner"]
    by_name = {s.name: s for s in plans.specs}
    assert by_name["gnn_causal"].plan.regime == "uplift" and by_name["gnn_naive"].plan.regime == "ranking"
    for spec in plans.specs:
        # the objective's L2 is the resolved config's, set when the objective is made (not patched later)
        assert spec.plan.objective.l2 == spec.config.l2 == AUTO[spec.plan.regime]["l2"]
        assert spec.config.seed == 5 and spec.config.variant == spec.name.removeprefix("gnn_")
    assert plans.skipped == {}


def test_a_reference_equal_to_the_causal_model_is_skipped_with_the_reason(synthetic) -> None:
    data, _ = synthetic
    implicit = implicit_only(data)
    plans = plan_models(TrainConfig(), split_dataset(implicit, SplitConfig(), seed=2), implicit.meta, seed=0, threads=1)
    assert [s.name for s in plans.specs] == ["gnn_causal"]
    assert plans.specs[0].plan.objective.kind == "bpr"
    assert plans.skipped["gnn_naive"].startswith("same objective as gnn_causal on implicit")
    assert "lacks" in plans.skipped["gnn_t_learner"]
    assert "not identifiable" in plans.skipped["gnn_causal_uplift"]


def test_every_model_is_planned_once_per_training(synthetic, monkeypatch, one_thread) -> None:
    data, split = synthetic
    calls: list[str] = []
    design = planning._design

    def counting(config, variant, *args):
        calls.append(variant)
        return design(config, variant, *args)

    monkeypatch.setattr(planning, "_design", counting)
    models = train_models(split, data.meta, TrainConfig(epochs=1, dim=8), seed=0, threads=1)
    assert sorted(f"gnn_{v}" for v in calls) == sorted(models.models) and len(calls) == 3
    assert {m.config.seed for m in models.models.values()} == {0}
