"""Off-policy estimators pinned to hand-computed values; input validation; seeded bootstrap; tuning; lifts."""

from __future__ import annotations

from dataclasses import astuple

import numpy as np
import pytest

from recause.models.ope.estimators import (
    DirectMethod,
    DoublyRobust,
    DoublyRobustWithShrinkage,
    InverseProbabilityWeighting,
    SelfNormalizedDoublyRobust,
    SelfNormalizedInverseProbabilityWeighting,
    SwitchDoublyRobust,
    bootstrap_values,
    check_inputs,
)
from recause.models.ope.tuning import DoublyRobustTuning, DoublyRobustWithShrinkageTuning, SwitchDoublyRobustTuning
from recause.models.ope.comparison import compare_policies, estimate_all, estimate_lift

# Four rounds, three actions, one position.
#   round  action  reward  pscore  π_e(·|x)            q̂(x, ·)
#   0      0       1       0.5     [0.5, 0.25, 0.25]   [0.4, 0.2, 0.6]
#   1      1       0       0.25    [0.2, 0.6, 0.2]     [0.1, 0.3, 0.5]
#   2      2       1       0.25    [0.0, 0.5, 0.5]     [0.2, 0.4, 0.8]
#   3      0       0       0.5     [1.0, 0.0, 0.0]     [0.5, 0.5, 0.5]
# w = π_e(a_i)/pscore = [0.5/0.5, 0.6/0.25, 0.5/0.25, 1/0.5] = [1, 2.4, 2, 2]
# DM terms Σ_a π_e q̂ = [0.2+0.05+0.15, 0.02+0.18+0.1, 0+0.2+0.4, 0.5] = [0.4, 0.3, 0.6, 0.5]
# q̂ factual = [0.4, 0.3, 0.8, 0.5];  r − q̂ = [0.6, −0.3, 0.2, −0.5];  w(r − q̂) = [0.6, −0.72, 0.4, −1.0]
TINY = dict(
    reward=np.array([1.0, 0.0, 1.0, 0.0]),
    action=np.array([0, 1, 2, 0]),
    pscore=np.array([0.5, 0.25, 0.25, 0.5]),
    action_dist=np.array([[0.5, 0.25, 0.25], [0.2, 0.6, 0.2], [0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])[:, :, None],
    estimated_rewards_by_reg_model=np.array([[0.4, 0.2, 0.6], [0.1, 0.3, 0.5], [0.2, 0.4, 0.8], [0.5, 0.5, 0.5]])[:, :, None],
)

BY_HAND = [
    (DirectMethod(), (0.4 + 0.3 + 0.6 + 0.5) / 4),  # 0.45
    (InverseProbabilityWeighting(), (1 + 0 + 2 + 0) / 4),  # mean(w r) = 0.75
    (InverseProbabilityWeighting(lambda_=1.5), (1 + 0 + 1.5 + 0) / 4),  # min(w, 1.5) r = [1, 0, 1.5, 0]
    (SelfNormalizedInverseProbabilityWeighting(), 3 / 7.4),  # Σ w r / Σ w = 3 / (1 + 2.4 + 2 + 2)
    (DoublyRobust(), 0.45 + (0.6 - 0.72 + 0.4 - 1.0) / 4),  # 0.45 − 0.18 = 0.27
    (DoublyRobust(lambda_=1.5), 0.45 + (0.6 - 0.45 + 0.3 - 0.75) / 4),  # ŵ = [1, 1.5, 1.5, 1.5]: 0.375
    (SelfNormalizedDoublyRobust(), 0.45 - 0.72 / 7.4),  # 0.45 + Σ w(r − q̂) / Σ w
    (SwitchDoublyRobust(lambda_=2.0), 0.45 + (0.6 + 0.0 + 0.4 - 1.0) / 4),  # w = 2.4 > 2 switched off: 0.45
    (SwitchDoublyRobust(lambda_=0.5), 0.45),  # every w > 0.5: DM
    # ŵ = 4w / (w² + 4) = [4/5, 9.6/9.76, 8/8, 8/8]; Σ ŵ(r − q̂) = 0.48 − 0.3·9.6/9.76 + 0.2 − 0.5
    (DoublyRobustWithShrinkage(lambda_=4.0), 0.45 + (0.48 - 0.3 * 9.6 / 9.76 + 0.2 - 0.5) / 4),
    (DoublyRobustWithShrinkage(lambda_=0.0), 0.45),  # λ = 0: DM
    (DoublyRobustWithShrinkage(), 0.27),  # λ = inf: DR
]


@pytest.mark.parametrize(("estimator", "expected"), BY_HAND, ids=lambda x: repr(x) if not isinstance(x, float) else "")
def test_estimators_match_the_values_computed_by_hand(estimator, expected: float) -> None:
    assert estimator.estimate_policy_value(**TINY) == pytest.approx(expected, abs=1e-12)


def test_position_wise_slates_use_each_rounds_own_position() -> None:
    # Three rounds, two actions, two positions; round i shown at position k_i.
    #   i  k  a  r  pscore  π_e(·|k=0)   π_e(·|k=1)    q̂(·, k_i)
    #   0  0  0  1  0.5     [0.7, 0.3]   [0.4, 0.6]    [0.2, 0.6]
    #   1  1  1  0  0.5     [0.5, 0.5]   [0.1, 0.9]    [0.3, 0.1]
    #   2  1  0  1  0.25    [1.0, 0.0]   [0.25, 0.75]  [0.4, 0.8]
    # w = [0.7/0.5, 0.9/0.5, 0.25/0.25] = [1.4, 1.8, 1];  IPW = (1.4 + 0 + 1) / 3 = 0.8
    # DM = (0.7·0.2 + 0.3·0.6, 0.1·0.3 + 0.9·0.1, 0.25·0.4 + 0.75·0.8) / 3 = (0.32 + 0.12 + 0.7) / 3 = 0.38
    # DR = 0.38 + (1.4·0.8 + 1.8·(−0.1) + 1·0.6) / 3 = 0.38 + 1.54 / 3
    dist = np.zeros((3, 2, 2))
    dist[0, :, 0], dist[0, :, 1] = [0.7, 0.3], [0.4, 0.6]
    dist[1, :, 0], dist[1, :, 1] = [0.5, 0.5], [0.1, 0.9]
    dist[2, :, 0], dist[2, :, 1] = [1.0, 0.0], [0.25, 0.75]
    q = np.full((3, 2, 2), 0.9)  # the entries at positions the round was not shown at must not matter
    q[0, :, 0], q[1, :, 1], q[2, :, 1] = [0.2, 0.6], [0.3, 0.1], [0.4, 0.8]
    slate = dict(reward=np.array([1.0, 0.0, 1.0]), action=np.array([0, 1, 0]), position=np.array([0, 1, 1]),
                 pscore=np.array([0.5, 0.5, 0.25]), action_dist=dist, estimated_rewards_by_reg_model=q)
    assert InverseProbabilityWeighting().estimate_policy_value(**slate) == pytest.approx(0.8)
    assert DirectMethod().estimate_policy_value(**slate) == pytest.approx(0.38)
    assert DoublyRobust().estimate_policy_value(**slate) == pytest.approx(0.38 + 1.54 / 3)


def _with(**changes: object) -> dict:
    return {**TINY, **changes}


BAD_INPUTS = [
    ("zero propensity", _with(pscore=np.array([0.5, 0.0, 0.25, 0.5])), r"pscore must lie in \(0, 1\].*found 0"),
    ("negative propensity", _with(pscore=np.array([0.5, -0.1, 0.25, 0.5])), r"pscore must lie in \(0, 1\]"),
    ("propensity above one", _with(pscore=np.array([0.5, 1.5, 0.25, 0.5])), r"pscore must lie in \(0, 1\]"),
    ("NaN propensity", _with(pscore=np.array([0.5, np.nan, 0.25, 0.5])), r"pscore must be finite.*index \(1,\)"),
    ("propensity length", _with(pscore=np.array([0.5, 0.5])), r"pscore must have shape \(4,\)"),
    ("NaN reward", _with(reward=np.array([1.0, np.nan, 1.0, 0.0])), r"reward must be finite"),
    ("reward 2-D", _with(reward=np.ones((4, 1))), r"reward must be a 1-D array"),
    ("no rounds", dict(reward=np.array([]), action=np.array([], dtype=int), pscore=np.array([]),
                       action_dist=np.zeros((0, 3, 1)), estimated_rewards_by_reg_model=np.zeros((0, 3, 1))),
     r"reward is empty"),
    ("dist not summing to 1", _with(action_dist=TINY["action_dist"] * 0.9), r"action_dist\[i, :, k\] must sum to 1.*i=0, k=0"),
    ("negative probability", _with(action_dist=np.array([[1.5, -0.5, 0.0]] * 4)[:, :, None]),
     r"action_dist must be non-negative, found negative values"),
    ("NaN probability", _with(action_dist=np.where(TINY["action_dist"] == 1.0, np.nan, TINY["action_dist"])),
     r"action_dist must be finite"),
    ("dist 2-D", _with(action_dist=TINY["action_dist"][:, :, 0]), r"action_dist must be a 3-D array"),
    ("dist rows", _with(action_dist=TINY["action_dist"][:3]), r"action_dist must have n_rounds=4 rows"),
    ("action out of range", _with(action=np.array([0, 1, 3, 0])), r"action must lie in \[0, n_actions=3\)"),
    ("negative action", _with(action=np.array([0, -1, 2, 0])), r"action must lie in \[0, n_actions=3\)"),
    ("float action", _with(action=np.array([0.0, 1.0, 2.0, 0.0])), r"action must hold integers"),
    ("action length", _with(action=np.array([0, 1])), r"action must have shape \(4,\)"),
    ("position out of range", _with(position=np.array([0, 1, 0, 0])), r"position must lie in \[0, len_list=1\)"),
    ("position missing for slates", _with(action_dist=np.repeat(TINY["action_dist"], 2, axis=2),
                                          estimated_rewards_by_reg_model=np.zeros((4, 3, 2))),
     r"position is required when action_dist has len_list=2"),
    ("reward model shape", _with(estimated_rewards_by_reg_model=np.zeros((4, 2, 1))),
     r"estimated_rewards_by_reg_model must have the shape of action_dist \(4, 3, 1\)"),
    ("NaN reward model", _with(estimated_rewards_by_reg_model=np.full((4, 3, 1), np.nan)),
     r"estimated_rewards_by_reg_model must be finite"),
]


@pytest.mark.parametrize(("case", "inputs", "message"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_inputs_raise_errors_that_name_the_argument(case: str, inputs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DoublyRobust().estimate_policy_value(**inputs)


@pytest.mark.parametrize(
    ("estimator", "missing", "message"),
    [
        (InverseProbabilityWeighting(), "pscore", r"pscore is required by ipw"),
        (DoublyRobust(), "estimated_rewards_by_reg_model", r"estimated_rewards_by_reg_model is required by dr"),
        (SwitchDoublyRobustTuning(), "estimated_rewards_by_reg_model", r"required by switch-dr-tuned"),
    ],
)
def test_missing_inputs_an_estimator_needs_are_named(estimator, missing: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        estimator.estimate_policy_value(**_with(**{missing: None}))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: InverseProbabilityWeighting(lambda_=-1.0), r"lambda_ must be >= 0"),
        (lambda: SwitchDoublyRobust(lambda_=float("nan")), r"lambda_ must be a number >= 0"),
        (lambda: DoublyRobustWithShrinkage(lambda_="big"), r"lambda_ must be a number >= 0"),
        (lambda: SwitchDoublyRobustTuning(lambdas=()), r"lambdas must hold at least one"),
        (lambda: SwitchDoublyRobustTuning(lambdas=(1.0, -2.0)), r"lambda_ must be >= 0"),
        (lambda: DoublyRobustWithShrinkageTuning(tuning_method="cv"), r"tuning_method must be 'slope' or 'mse'"),
        (lambda: SwitchDoublyRobustTuning(delta=1.5), r"delta must lie in \(0, 1\)"),
    ],
)
def test_bad_hyperparameters_are_rejected_at_construction(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_inputs_are_not_mutated() -> None:
    copies = {k: v.copy() for k, v in TINY.items()}
    estimate_all([DirectMethod(), DoublyRobust(), SelfNormalizedDoublyRobust()], n_bootstrap_samples=20, **TINY)
    for key, value in TINY.items():
        np.testing.assert_array_equal(value, copies[key])


# ------------------------------------------------------------------------------------------ bootstrap
def _logged(n: int = 300, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    n_actions = 4
    pscore_table = rng.dirichlet(np.ones(n_actions) * 3, size=n)  # behaviour policy per round
    action = np.array([rng.choice(n_actions, p=p) for p in pscore_table])
    dist = rng.dirichlet(np.ones(n_actions), size=n)[:, :, None]
    q = rng.uniform(0.1, 0.9, size=(n, n_actions, 1))
    reward = (rng.random(n) < q[np.arange(n), action, 0]).astype(float)
    return dict(reward=reward, action=action, pscore=pscore_table[np.arange(n), action], action_dist=dist,
                estimated_rewards_by_reg_model=q)


def test_bootstrap_is_seeded_and_matches_a_slow_resampling_loop() -> None:
    data = _logged()
    a = DoublyRobust().estimate_interval(n_bootstrap_samples=200, random_state=7, **data)
    b = DoublyRobust().estimate_interval(n_bootstrap_samples=200, random_state=7, **data)
    c = DoublyRobust().estimate_interval(n_bootstrap_samples=200, random_state=8, **data)
    assert a == b and a != c
    # the reference: obp's loop, one RandomState.choice of the per-round rewards per replicate
    rounds = DoublyRobust().round_terms(check_inputs(**data)).round_rewards()
    rng = np.random.RandomState(7)
    replicates = [rng.choice(rounds, size=rounds.size).mean() for _ in range(200)]
    assert a.value == pytest.approx(rounds.mean(), abs=1e-15)
    assert a.mean == pytest.approx(np.mean(replicates), abs=1e-14)
    assert (a.low, a.high) == pytest.approx(tuple(np.percentile(replicates, [2.5, 97.5])), abs=1e-14)
    assert a.low < a.value < a.high


def test_self_normalised_bootstrap_renormalises_every_resample() -> None:
    data = _logged(seed=1)
    est = SelfNormalizedInverseProbabilityWeighting().estimate_interval(n_bootstrap_samples=100, random_state=3, **data)
    w = data["action_dist"][np.arange(300), data["action"], 0] / data["pscore"]
    rng = np.random.RandomState(3)
    replicates = []
    for _ in range(100):
        idx = rng.randint(0, 300, 300)
        replicates.append((w[idx] * data["reward"][idx]).sum() / w[idx].sum())
    assert est.value == pytest.approx((w * data["reward"]).sum() / w.sum())
    assert (est.low, est.high) == pytest.approx(tuple(np.percentile(replicates, [2.5, 97.5])), abs=1e-14)


def test_estimate_all_shares_resamples_and_agrees_with_each_estimator_alone() -> None:
    data = _logged(seed=2)
    estimators = [DirectMethod(), InverseProbabilityWeighting(), DoublyRobust(), SelfNormalizedDoublyRobust()]
    together = estimate_all(estimators, n_bootstrap_samples=150, random_state=5, **data)
    for estimator in estimators:
        alone = estimator.estimate_interval(n_bootstrap_samples=150, random_state=5, **data)
        # the same resamples: equal up to the summation order of the (resamples × rounds) product,
        # which BLAS may block differently for one estimator's columns than for all four's
        assert astuple(together[estimator.name]) == pytest.approx(astuple(alone), rel=1e-12, abs=1e-15)
    with pytest.raises(ValueError, match="repeated names"):
        estimate_all([DoublyRobust(), DoublyRobust(lambda_=2.0)], **data)
    labelled = estimate_all({"dr": DoublyRobust(), "dr-clip2": DoublyRobust(lambda_=2.0)}, n_bootstrap_samples=10, **data)
    assert set(labelled) == {"dr", "dr-clip2"}


def test_paired_lift_is_the_percentile_of_paired_differences() -> None:
    data = _logged(seed=3)
    control = data.pop("action_dist")
    treatment = np.roll(control, 1, axis=1)
    lift = estimate_lift(DoublyRobust(), action_dist=treatment, control_action_dist=control,
                         n_bootstrap_samples=300, random_state=11, **data)
    v_t = DoublyRobust().estimate_policy_value(action_dist=treatment, **data)
    v_c = DoublyRobust().estimate_policy_value(action_dist=control, **data)
    assert lift.difference.value == pytest.approx(v_t - v_c)
    assert lift.relative.value == pytest.approx(v_t / v_c - 1)
    t_terms = DoublyRobust().round_terms(check_inputs(action_dist=treatment, **_order(data)))
    c_terms = DoublyRobust().round_terms(check_inputs(action_dist=control, **_order(data)))
    reps = bootstrap_values([c_terms, t_terms], 300, 11)
    assert (lift.difference.low, lift.difference.high) == pytest.approx(
        tuple(np.percentile(reps[:, 1] - reps[:, 0], [2.5, 97.5])), abs=1e-14)
    # the same policy against itself: a lift of exactly 0 with a zero-width interval
    same = estimate_lift(DoublyRobust(), action_dist=control, control_action_dist=control, n_bootstrap_samples=50, **data)
    assert same.difference.low == same.difference.high == 0.0


def _order(data: dict) -> dict:
    return {k: data[k] for k in ("reward", "action", "pscore")} | {
        "estimated_rewards_by_reg_model": data["estimated_rewards_by_reg_model"]}


def test_compare_policies_gives_each_policy_a_lift_over_the_control() -> None:
    data = _logged(seed=4)
    control = data.pop("action_dist")
    dists = {"control": control, "shifted": np.roll(control, 1, axis=1), "uniform": np.full_like(control, 0.25)}
    lifts = compare_policies(DoublyRobust(), dists, "control", n_bootstrap_samples=100, **data)
    assert set(lifts) == {"shifted", "uniform"}
    assert lifts["shifted"].control == lifts["uniform"].control
    with pytest.raises(ValueError, match="control 'nope' is not one of"):
        compare_policies(DoublyRobust(), dists, "nope", **data)


# ------------------------------------------------------------------------------------------ tuning
def test_mse_tuning_picks_the_smallest_estimated_mse_computed_by_hand() -> None:
    # Switch-DR on TINY with candidates λ ∈ {inf, 2, 0.5}; w = [1, 2.4, 2, 2], r − q̂ = [0.6, −0.3, 0.2, −0.5].
    # Without the bias bound: MSE(λ) = Var_n(round rewards)/4 + |mean((w − ŵ)(r − q̂))|².
    #   λ = inf: ŵ = w, bias 0; rounds = [0.4+0.6, 0.3−0.72, 0.6+0.4, 0.5−1.0] = [1.0, −0.42, 1.0, −0.5]
    #   λ = 2:   ŵ = [1, 0, 2, 2]: rounds = [1.0, 0.3, 1.0, −0.5]; bias = |2.4·(−0.3)|/4 = 0.18
    #   λ = 0.5: ŵ = 0: rounds = DM terms [0.4, 0.3, 0.6, 0.5]; bias = |−0.72|/4 = 0.18
    def mse(rounds: list[float], bias: float) -> float:
        return float(np.var(rounds)) / 4 + bias**2

    scores = {
        np.inf: mse([1.0, -0.42, 1.0, -0.5], 0.0),
        2.0: mse([1.0, 0.3, 1.0, -0.5], 0.18),
        0.5: mse([0.4, 0.3, 0.6, 0.5], 0.18),
    }
    best = min(scores, key=scores.get)
    assert best == 0.5  # 0.00125 + 0.0324 beats 0.1946 (inf) and 0.0613 + 0.0324 (2)
    tuned = SwitchDoublyRobustTuning(lambdas=(np.inf, 2.0, 0.5), tuning_method="mse", use_bias_upper_bound=False)
    assert tuned.select(check_inputs(**TINY)).lambda_ == best
    assert tuned.estimate_policy_value(**TINY) == pytest.approx(0.45)


def test_slope_keeps_the_unclipped_estimator_when_clipping_changes_nothing() -> None:
    # every candidate λ ≥ max w = 2.4: all estimates equal DR, and SLOPE's gaps are all 0
    tuned = DoublyRobustTuning(lambdas=(3.0, 10.0, np.inf))
    assert tuned.estimate_policy_value(**TINY) == pytest.approx(0.27)
    data = _logged(seed=5)
    for method in ("slope", "mse"):
        chosen = SwitchDoublyRobustTuning(tuning_method=method).select(check_inputs(**data)).lambda_
        assert chosen in SwitchDoublyRobustTuning().lambdas


# ------------------------------------------------------------------------------------------ against ground truth
def test_doubly_robust_interval_covers_the_synthetic_worlds_exact_value() -> None:
    """Smallest useful world: DR with a deliberately crude reward model (the logged mean) still
    covers the exact value of a softmax-by-uplift policy; IPS of the logging policy is the click rate."""
    from recause.models.policies.bandit import softmax_action_dist
    from recause.models.world.scm import SyntheticWorld, WorldConfig

    world = SyntheticWorld.create(WorldConfig(n_users=300, n_items=40, n_topics=5, slate_size=3, mean_sessions=8), seed=11)
    shown = world.simulate_logs().query("exposed")
    user, item = shown["user_id"].to_numpy(), shown["item_id"].to_numpy()
    n, users = len(shown), np.arange(world.n_users)
    reward = shown["outcome"].to_numpy(np.float64)
    per_user = softmax_action_dist(world.uplift(users, np.arange(world.n_items)) * 50.0, 1)[:, :, 0]  # (n_users, n_items)
    truth = world.policy_value_of_distribution(np.repeat(per_user[:, :, None], 3, axis=2), users).value
    logged = dict(reward=reward, action=item, pscore=shown["propensity"].to_numpy(np.float64),
                  estimated_rewards_by_reg_model=np.full((n, world.n_items, 1), reward.mean()))
    dr = DoublyRobust().estimate_interval(action_dist=per_user[user][:, :, None], n_bootstrap_samples=300, **logged)
    assert dr.covers(truth)
    assert abs(dr.value - truth) / truth < 0.15
    on_policy = InverseProbabilityWeighting().estimate_policy_value(
        action_dist=world.logging_policy(users)[user][:, :, None], **logged)
    assert on_policy == pytest.approx(reward.mean())  # w ≡ 1 on the logging policy's own logs
