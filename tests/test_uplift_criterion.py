"""The uplift selection criterion on validation data (tasks/train/data.UpliftCriterion): with no
ground truth it must rank the true uplift ranking above a random one and a reversed one."""

from __future__ import annotations

import numpy as np
import pytest

from recause.models.world.scm import WorldConfig
from recause.tasks.data.split import SplitConfig, split_dataset
from recause.tasks.data.synthetic import load_synthetic
from recause.tasks.train.data import UpliftCriterion


@pytest.fixture(scope="module")
def world_split():
    config = WorldConfig(n_users=1500, n_items=100, n_topics=4, mean_sessions=6.0, persuasion_rate=0.2, organic_rate=0.05)
    dataset = load_synthetic(config, seed=5)
    return dataset, split_dataset(dataset, SplitConfig(), seed=5)


def scorer(world, split, tau_of):
    users, items = split.users.ids.astype(np.int64), split.items.ids.astype(np.int64)
    p0 = lambda u: world.p_outcome_if_not_exposed(users[u], items)  # noqa: E731

    def score(u: np.ndarray, head: str) -> np.ndarray:
        if head == "unexposed":
            return p0(u)
        if head == "exposed":
            return p0(u) + tau_of(u)
        return world.exposure_propensity(users[u], items)

    return score


def test_the_criterion_orders_rankings_as_the_truth_does(world_split) -> None:
    dataset, split = world_split
    world = dataset.world
    users, items = split.users.ids.astype(np.int64), split.items.ids.astype(np.int64)
    tau = lambda u: world.uplift(users[u], items)  # noqa: E731
    noise = np.random.default_rng(0).normal(size=(split.n_users, split.n_items))
    criterion = UpliftCriterion(split, propensity_head=True, depths=(None, 50))
    assert criterion.usable
    right = criterion(scorer(world, split, tau))
    random = criterion(scorer(world, split, lambda u: noise[u]))
    reversed_ = criterion(scorer(world, split, lambda u: -tau(u)))
    for name in ("val/auuc_ipw", "val/auuc_ipw_at_50"):
        assert right[name] > random[name] > reversed_[name], (name, right, random, reversed_)
    per_user = criterion.per_user(scorer(world, split, tau))[None]
    assert per_user.shape == (len(np.unique(split.val["user"])),) and per_user.mean() == pytest.approx(right["val/auuc_ipw"])
    # the last call's users stay for the epoch choice, once: a check scores them once for both
    assert criterion.take_last()[None].mean() == pytest.approx(reversed_["val/auuc_ipw"]) and criterion.take_last() is None


def test_without_logged_propensities_there_is_no_criterion(world_split) -> None:
    dataset, split = world_split
    from dataclasses import replace

    bare = replace(split, val=split.val.assign(propensity=np.nan))
    assert not UpliftCriterion(bare, propensity_head=False).usable
    assert UpliftCriterion(bare, propensity_head=False)(lambda u, h: np.zeros((len(u), split.n_items))) == {}
