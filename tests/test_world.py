"""The synthetic world's causal structure holds, its logs agree with its ground truth, and it is seeded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from recause.models.world.scm import SyntheticWorld, WorldConfig
from recause.tasks.data.synthetic import load_synthetic

SMALL = WorldConfig(n_users=300, n_items=400, n_topics=10, slate_size=5, mean_sessions=8)


@pytest.fixture(scope="module")
def world() -> SyntheticWorld:
    return SyntheticWorld.create(SMALL, seed=3)


@pytest.fixture(scope="module")
def logs(world: SyntheticWorld) -> pd.DataFrame:
    return world.simulate_logs()


def test_same_seed_same_data_and_different_seed_different_data() -> None:
    config = SMALL.model_copy(update={"n_users": 60, "n_items": 80})
    a, b, c = load_synthetic(config, seed=1), load_synthetic(config, seed=1), load_synthetic(config, seed=2)
    for name in ("interactions", "items", "users"):
        pd.testing.assert_frame_equal(a.table(name), b.table(name))
    assert not a.interactions[["user_id", "item_id"]].equals(c.interactions[["user_id", "item_id"]])
    # the seed has one home (the run's): the world's settings hold none, the world keeps the one passed
    assert "seed" not in WorldConfig.model_fields
    with pytest.raises(ValidationError, match="seed"):
        WorldConfig(seed=7)
    assert SyntheticWorld.create(config, seed=7).seed == 7


def test_logging_policy_is_a_distribution_with_positivity(world: SyntheticWorld) -> None:
    pi0 = world.logging_policy(np.arange(world.n_users))
    np.testing.assert_allclose(pi0.sum(axis=1), 1.0, atol=1e-12)
    assert pi0.min() >= world.config.exploration / world.n_items - 1e-15


def test_slate_propensities_sum_and_match_the_logged_frequencies(world: SyntheticWorld, logs: pd.DataFrame) -> None:
    shown = logs[logs["exposed"]]
    users, items = shown["user_id"].to_numpy(), shown["item_id"].to_numpy()
    pi0 = world.logging_policy(np.arange(world.n_users))
    # each slot is a draw from π0(.|u): the logged propensity is exactly π0(i|u) ...
    np.testing.assert_allclose(shown["propensity"].to_numpy(), pi0[users, items])
    # ... so over one slot the propensities of all candidate items sum to 1, and over a slate of K
    # slots the expected number of shows sums to K
    slots = world.config.slate_size
    np.testing.assert_allclose((pi0[:, :, None] * np.ones(slots)).sum(axis=(1, 2)), slots)
    # every session shows exactly K slots, positions 1..K
    per_session = shown.groupby(["user_id", shown["timestamp"].dt.floor("s") - pd.to_timedelta(shown["position"] - 1, unit="s")]).size()
    assert (per_session == slots).all()
    # the logged frequency of each item matches Σ_u K·S_u·π0(i|u) (chi-square over popular items)
    expected = (slots * world.sessions[:, None] * pi0).sum(axis=0)
    observed = np.bincount(items, minlength=world.n_items)
    top = expected > 30
    chi2 = (((observed - expected) ** 2) / expected)[top].sum()
    assert chi2 < top.sum() + 5 * np.sqrt(2 * top.sum())


def test_exposure_propensity_is_the_chance_of_at_least_one_show(world: SyntheticWorld) -> None:
    users, items = np.arange(5), np.arange(world.n_items)
    pi0 = world.logging_policy(users)
    draws = world.config.slate_size * world.sessions[users][:, None]
    np.testing.assert_allclose(world.exposure_propensity(users, items), 1 - (1 - pi0) ** draws, rtol=1e-10)


def test_uplift_takes_both_signs_and_is_p1_minus_p0(world: SyntheticWorld) -> None:
    users, items = np.arange(world.n_users), np.arange(world.n_items)
    p0 = world.p_outcome_if_not_exposed(users, items)
    p1 = world.p_outcome_if_exposed(users, items)
    tau = world.uplift(users, items)
    np.testing.assert_allclose(tau, p1 - p0)
    assert (tau > 1e-3).mean() > 0.05 and (tau < -1e-4).sum() > 0
    assert ((p0 > 0) & (p0 < 1) & (p1 > 0) & (p1 < 1)).all()
    # the pairwise form agrees with the grid
    u, i = np.array([0, 5, 9]), np.array([3, 3, 200])
    np.testing.assert_allclose(world.uplift(u, i, pairs=True), tau[u, i])


def test_logged_click_rate_matches_the_exact_value_of_the_logging_policy(world: SyntheticWorld, logs: pd.DataFrame) -> None:
    shown = logs[logs["exposed"]]
    exact = world.logging_policy_value()
    se = shown["outcome"].std() / np.sqrt(len(shown))
    assert abs(shown["outcome"].mean() - exact.value) < 4 * se
    # the same value through the action-distribution API (every slot drawn from π0)
    users = np.arange(world.n_users)
    dist = np.repeat(world.logging_policy(users)[:, :, None], world.config.slate_size, axis=2)
    via_dist = world.policy_value_of_distribution(dist, users)
    assert via_dist.value == pytest.approx(exact.value, rel=1e-10)
    assert via_dist.incremental == pytest.approx(exact.incremental, rel=1e-10)


def test_scores_and_one_hot_distribution_give_the_same_value(world: SyntheticWorld) -> None:
    users = np.arange(50)
    scores = world.uplift(users, np.arange(world.n_items))
    slates = np.argsort(-scores, axis=1, kind="stable")[:, : world.config.slate_size]
    dist = np.zeros((len(users), world.n_items, world.config.slate_size))
    for k in range(world.config.slate_size):
        dist[np.arange(len(users)), slates[:, k], k] = 1.0
    by_scores = world.policy_value_of_scores(scores, users)
    by_dist = world.policy_value_of_distribution(dist, users)
    assert by_scores.value == pytest.approx(by_dist.value) and by_scores.incremental == pytest.approx(by_dist.incremental)


def test_naive_click_rate_overstates_the_causal_effect_and_more_so_with_confounding() -> None:
    """Correlation is not causation by construction: the click-through rate of shown items minus
    the organic rate (a naive difference in means) differs measurably from what showing caused."""
    gaps = {}
    for strength in (0.0, 1.0):
        world = SyntheticWorld.create(SMALL.model_copy(update={"confounding": strength}), seed=3)
        logs = world.simulate_logs()
        shown = logs[logs["exposed"]]
        kappa = world.examination()[shown["position"].to_numpy(dtype=int) - 1]
        caused = kappa * world.uplift(shown["user_id"].to_numpy(), shown["item_id"].to_numpy(), pairs=True)
        n_unexposed = world.n_users * world.n_items - len(shown[["user_id", "item_id"]].drop_duplicates())
        naive = shown["outcome"].mean() - (~logs["exposed"]).sum() / n_unexposed
        se = shown["outcome"].std() / np.sqrt(len(shown))
        if strength == 1.0:  # the default world: the bias is many standard errors
            assert naive - caused.mean() > 5 * se
        gaps[strength] = naive / caused.mean()
    assert gaps[1.0] > 2.0 > gaps[0.0] > 1.0  # popularity is what drives the gap


def test_ranking_by_relevance_is_not_ranking_by_effect(world: SyntheticWorld) -> None:
    users, items = np.arange(world.n_users), np.arange(world.n_items)
    tau = world.uplift(users, items)

    def cp(scores: np.ndarray) -> float:
        return float(np.take_along_axis(tau, np.argsort(-scores, axis=1)[:, :10], axis=1).mean())

    by_effect, by_relevance = cp(tau), cp(world.p_outcome_if_exposed(users, items))
    by_popularity = cp(np.broadcast_to(world.popularity_z, tau.shape))
    assert by_effect > by_relevance > by_popularity
    assert by_relevance < 0.9 * by_effect


def test_organic_finds_are_unexposed_positives_with_queries(world: SyntheticWorld, logs: pd.DataFrame) -> None:
    organic = logs[~logs["exposed"]]
    assert len(organic) > 0 and (organic["outcome"] == 1.0).all()
    assert organic["propensity"].isna().all() and organic["position"].isna().all()
    assert organic["query"].str.len().gt(0).all()
    shown_pairs = set(zip(logs.loc[logs["exposed"], "user_id"], logs.loc[logs["exposed"], "item_id"]))
    assert not shown_pairs & set(zip(organic["user_id"], organic["item_id"]))


def test_item_text_names_the_item_topics(world: SyntheticWorld) -> None:
    items = world.items_table()
    from recause.models.world.text import TOPIC_NAMES

    main = [TOPIC_NAMES[t] for t in np.argmax(world.phi, axis=1)]
    assert all(topic in text for topic, text in zip(main, items["text"]))
    assert items["categories"].str.split("|").map(len).between(1, 3).all()
