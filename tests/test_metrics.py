"""Metrics: values computed by hand on tiny inputs, brute-force cross-checks, and invalid inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recause.models.metrics import (
    ipw_pseudo_outcomes,
    qini_area,
    qini_ipw,
    qini_weights,
    rank_positions,
    RankingAccumulator,
    auc,
    causal_precision,
    coverage,
    exposure_counts,
    gini,
    grouped_ndcg,
    mask_seen,
    ranking_metrics,
    top_k_items,
)

# --- top-k ---------------------------------------------------------------------------------------


def test_top_k_items_orders_by_score_and_breaks_ties_by_lower_index() -> None:
    scores = np.array([[1.0, 2.0, 2.0, 0.0, 2.0], [0.1, 0.5, 0.3, 0.9, 0.7]])
    # Row 0: three items tie at 2.0 across the k=2 boundary -> the two lowest indices, 1 and 2.
    np.testing.assert_array_equal(top_k_items(scores, 2), [[1, 2], [3, 4]])
    np.testing.assert_array_equal(top_k_items(scores, 4), [[1, 2, 4, 0], [3, 4, 1, 2]])
    np.testing.assert_array_equal(top_k_items(scores, 5)[0], [1, 2, 4, 0, 3])


def test_top_k_items_matches_a_stable_full_sort_with_many_ties() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(200, 30)).astype(float)  # heavy ties
    for k in (1, 3, 10, 30):
        expected = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        np.testing.assert_array_equal(top_k_items(scores, k), expected)


def test_mask_seen_excludes_pairs_without_mutating_the_input() -> None:
    scores = np.array([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    before = scores.copy()
    masked = mask_seen(scores, np.array([0, 1, 1]), np.array([0, 2, 1]))
    np.testing.assert_array_equal(scores, before)
    assert masked[0, 0] == masked[1, 2] == masked[1, 1] == -np.inf
    np.testing.assert_array_equal(top_k_items(masked, 1), [[1], [0]])
    # k beyond the unmasked items: the -inf items come last, lower index first.
    np.testing.assert_array_equal(top_k_items(masked, 3), [[1, 2, 0], [0, 1, 2]])


# --- ranking metrics -----------------------------------------------------------------------------

# 3 users x 5 items. User 0: targets {1, 3} ((0, 3) listed twice: counts once), top = [3, 0, 1].
# User 1: target {4}, top = [0, 2, 4]. User 2: no target -> left out of every mean.
TOP = np.array([[3, 0, 1], [0, 2, 4], [1, 2, 3]])
T_ROWS = np.array([0, 0, 0, 1])
T_COLS = np.array([1, 3, 3, 4])
L2, L3, L4 = math.log2(2), math.log2(3), math.log2(4)


def test_ranking_metrics_by_hand() -> None:
    m = ranking_metrics(TOP, T_ROWS, T_COLS, ks=(1, 3))
    assert m["n_users_evaluated"] == 2
    # @1: user 0 hits item 3 (recall 1/2, precision 1, hit 1, mrr 1, ndcg (1/L2)/(1/L2) = 1);
    #     user 1 misses (all 0).
    assert m["recall_at_1"] == pytest.approx((1 / 2 + 0) / 2)
    assert m["precision_at_1"] == pytest.approx((1 + 0) / 2)
    assert m["hit_at_1"] == pytest.approx((1 + 0) / 2)
    assert m["mrr_at_1"] == pytest.approx((1 + 0) / 2)
    assert m["ndcg_at_1"] == pytest.approx((1 + 0) / 2)
    # @3: user 0 hits at ranks 1, 3: recall 2/2, precision 2/3, mrr 1,
    #     ndcg = (1/L2 + 1/L4) / (1/L2 + 1/L3)  (IDCG over min(|T|=2, 3) = 2 ranks).
    #     user 1 hits at rank 3: recall 1, precision 1/3, mrr 1/3, ndcg = (1/L4) / (1/L2) = 1/2.
    ndcg_u0 = (1 / L2 + 1 / L4) / (1 / L2 + 1 / L3)
    assert m["recall_at_3"] == pytest.approx(1.0)
    assert m["precision_at_3"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert m["hit_at_3"] == pytest.approx(1.0)
    assert m["mrr_at_3"] == pytest.approx((1 + 1 / 3) / 2)
    assert m["ndcg_at_3"] == pytest.approx((ndcg_u0 + 1 / 2) / 2)


def test_users_without_targets_do_not_change_the_means() -> None:
    only_with_targets = ranking_metrics(TOP[:2], T_ROWS, T_COLS, ks=(1, 3))
    assert ranking_metrics(TOP, T_ROWS, T_COLS, ks=(1, 3)) == pytest.approx(only_with_targets)


def _brute_force_user(top_row: np.ndarray, targets: set[int], k: int) -> dict[str, float]:
    hits = [int(i in targets) for i in top_row[:k]]
    first = next((r for r, h in enumerate(hits, start=1) if h), None)
    dcg = sum(h / math.log2(r + 1) for r, h in enumerate(hits, start=1))
    idcg = sum(1 / math.log2(r + 1) for r in range(1, min(len(targets), k) + 1))
    return {
        "recall": sum(hits) / len(targets),
        "precision": sum(hits) / k,
        "hit": float(any(hits)),
        "mrr": 1 / first if first else 0.0,
        "ndcg": dcg / idcg,
    }


def _random_ranking_case(seed: int, n_users: int = 60, n_items: int = 25, k: int = 8):
    rng = np.random.default_rng(seed)
    top = np.argsort(rng.random((n_users, n_items)), axis=1)[:, :k]
    n_t = 150
    rows, cols = rng.integers(0, n_users, n_t), rng.integers(0, n_items, n_t)
    return top, rows, cols


def test_ranking_metrics_match_a_per_user_loop_on_random_data() -> None:
    top, rows, cols = _random_ranking_case(1)
    ks = (1, 5, 8)
    got = ranking_metrics(top, rows, cols, ks)
    targets = {u: set(cols[rows == u].tolist()) for u in np.unique(rows).tolist()}
    assert got["n_users_evaluated"] == len(targets)
    for k in ks:
        per_user = [_brute_force_user(top[u], t, k) for u, t in targets.items()]
        for name in ("recall", "precision", "hit", "mrr", "ndcg"):
            assert got[f"{name}_at_{k}"] == pytest.approx(np.mean([p[name] for p in per_user])), (name, k)


def test_block_accumulation_equals_one_shot() -> None:
    top, rows, cols = _random_ranking_case(2)
    ks = (3, 8)
    acc = RankingAccumulator(ks)
    for start, stop in ((0, 17), (17, 40), (40, 60)):
        in_block = (rows >= start) & (rows < stop)
        acc.add(top[start:stop], rows[in_block] - start, cols[in_block])
    assert acc.result() == pytest.approx(ranking_metrics(top, rows, cols, ks))


# --- AUC -----------------------------------------------------------------------------------------


def test_auc_by_hand_with_ties() -> None:
    assert auc(np.array([0.5, 0.5]), np.array([0, 1])) == 0.5  # one tied pair counts 1/2
    assert auc(np.array([0.1, 0.9]), np.array([0, 1])) == 1.0
    assert auc(np.array([0.9, 0.1]), np.array([0, 1])) == 0.0
    # Positives {0.4, 0.8}, negatives {0.4, 0.2, 0.8}: pairs (pos > neg) + 1/2 ties:
    # 0.4: >0.2 (1), =0.4 (1/2), <0.8 (0) -> 1.5;  0.8: >0.4, >0.2 (2), =0.8 (1/2) -> 2.5;  4 / 6.
    scores = np.array([0.4, 0.8, 0.4, 0.2, 0.8])
    assert auc(scores, np.array([1, 1, 0, 0, 0])) == pytest.approx(4 / 6)
    assert auc(scores, np.array([True, True, False, False, False])) == pytest.approx(4 / 6)


def test_auc_equals_the_pairwise_definition_on_random_data() -> None:
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 10, 300) / 10.0  # many ties
    labels = (rng.random(300) < 0.3).astype(int)
    pos, neg = scores[labels == 1], scores[labels == 0]
    diff = pos[:, None] - neg[None, :]
    expected = ((diff > 0) + 0.5 * (diff == 0)).mean()
    assert auc(scores, labels) == pytest.approx(expected)


def test_auc_agrees_with_sklearn() -> None:
    sk_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(4)
    scores = np.round(rng.normal(size=1000), 1)
    labels = (rng.random(1000) < 0.2).astype(int)
    assert auc(scores, labels) == pytest.approx(sk_metrics.roc_auc_score(labels, scores))


# --- grouped NDCG --------------------------------------------------------------------------------


def test_grouped_ndcg_by_hand() -> None:
    # Group 7: scores (.9, .1, .5), relevance (0, 1, 1) -> ranked gains 0, 1, 1; k=2:
    #   DCG = 0/L2 + 1/L3, IDCG = 1/L2 + 1/L3.  Group 3: no positive gain -> skipped.
    # Group 5: one item with gain 1 -> NDCG 1.
    scores = np.array([0.9, 0.2, 0.1, 0.5, 0.3])
    relevance = np.array([0.0, 0.0, 1.0, 1.0, 1.0])
    groups = np.array([7, 3, 7, 7, 5])
    expected = ((1 / L3) / (1 / L2 + 1 / L3) + 1.0) / 2
    assert grouped_ndcg(scores, relevance, groups, k=2) == pytest.approx(expected)


def test_grouped_ndcg_graded_gains_and_stable_ties() -> None:
    # Graded: ranked gains (1, 3), ideal (3, 1): (1/L2 + 3/L3) / (3/L2 + 1/L3).
    got = grouped_ndcg(np.array([0.9, 0.1]), np.array([1.0, 3.0]), np.array([0, 0]), k=2)
    assert got == pytest.approx((1 / L2 + 3 / L3) / (3 / L2 + 1 / L3))
    # Tied scores keep the given order: the first item is ranked first.
    same = np.array([0.5, 0.5])
    assert grouped_ndcg(same, np.array([0.0, 1.0]), np.array([0, 0]), k=1) == 0.0
    assert grouped_ndcg(same, np.array([1.0, 0.0]), np.array([0, 0]), k=1) == 1.0


def test_grouped_ndcg_matches_a_per_group_loop_on_random_data() -> None:
    rng = np.random.default_rng(5)
    n, k = 400, 5
    scores = rng.integers(0, 5, n).astype(float)  # ties, broken by input order
    relevance = rng.integers(0, 3, n) * (rng.random(n) < 0.4)  # graded, many zeros
    groups = rng.integers(0, 40, n)
    per_group = []
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        ranked = sorted(idx, key=lambda i: -scores[i])  # Python's sort is stable
        ideal = sorted(relevance[idx], reverse=True)
        dcg = sum(relevance[i] / math.log2(r + 2) for r, i in enumerate(ranked[:k]))
        idcg = sum(gain / math.log2(r + 2) for r, gain in enumerate(ideal[:k]))
        if idcg > 0:
            per_group.append(dcg / idcg)
    assert grouped_ndcg(scores, relevance, groups, k) == pytest.approx(np.mean(per_group))


# --- causal precision and beyond-accuracy --------------------------------------------------------


def test_causal_precision_by_hand() -> None:
    # User means: (0.1 + 0.3)/2 = 0.2 and (-0.2 + 0.0)/2 = -0.1 -> CP@2 = 0.05.
    assert causal_precision(np.array([[0.1, 0.3], [-0.2, 0.0]])) == pytest.approx(0.05)


def test_gini_and_coverage_by_hand() -> None:
    assert gini(np.array([2, 2, 2, 2])) == pytest.approx(0.0)
    # Sorted (0, 0, 0, 4): (2*4 - 4 - 1) * 4 / (4 * 4) = 12/16.
    assert gini(np.array([4, 0, 0, 0])) == pytest.approx(0.75)
    # Sorted (1, 3): ((2-3)*1 + (4-3)*3) / (2*4) = 2/8.
    assert gini(np.array([3, 1])) == pytest.approx(0.25)
    top = np.array([[0, 1], [1, 3]])
    np.testing.assert_array_equal(exposure_counts(top, 5), [1, 2, 0, 1, 0])
    assert coverage(top, 5) == pytest.approx(3 / 5)  # items {0, 1, 3} of 5


# --- invalid inputs ------------------------------------------------------------------------------

S = np.zeros((2, 3))
NAN = np.array([0.1, np.nan])

INVALID = [
    pytest.param(lambda: top_k_items(np.zeros(3), 1), "scores must be 2-D", id="top_k-1d"),
    pytest.param(lambda: top_k_items(S, 0), r"k must be in \[1, n_items=3\], got 0", id="top_k-k0"),
    pytest.param(lambda: top_k_items(S, 4), r"k must be in \[1, n_items=3\], got 4", id="top_k-k-big"),
    pytest.param(
        lambda: top_k_items(np.array([[0.0, np.nan]]), 1),
        r"scores contains NaN at index \[0, 1\]",
        id="top_k-nan",
    ),
    pytest.param(lambda: mask_seen(S, np.array([0]), np.array([0, 1])), "same length, got 1 and 2", id="mask-len"),
    pytest.param(
        lambda: mask_seen(S, np.array([2]), np.array([0])),
        "rows must be < n_users=2, found 2",
        id="mask-row",
    ),
    pytest.param(
        lambda: mask_seen(S, np.array([0]), np.array([3])),
        "cols must be < n_items=3, found 3",
        id="mask-col",
    ),
    pytest.param(lambda: mask_seen(S, np.array([-1]), np.array([0])), "rows must be non-negative", id="mask-neg"),
    pytest.param(lambda: RankingAccumulator(()), "ks must be a non-empty", id="acc-no-ks"),
    pytest.param(lambda: RankingAccumulator((0, 5)), "cut-offs >= 1", id="acc-k0"),
    pytest.param(
        lambda: ranking_metrics(TOP, T_ROWS, T_COLS, (5,)),
        "3 columns, fewer than max\\(ks\\)=5",
        id="rm-narrow",
    ),
    pytest.param(lambda: ranking_metrics(TOP, T_ROWS, T_COLS[:2], (1,)), "same length, got 4 and 2", id="rm-len"),
    pytest.param(
        lambda: ranking_metrics(TOP, np.array([3]), np.array([0]), (1,)),
        "target_rows must be < n_block=3",
        id="rm-row",
    ),
    pytest.param(
        lambda: ranking_metrics(TOP * 1.0, T_ROWS, T_COLS, (1,)),
        "top must hold integer indices",
        id="rm-float",
    ),
    pytest.param(
        lambda: ranking_metrics(np.array([[1, 1]]), np.array([0]), np.array([1]), (1,)),
        "repeats an item",
        id="rm-dup",
    ),
    pytest.param(
        lambda: ranking_metrics(TOP, np.array([], int), np.array([], int), (1,)),
        "no user with a held-out",
        id="rm-empty",
    ),
    pytest.param(lambda: auc(np.zeros(3), np.array([0, 1])), r"same length, got \(3,\) and \(2,\)", id="auc-shape"),
    pytest.param(lambda: auc(NAN, np.array([0, 1])), r"scores contains NaN at index \[1\]", id="auc-nan"),
    pytest.param(lambda: auc(np.zeros(2), NAN), "labels contains NaN", id="auc-label-nan"),
    pytest.param(lambda: auc(np.zeros(2), np.array([0, 2])), r"labels must be 0 or 1, found \[2\]", id="auc-label-2"),
    pytest.param(
        lambda: auc(np.zeros(2), np.array([1, 1])),
        "both classes, got 2 positives and 0 negatives",
        id="auc-one-class",
    ),
    pytest.param(lambda: grouped_ndcg(np.zeros(2), np.zeros(3), np.zeros(2, int), 1), "same length", id="gn-shape"),
    pytest.param(
        lambda: grouped_ndcg(np.zeros(2), np.ones(2), np.zeros(2, int), 0),
        "k must be >= 1, got 0",
        id="gn-k",
    ),
    pytest.param(
        lambda: grouped_ndcg(np.zeros(2), np.array([1.0, -1.0]), np.zeros(2, int), 1),
        "relevance must be >= 0",
        id="gn-neg",
    ),
    pytest.param(
        lambda: grouped_ndcg(np.zeros(2), np.zeros(2), np.zeros(2, int), 1),
        "no group has an item with positive",
        id="gn-no-pos",
    ),
    pytest.param(lambda: causal_precision(np.zeros(3)), r"2-D \(n_users, k\) array, got shape \(3,\)", id="cp-1d"),
    pytest.param(lambda: gini(np.array([1, -1])), "counts must be >= 0, found -1", id="gini-neg"),
    pytest.param(lambda: gini(np.zeros(3)), "all zero", id="gini-zero"),
    pytest.param(lambda: coverage(np.array([[0, 5]]), 5), "item 5, outside the catalogue of n_items=5", id="cov-range"),
]


@pytest.mark.parametrize("call, match", INVALID)
def test_invalid_inputs_raise_precise_errors(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------------------------------------- Qini (uplift criterion)
def test_qini_area_by_hand() -> None:
    # τ = (0.3, -0.1, 0, 0.2). The oracle ranks items 0, 3, 2, 1: cumulative uplift 0.3, 0.5, 0.5, 0.4,
    # mean 0.425; random targeting's mean is τ̄ (I+1)/2 = 0.1 × 2.5 = 0.25; area 0.175.
    tau = np.array([[0.3, -0.1, 0.0, 0.2]])
    assert qini_area(tau, tau) == pytest.approx(0.175)
    assert qini_area(-tau, tau) == pytest.approx(-0.175)  # the worst ranking mirrors the best
    assert list(qini_weights(np.array([1, 2, 3, 4]), 4)) == [0.375, 0.125, -0.125, -0.375]
    # to depth 2: (G(1) + G(2)) / 2 = 0.4 minus τ̄ (D+1)/2 = 0.15: 0.25
    assert qini_area(tau, tau, depth=2) == pytest.approx(0.25)


def test_qini_ipw_by_hand() -> None:
    # a positive exposed pair at rank 1 (g = 0.5: ψ = 2) and a positive unexposed one at rank 3
    # (g = 0.2: ψ = -1/0.8 = -1.25) among 4 items: 2 × 0.375 + (-1.25) × (-0.125) = 0.90625
    psi = ipw_pseudo_outcomes(np.array([True, False]), np.array([0.5, 0.2]))
    assert list(psi) == [2.0, -1.25]
    assert qini_ipw(np.array([1, 3]), psi, 4) == pytest.approx(0.90625)
    with pytest.raises(ValueError, match="propensities"):
        ipw_pseudo_outcomes(np.array([True]), np.array([1.0]))


def test_qini_ipw_is_unbiased_for_the_true_area() -> None:
    rng = np.random.default_rng(0)
    n_users, n_items = 400, 30
    p0 = rng.uniform(0.05, 0.2, (n_users, n_items))
    tau = rng.uniform(-0.05, 0.3, (n_users, n_items))
    g = rng.uniform(0.2, 0.8, (n_users, n_items))
    scores = tau + rng.normal(0, 0.1, tau.shape)
    ranks = rank_positions(scores)
    estimates = []
    for _ in range(200):
        exposed = rng.random(tau.shape) < g
        y = rng.random(tau.shape) < np.where(exposed, p0 + tau, p0)
        psi = ipw_pseudo_outcomes(exposed[y], g[y])
        estimates.append(qini_ipw(ranks[y], psi, n_items))
    truth = qini_area(scores, tau)
    assert np.mean(estimates) == pytest.approx(truth, rel=0.05)
