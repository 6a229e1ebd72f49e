"""The model of record: a learned ranking over popularity only when its validation advantage's
bootstrap interval lies above zero (tasks/choice.py and its use in the harness)."""

from __future__ import annotations

import numpy as np
import pytest

from recause.models.metrics import RankingAccumulator, auc
from recause.models.policies.scores import FunctionPolicy
from recause.models.world.scm import WorldConfig
from recause.tasks.baselines import BaselinesConfig, build_baselines
from recause.tasks.choice import SIMPLE_BASELINE, auc_advantage, choose, weighted_aucs
from recause.tasks.data.split import SplitConfig, split_dataset
from recause.tasks.data.synthetic import load_synthetic
from recause.tasks.evaluate import EvaluationConfig, PolicySet, evaluate_policies


def test_weighted_auc_equals_auc_on_repeated_rows() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 40).astype(float)  # many ties
    labels = rng.integers(0, 2, 40)
    weights = rng.integers(0, 4, (3, 40)).astype(float)
    got = weighted_aucs(scores, labels, weights)
    for b in range(3):
        rows = np.repeat(np.arange(40), weights[b].astype(int))
        assert got[b] == pytest.approx(auc(scores[rows], labels[rows]))
    assert weighted_aucs(scores, labels, np.ones((1, 40)))[0] == pytest.approx(auc(scores, labels))


def test_hand_computed_weighted_auc() -> None:
    # positives 0.9 (w 2) and 0.1 (w 1); negatives 0.5 (w 1) and 0.1 (w 3): pairs 2·1 + 2·3 + 1·(0 + ½·3) = 9.5 of 3·4
    got = weighted_aucs(np.array([0.9, 0.1, 0.5, 0.1]), np.array([1, 1, 0, 0]), np.array([[2.0, 1.0, 1.0, 3.0]]))
    assert got[0] == pytest.approx(9.5 / 12)


def test_a_copy_of_the_baseline_is_not_chosen_and_a_clear_winner_is() -> None:
    rng = np.random.default_rng(1)
    n, users = 4000, np.repeat(np.arange(400), 10)
    labels = rng.integers(0, 2, n)
    noise = rng.normal(size=n)
    same = auc_advantage(noise, noise.copy(), labels, users, n_boot=300)
    assert same == (0.0, 0.0, 0.0)
    kept = choose("gnn", same, "debias/auc", "400 validation users")
    assert kept.name == SIMPLE_BASELINE and kept.leader == "gnn" and "within its interval" in kept.reason
    better = auc_advantage(labels + noise, noise, labels, users, n_boot=300)
    assert better[1] > 0.1 and better[1] <= better[0] <= better[2]
    chosen = choose("gnn", better, "debias/auc", "400 validation users")
    assert chosen.name == "gnn" and chosen.summary()["model/selection_advantage_low"] == better[1]


def test_per_user_values_average_to_the_result() -> None:
    acc = RankingAccumulator([1, 2], keep_per_user=True)
    acc.add(np.array([[0, 1, 2], [2, 1, 0]]), np.array([0, 1, 1]), np.array([1, 0, 1]))
    result = acc.result()
    for name in ("ndcg_at_2", "recall_at_1", "mrr_at_2"):
        assert acc.per_user(name).mean() == pytest.approx(result[name])
    with pytest.raises(ValueError, match="keep_per_user"):
        RankingAccumulator([1]).per_user("ndcg_at_1")


def test_the_harness_keeps_popularity_over_a_noisy_leader() -> None:
    data = load_synthetic(WorldConfig(n_users=150, n_items=120, n_topics=6, slate_size=5, mean_sessions=6), seed=4)
    split = split_dataset(data, SplitConfig(), seed=4)
    baselines = build_baselines(split, data, BaselinesConfig(policies=["popularity"]), seed=4)
    popularity = baselines.policies["popularity"]
    # popularity plus a tiny per-item jitter: it leads or trails popularity by noise alone
    jitter = np.random.default_rng(0).normal(scale=1e-3, size=split.n_items)
    copy = FunctionPolicy("noisy", lambda users: popularity.scores(users) + jitter)
    strong = FunctionPolicy("truth", lambda users: data.world.p_outcome_if_exposed(split.users.ids[users], split.items.ids))
    config = EvaluationConfig()
    noisy = evaluate_policies([baselines, PolicySet("gnn", {"noisy": copy})], split, config, None)
    # seed 0's jitter puts the copy first on validation (NDCG@20 +0.0017 over 28 users), by chance alone
    assert noisy.choice.leader == "noisy" and noisy.best == SIMPLE_BASELINE
    assert noisy.choice.low <= 0 <= noisy.choice.high, noisy.choice.reason
    summary = noisy.summary(data.meta, config)
    assert summary["model/name"] == noisy.best and summary["model/selection_reason"]
    clear = evaluate_policies([baselines, PolicySet("gnn", {"truth": strong})], split, config, None)
    assert clear.choice.leader == "truth" and clear.best == "truth" and clear.choice.low > 0, clear.choice.reason


def test_too_few_validation_positives_keep_popularity() -> None:
    from recause.tasks.choice import MIN_POSITIVES, too_few_positives

    kept = too_few_positives("gnn_causal", 2, "debias/auc")
    assert kept.name == SIMPLE_BASELINE and kept.leader == "gnn_causal"
    assert "2 positives" in kept.reason and str(MIN_POSITIVES) in kept.reason
    assert "model/selection_advantage" not in kept.summary()
