"""The Bayes ceiling of uplift ranking on the synthetic world (recause.models.world.ceiling)."""

from __future__ import annotations

import numpy as np
import pytest

from recause.models.world import ceiling
from recause.models.world.scm import SyntheticWorld, WorldConfig


@pytest.fixture(scope="module")
def world() -> SyntheticWorld:
    return SyntheticWorld.create(WorldConfig(n_users=60, n_items=40, n_topics=4), seed=3)


def impressions(world: SyntheticWorld, per_pair: int, seed: int = 0):
    """``per_pair`` impressions of every (user, item) pair in random slots, outcomes drawn from the world."""
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(world.n_users), world.n_items * per_pair)
    items = np.tile(np.repeat(np.arange(world.n_items), per_pair), world.n_users)
    slots = rng.integers(0, world.config.slate_size, users.size)
    p0, p1 = world.potential_outcomes(users, items, pairs=True)
    outcomes = (rng.random(users.size) < p0 + world.examination()[slots] * (p1 - p0)).astype(float)
    return users, items, slots, outcomes


def test_a_point_posterior_at_the_true_quality_gives_the_true_uplift(world: SyntheticWorld) -> None:
    grid = np.sort(np.r_[ceiling.quality_grid(41), world.quality])
    posterior = (grid[None, :] == world.quality[:, None]).astype(float)
    users = np.arange(world.n_users)
    np.testing.assert_allclose(ceiling.posterior_uplift(world, users, posterior, grid),
                               world.uplift(users, np.arange(world.n_items)), rtol=1e-12, atol=1e-15)


def test_the_posterior_is_the_prior_without_impressions_and_learns_quality_from_many(world: SyntheticWorld) -> None:
    grid = ceiling.quality_grid()
    empty = np.array([], dtype=np.int64)
    for prior in ("marginal", "popularity"):
        posterior = ceiling.quality_posterior(world, empty, empty, empty, empty.astype(float), prior, grid)
        expected = np.exp(ceiling.log_prior(world, prior, grid))
        np.testing.assert_allclose(posterior, expected / expected.sum(axis=1, keepdims=True), rtol=1e-10)
    # popularity hints at quality (the world correlates them): the prior mean falls with the popularity rank
    prior_mean = ceiling.quality_of_posterior(ceiling.quality_posterior(world, empty, empty, empty, empty.astype(float)))
    by_popularity = prior_mean[np.argsort(-world.popularity_z)]
    assert np.all(np.diff(by_popularity) < 0) and by_popularity[0] > 0.5 > -0.5 > by_popularity[-1]
    # with many impressions of every pair, the posterior mean finds each item's quality
    few = ceiling.quality_of_posterior(ceiling.quality_posterior(world, *impressions(world, 1)))
    many = ceiling.quality_of_posterior(ceiling.quality_posterior(world, *impressions(world, 200)))
    error = lambda q: float(np.sqrt(np.mean((q - world.quality) ** 2)))  # noqa: E731
    assert error(many) < 0.25 < error(few)
    with pytest.raises(ValueError, match="prior must be"):
        ceiling.log_prior(world, "flat", grid)
