"""Policies as action distributions: Bernoulli Thompson sampling and score-based policies."""

from __future__ import annotations

import numpy as np
import pytest

from recause.models.policies.bandit import (
    bernoulli_ts_action_dist,
    epsilon_greedy,
    policy_action_dist,
    softmax_action_dist,
    top_k_action_dist,
)
from recause.models.policies.scores import PopularityPolicy

ALPHA = np.array([3.0, 8.0, 2.0, 15.0, 5.0, 40.0])
BETA = np.array([900.0, 2000.0, 400.0, 3000.0, 1500.0, 12000.0])


def test_bts_distribution_sums_to_one_per_position_and_is_seeded() -> None:
    dist = bernoulli_ts_action_dist(ALPHA, BETA, len_list=3, n_sim=5000, random_state=1, n_rounds=7)
    assert dist.shape == (7, 6, 3)
    np.testing.assert_allclose(dist.sum(axis=1), 1.0)
    np.testing.assert_array_equal(dist[0], dist[6])  # context-free: every round alike
    np.testing.assert_array_equal(dist, bernoulli_ts_action_dist(ALPHA, BETA, 3, 5000, 1, 7))
    assert not np.array_equal(dist, bernoulli_ts_action_dist(ALPHA, BETA, 3, 5000, 2, 7))
    # an action is shown at most once per simulation: over positions its share is at most 1
    assert (dist[0].sum(axis=1) <= 1.0 + 1e-12).all()


def test_bts_matches_a_slow_loop_of_exact_beta_inversions_with_the_same_draws() -> None:
    from scipy.special import betaincinv, ndtr

    n_sim = 3000
    fast = bernoulli_ts_action_dist(ALPHA, BETA, len_list=3, n_sim=n_sim, random_state=5)[0]
    rng = np.random.default_rng(5)
    counts = np.zeros((6, 3))
    for _ in range(n_sim):  # the same normal draws, one simulation at a time, exact quantiles
        z = np.clip(rng.standard_normal(6, dtype=np.float32).astype(np.float64), -7, 7)
        theta = betaincinv(ALPHA, BETA, ndtr(z))
        for k, a in enumerate(np.argsort(-theta)[:3]):
            counts[a, k] += 1
    np.testing.assert_array_equal(fast, counts / n_sim)


def test_bts_agrees_with_obps_sampler_within_monte_carlo_error() -> None:
    """obp draws θ ~ Beta with a RandomState per simulation; a different stream, the same law."""
    n_sim = 20_000
    rng = np.random.RandomState(12345)
    counts = np.zeros((6, 2))
    for _ in range(n_sim):
        top = rng.beta(ALPHA, BETA).argsort()[::-1][:2]
        counts[top, [0, 1]] += 1
    reference = counts / n_sim
    fast = bernoulli_ts_action_dist(ALPHA, BETA, len_list=2, n_sim=n_sim, random_state=0)[0]
    se = np.sqrt(2 * reference * (1 - reference) / n_sim) + 1e-4  # two independent simulations
    assert (np.abs(fast - reference) <= 5 * se).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(alpha=ALPHA, beta=BETA[:3]), r"alpha and beta must be 1-D of one length"),
        (dict(alpha=-ALPHA, beta=BETA), r"alpha and beta must be finite and > 0"),
        (dict(alpha=ALPHA, beta=BETA, len_list=7), r"len_list must lie in \[1, n_actions=6\]"),
        (dict(alpha=ALPHA, beta=BETA, n_sim=0), r"n_sim and n_rounds must be >= 1"),
    ],
)
def test_bts_bad_inputs_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bernoulli_ts_action_dist(**{"len_list": 2, **kwargs})


def test_top_k_is_one_hot_per_position_with_ties_to_the_lower_index() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.9], [3.0, 2.0, 1.0, 0.0]])
    dist = top_k_action_dist(scores, 3)
    # row 0: items 1 and 3 tie at 0.9 -> 1 first, then 3, then 2; row 1: 0, 1, 2
    assert [list(dist[0, :, k]).index(1.0) for k in range(3)] == [1, 3, 2]
    assert [list(dist[1, :, k]).index(1.0) for k in range(3)] == [0, 1, 2]
    np.testing.assert_array_equal(dist.sum(axis=1), 1.0)


def test_softmax_and_epsilon_greedy() -> None:
    scores = np.array([[0.0, np.log(3.0)]])  # softmax = [1/4, 3/4]
    soft = softmax_action_dist(scores, 2)
    np.testing.assert_allclose(soft[0, :, 0], [0.25, 0.75])
    np.testing.assert_allclose(soft[0, :, 1], [0.25, 0.75])  # every slot the same
    np.testing.assert_allclose(softmax_action_dist(scores, 1, temperature=0.01)[0, :, 0], [0.0, 1.0], atol=1e-12)
    mixed = epsilon_greedy(soft, 0.2)  # 0.8 [1/4, 3/4] + 0.2 / 2 = [0.3, 0.7]
    np.testing.assert_allclose(mixed[0, :, 0], [0.3, 0.7])
    with pytest.raises(ValueError, match="temperature must be > 0"):
        softmax_action_dist(scores, 1, temperature=0.0)
    with pytest.raises(ValueError, match=r"epsilon must lie in \[0, 1\]"):
        epsilon_greedy(soft, 1.5)


def test_policy_action_dist_repeats_each_users_distribution_over_their_rounds() -> None:
    policy = PopularityPolicy(np.array([5.0, 1.0, 3.0]))
    round_users = np.array([4, 2, 4, 9])
    dist = policy_action_dist(policy, round_users, len_list=2, rule="top_k", epsilon=0.3)
    assert dist.shape == (4, 3, 2)
    # top-2 by popularity: item 0 then item 2; ε = 0.3 adds 0.1 to every item
    np.testing.assert_allclose(dist[:, :, 0], np.tile([0.8, 0.1, 0.1], (4, 1)))
    np.testing.assert_allclose(dist[:, :, 1], np.tile([0.1, 0.1, 0.8], (4, 1)))
    with pytest.raises(ValueError, match="rule must be 'top_k' or 'softmax'"):
        policy_action_dist(policy, round_users, 2, rule="greedy")  # type: ignore[arg-type]
