"""The item-level uplift intervals of the recommend stage (tasks/recommend/intervals.py): doubly robust,
so with the world's true propensities and examination they cover the truth even when the outcome
model is wrong (here τ̂ = 0 and f0 = 0)."""

from __future__ import annotations

import numpy as np
import pytest

from recause.models.world.scm import WorldConfig
from recause.tasks.data.split import SplitConfig, split_dataset
from recause.tasks.data.synthetic import load_synthetic
from recause.tasks.recommend.intervals import coverage, item_uplift_intervals
from recause.tasks.train.data import retention


@pytest.fixture(scope="module")
def world_split():
    config = WorldConfig(n_users=1500, n_items=100, n_topics=4, mean_sessions=6.0, persuasion_rate=0.2, organic_rate=0.05)
    dataset = load_synthetic(config, seed=3)
    return dataset, split_dataset(dataset, SplitConfig(), seed=3)


def _truth(dataset, split):
    users, items = split.users.ids.astype(np.int64), split.items.ids.astype(np.int64)
    return dataset.world.uplift(users, items).mean(axis=0)


def test_intervals_correct_a_wrong_outcome_model_with_true_propensities(world_split) -> None:
    dataset, split = world_split
    world = dataset.world
    users, items = split.users.ids.astype(np.int64), split.items.ids.astype(np.int64)
    zeros = lambda u: np.zeros((len(u), split.n_items))  # noqa: E731  (a wrong outcome model: τ̂ = f0 = 0)
    g = lambda u: world.exposure_propensity(users[u], items)  # noqa: E731
    kappa = world.examination(world.config.slate_size)
    found = item_uplift_intervals(split, zeros, zeros, g, kappa, retention(split, "train"))
    truth = _truth(dataset, split)
    assert found.estimate.shape == found.low.shape == (split.n_items,)
    assert np.all(found.low <= found.estimate) and np.all(found.estimate <= found.high)
    assert coverage(found, truth) >= 0.8  # nominal 0.95 over 100 items
    # from τ̂ = 0 to within 20% of the truth by the log alone (pairs exposed with g ≈ 1 leave the never-shown
    # arm almost empty: a small deficit; measured 0.0175 of 0.134)
    assert abs(np.mean(found.estimate - truth)) < 0.2 * truth.mean()
    naive = item_uplift_intervals(split, zeros, zeros, g, kappa, retention(split, "train"), level=0.5)
    assert np.all(naive.high - naive.low < found.high - found.low)  # a lower level, a narrower interval


def test_a_right_outcome_model_gives_narrower_intervals(world_split) -> None:
    dataset, split = world_split
    world = dataset.world
    users, items = split.users.ids.astype(np.int64), split.items.ids.astype(np.int64)
    zeros = lambda u: np.zeros((len(u), split.n_items))  # noqa: E731
    tau = lambda u: world.uplift(users[u], items)  # noqa: E731
    p0 = lambda u: world.p_outcome_if_not_exposed(users[u], items)  # noqa: E731
    g = lambda u: world.exposure_propensity(users[u], items)  # noqa: E731
    kappa, share = world.examination(world.config.slate_size), retention(split, "train")
    right = item_uplift_intervals(split, tau, p0, g, kappa, share)
    wrong = item_uplift_intervals(split, zeros, zeros, g, kappa, share)
    assert np.median(right.high - right.low) < np.median(wrong.high - wrong.low)
    assert coverage(right, _truth(dataset, split)) >= 0.8


def test_intervals_need_logged_propensities(world_split) -> None:
    from dataclasses import replace

    dataset, split = world_split
    broken = replace(split, train=split.train.assign(propensity=np.nan))
    zeros = lambda u: np.zeros((len(u), split.n_items))  # noqa: E731
    with pytest.raises(ValueError, match="logged propensity"):
        item_uplift_intervals(broken, zeros, zeros, zeros, np.array([1.0]), retention(split, "train"))
