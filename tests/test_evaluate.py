"""The evaluation harness on hand-checked cases, and baselines/oracles on a small world."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from recause.models.policies.scores import FunctionPolicy, PopularityPolicy, RandomPolicy
from recause.models.world.scm import WorldConfig
from recause.tasks.baselines import BaselinesConfig, build_baselines
from recause.tasks.data.schema import IdIndex
from recause.tasks.data.synthetic import load_synthetic
from recause.tasks.evaluate import BLOCK_BYTES, EvaluationConfig, block_users, evaluate_policies, evaluate_policy
from recause.tasks.data.split import Split, SplitConfig, split_dataset


def frame(pairs: list[tuple[int, int, bool]]) -> pd.DataFrame:
    return pd.DataFrame(pairs, columns=["user", "item", "positive"]).astype({"user": "int64", "item": "int64"})


def toy_split(kind: str, train, val, test) -> Split:
    return Split(kind, IdIndex(np.array([10, 11])), IdIndex(np.arange(5)), frame(train), frame(val), frame(test), 0)


def test_full_ranking_by_hand() -> None:
    # train positives: u0 {0}, u1 {0, 1}; test positives: u0 {1, 3}, u1 {2}; popularity = [2, 1, 0, 0, 0]
    split = toy_split("per_user", [(0, 0, True), (1, 0, True), (1, 1, True)], [], [(0, 1, True), (0, 3, True), (1, 2, True)])
    policy = PopularityPolicy(np.array([2, 1, 0, 0, 0]))
    metrics = evaluate_policy(policy, split, EvaluationConfig(ks=[1, 3]), "test")
    # u0: item 0 masked -> ranking 1, 2, 3 (ties by index): hits at ranks 1 and 3
    # u1: items 0, 1 masked -> ranking 2, 3, 4: hit at rank 1
    ndcg_u0 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert metrics["ranking/recall_at_3"] == pytest.approx(1.0)
    assert metrics["ranking/ndcg_at_3"] == pytest.approx((ndcg_u0 + 1.0) / 2)
    assert metrics["ranking/recall_at_1"] == pytest.approx((0.5 + 1.0) / 2)
    assert metrics["ranking/precision_at_3"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert metrics["ranking/mrr_at_3"] == pytest.approx(1.0)
    assert metrics["ranking/n_users_evaluated"] == 2


def test_test_ranking_masks_validation_positives_and_drops_seen_targets() -> None:
    # u0's validation positive (item 1) is masked for test; a test target seen in train is dropped
    split = toy_split("per_user", [(0, 0, True)], [(0, 1, True)], [(0, 2, True), (0, 0, True)])
    policy = PopularityPolicy(np.array([5, 4, 3, 2, 1]))
    metrics = evaluate_policy(policy, split, EvaluationConfig(ks=[1]), "test")
    assert metrics["ranking/recall_at_1"] == 1.0  # item 2 is first once 0 and 1 are masked
    val = evaluate_policy(policy, split, EvaluationConfig(ks=[1]), "val")
    assert val["ranking/recall_at_1"] == 1.0  # for validation only train is masked


def test_debias_metrics_by_hand() -> None:
    # randomized test rows: u0 items 1(+) 2(-) 3(+); u1 items 0(-) 4(+)
    test = [(0, 1, True), (0, 2, False), (0, 3, True), (1, 0, False), (1, 4, True)]
    split = toy_split("randomized", [], [], test)
    scores = np.array([[0.0, 0.9, 0.8, 0.1, 0.0], [0.7, 0.0, 0.0, 0.0, 0.6]])
    policy = FunctionPolicy("fixed", lambda users: scores[users])
    metrics = evaluate_policy(policy, split, EvaluationConfig(debias_k=2), "test")
    # pairs (pos, neg): (0.9,0.8) (0.9,0.7) (0.1,0.8) (0.1,0.7) (0.6,0.8) (0.6,0.7): 2 of 6 ordered right
    assert metrics["debias/auc"] == pytest.approx(2 / 6)
    # u0 ranks 1(+), 2(-): DCG 1, IDCG 1 + 1/log2(3); u1 ranks 0(-), 4(+): DCG 1/log2(3), IDCG 1
    expected = (1 / (1 + 1 / math.log2(3)) + 1 / math.log2(3)) / 2
    assert metrics["debias/ndcg_at_2"] == pytest.approx(expected)


@pytest.fixture(scope="module")
def small_world_split():
    data = load_synthetic(WorldConfig(n_users=150, n_items=120, n_topics=6, slate_size=5, mean_sessions=6), seed=4)
    return data, split_dataset(data, SplitConfig(), seed=4)


def test_baselines_and_oracles_on_the_world(small_world_split) -> None:
    data, split = small_world_split
    baselines = build_baselines(split, data, BaselinesConfig(), seed=4)
    assert set(baselines.policies) == {"random", "popularity", "logging", "oracle_relevance", "oracle_uplift"}
    assert "content" in baselines.skipped  # no text features were built here
    evaluation = evaluate_policies([baselines], split, EvaluationConfig(), data.world)
    cp = {name: m["causal/cp_at_10"] for name, m in evaluation.test.items()}
    assert cp["oracle_uplift"] == max(cp.values())  # nothing beats ranking by the true effect
    value = {name: m["policy/true_incremental_value"] for name, m in evaluation.test.items()}
    assert value["oracle_uplift"] == max(value.values())
    # the harness's exact value equals the world's own computation for the same scores
    users = np.arange(split.n_users)
    exact = data.world.policy_value_of_scores(baselines.policies["popularity"].scores(users), users)
    assert evaluation.test["popularity"]["policy/true_value"] == pytest.approx(exact.value)
    summary = evaluation.summary(data.meta, EvaluationConfig())
    assert summary["model/name"] not in ("oracle_uplift", "oracle_relevance")
    assert summary["causal/cp_at_10_oracle"] == cp["oracle_uplift"] and summary["causal/identifiable"] is True
    assert summary["ranking/recall_at_20"] == evaluation.test[summary["model/name"]]["ranking/recall_at_20"]


def test_random_policy_is_reproducible_per_user_whatever_the_block() -> None:
    policy = RandomPolicy(n_items=7, seed=3)
    both = policy.scores(np.array([4, 9]))
    np.testing.assert_array_equal(both[1], policy.scores(np.array([9]))[0])


def test_blocks_do_not_change_results(small_world_split) -> None:
    data, split = small_world_split
    policy = build_baselines(split, data, BaselinesConfig(policies=["logging"]), seed=0).policies["logging"]
    one = evaluate_policy(policy, split, EvaluationConfig(user_batch=10_000), "test", data.world)
    many = evaluate_policy(policy, split, EvaluationConfig(user_batch=7), "test", data.world)
    assert one.keys() == many.keys()
    for key in one:
        assert one[key] == pytest.approx(many[key])


def test_blocks_default_to_a_byte_budget_and_a_set_user_batch_wins() -> None:
    assert block_users(EvaluationConfig(), 2000) == 524 and 524 * 2000 * 8 <= BLOCK_BYTES < 525 * 2000 * 8
    assert block_users(EvaluationConfig(), 10 * BLOCK_BYTES) == 1  # a huge catalogue: one user a block
    assert block_users(EvaluationConfig(user_batch=7), 2000) == 7


def test_unsupported_baselines_are_skipped_with_a_reason(small_world_split) -> None:
    data, split = small_world_split
    no_truth = type(data)(data.interactions, data.items, data.users, data.meta)
    built = build_baselines(split, no_truth, BaselinesConfig(), seed=0)
    assert set(built.skipped) == {"logging", "content", "oracle_relevance", "oracle_uplift"}
    assert "ground truth" in built.skipped["oracle_uplift"]
