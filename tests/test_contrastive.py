"""Contrastive evaluation: the compressed form is exact, interventions are what they say, the
critic measures differences, and on a small world the estimates track the truth."""

from __future__ import annotations

import numpy as np
import pytest

from recause.models.critic import two_sample_auc
from recause.models.ope.estimators import DirectMethod, DoublyRobust, InverseProbabilityWeighting, SelfNormalizedDoublyRobust, SelfNormalizedInverseProbabilityWeighting
from recause.models.ope.tuning import SwitchDoublyRobustTuning
from recause.models.world.scm import WorldConfig
from recause.tasks.baselines import BaselinesConfig, build_baselines
from recause.models.policies.stochastic import diversified_scores, penalised_scores, softmax_policy
from recause.tasks.contrast.config import ContrastConfig
from recause.tasks.contrast.estimation import Rounds, compress, fit_reward_model, logged_rounds
from recause.tasks.contrast.interventions import PolicySwap
from recause.tasks.contrast.result import verdict
from recause.tasks.contrast.sources import PolicySources
from recause.tasks.contrast.stage import contrast_interventions
from recause.tasks.data.synthetic import load_synthetic
from recause.tasks.data.split import SplitConfig, split_dataset


def test_two_action_compression_gives_identical_estimates() -> None:
    rng = np.random.default_rng(0)
    n, n_items, n_users = 400, 7, 20
    rounds = Rounds(user=rng.integers(0, n_users, n), item=rng.integers(0, n_items, n), slot=np.zeros(n, np.int64),
                    reward=(rng.random(n) < 0.3).astype(float), pscore=np.full(n, 1 / n_items), n_slots=1, control="random")
    logits = rng.standard_normal((n_users, n_items))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    policy = lambda users, slots: probs[users]  # noqa: E731
    model, context = fit_reward_model(rounds, n_users, np.log1p(np.arange(n_items, dtype=float)), folds=2, seed=0)
    compact = compress({"p": policy}, rounds, model, context)["p"]
    full_q = model.predict(np.arange(n), context)  # (n, n_items, 1)
    full_dist = probs[rounds.user][:, :, None]
    for estimator in (DirectMethod(), InverseProbabilityWeighting(), SelfNormalizedInverseProbabilityWeighting(), DoublyRobust(),
                      SelfNormalizedDoublyRobust(), SwitchDoublyRobustTuning(lambdas=(1.0, 5.0, np.inf))):
        full = estimator.estimate_policy_value(reward=rounds.reward, action=rounds.item, pscore=rounds.pscore,
                                               action_dist=full_dist, estimated_rewards_by_reg_model=full_q)
        small = estimator.estimate_policy_value(reward=rounds.reward, action=np.zeros(n, np.int64), pscore=rounds.pscore,
                                                action_dist=compact.action_dist, estimated_rewards_by_reg_model=compact.q_hat)
        assert small == pytest.approx(full, rel=1e-10, abs=1e-14), type(estimator).__name__


def test_softmax_policy_and_score_edits() -> None:
    z = np.array([[0.0, 1.0, 2.0]])
    p = softmax_policy(z, temperature=1.0, epsilon=0.3)
    assert p.sum() == pytest.approx(1.0) and p.min() >= 0.1 - 1e-12
    # the penalty moves mass from the popular item to the unpopular one
    flat = np.zeros((1, 3))
    penalised = penalised_scores(flat + np.array([[1.0, 1.0, 1.1]]), np.log(np.array([100.0, 10.0, 1.0])), strength=1.0)
    assert np.argmax(penalised) == 2
    # the diversity push demotes items similar to the base policy's top item
    vectors = np.array([[1.0, 0.0], [0.99, 0.141], [0.0, 1.0]])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    diversified = diversified_scores(np.array([[3.0, 2.9, 2.0]]), vectors, strength=5.0, top=1)
    assert np.argmax(diversified) == 2


def sources(**kw) -> PolicySources:
    base = dict(n_items=3, n_slots=2, scores={"popularity": lambda u: np.tile([3.0, 2.0, 1.0], (len(u), 1))},
                skipped={"content": "no text"}, logging=None, log_popularity=np.log1p([30.0, 20.0, 10.0]))
    return PolicySources(**(base | kw))


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (PolicySwap(name="d", policy="diversity", base="popularity"), "needs item text embeddings"),
        (PolicySwap(name="c", policy="content"), "no text"),
        (PolicySwap(name="o", policy="oracle_uplift"), "not available"),
        (PolicySwap(name="b", policy="bts"), "Beta prior"),
        (PolicySwap(name="l", policy="logging"), "logging policy"),
        (PolicySwap(name="p", policy="popularity_penalty", base="content"), "base policy 'content'"),
    ],
)
def test_unsupported_interventions_say_why(spec: PolicySwap, reason: str) -> None:
    built = spec.build(sources())
    assert isinstance(built, str) and reason in built


def test_bts_intervention_differs_by_slot() -> None:
    prior = (np.array([50.0, 5.0, 1.0]), np.array([1.0, 5.0, 50.0]))
    policy = PolicySwap(name="b", policy="bts", epsilon=0.0).build(sources(bts_prior=prior))
    probs = policy(np.array([0, 0]), np.array([0, 1]))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert probs[0, 0] > 0.9 and probs[1, 1] > 0.9  # the strongest arm leads slot 1, the next one slot 2


def test_critic_tells_shifted_samples_apart_and_not_identical_ones() -> None:
    rng = np.random.default_rng(0)
    same = two_sample_auc(rng.standard_normal((400, 4)), rng.standard_normal((400, 4)), seed=1)
    shifted = two_sample_auc(rng.standard_normal((400, 4)), rng.standard_normal((400, 4)) + [1.0, 0, 0, 0], seed=1)
    assert 0.35 < same < 0.65 and shifted > 0.7
    with pytest.raises(ValueError, match="same width"):
        two_sample_auc(np.zeros((20, 2)), np.zeros((20, 3)))


def test_verdict_wording() -> None:
    from recause.models.ope.estimators import Estimate
    from recause.models.ope.comparison import Lift

    e = Estimate(0.1, 0.1, 0.05, 0.15)
    up = Lift(e, e, e, Estimate(0.041, 0.04, 0.01, 0.073))
    flat = Lift(e, e, e, Estimate(0.02, 0.02, -0.01, 0.05))
    down = Lift(e, e, e, Estimate(-0.904, -0.9, -0.921, -0.88))
    assert verdict("x", up, "click rate") == "x: raises the click rate by 4.1% [1.0%, 7.3%]"
    assert verdict("x", down, "click rate") == "x: lowers the click rate by 90.4% [88.0%, 92.1%]"  # no double negative
    assert verdict("x", flat, "click rate") == "x: no detectable change in the click rate (+2.0% [-1.0%, +5.0%])"


def test_clustered_interval_counts_users_not_rounds() -> None:
    from recause.tasks.contrast.estimation import clustered_mean

    # two users, two rounds each: values 1,1 (user 0) and 3,3 (user 1); mean 2; residual sums ±2
    # → se = sqrt(4 + 4) / 4 = 0.7071; the 95% interval is 2 ± 1.95996 × 0.7071
    interval = clustered_mean(np.array([1.0, 1.0, 3.0, 3.0]), np.array([0, 0, 1, 1]), 0.05)
    assert interval.value == pytest.approx(2.0)
    assert interval.high - interval.value == pytest.approx(1.959964 * np.sqrt(8) / 4, rel=1e-5)
    assert interval.value - interval.low == pytest.approx(interval.high - interval.value)


@pytest.mark.slow
def test_contrast_on_a_small_world_tracks_the_truth() -> None:
    data = load_synthetic(WorldConfig(n_users=600, n_items=120, n_topics=6, slate_size=5, mean_sessions=10), seed=5)
    split = split_dataset(data, SplitConfig(val_fraction=0.1, test_fraction=0.4), seed=5)
    baselines = build_baselines(split, data, BaselinesConfig(), seed=5)
    train = split.train[split.train["positive"]]
    src = PolicySources(
        n_items=split.n_items, n_slots=5, scores={n: p.scores for n, p in baselines.policies.items()}, skipped=baselines.skipped,
        logging=lambda users: data.logging_scores.score(split.users.ids[users], split.items.ids),
        log_popularity=np.log1p(np.bincount(train["item"], minlength=split.n_items).astype(float)),
    )
    specs = [PolicySwap(name=n, policy=n) for n in ("random", "popularity", "oracle_relevance", "oracle_uplift")]
    result = contrast_interventions(split, src, ContrastConfig(interventions=specs, n_bootstrap=200), randomized_policy=None,
                                    outcome="click rate", world=data.world, seed=5)
    table = result.table.set_index("policy")
    assert set(table.index) == {"control", "random", "popularity", "oracle_relevance", "oracle_uplift"}
    relative_error = (table["dr"] / table["true_value"] - 1).abs()
    assert relative_error[["control", "random"]].max() < 0.15
    assert result.metrics["interventions/kendall_tau"] >= 0.6
    assert result.metrics["interventions/ci_coverage"] >= 0.6
    assert 0.5 < result.metrics["interventions/random/critic_auc"] <= 1.0
    assert (table["true_caused"] <= table["true_value"]).all()


def test_no_propensities_no_rounds() -> None:
    data = load_synthetic(WorldConfig(n_users=40, n_items=30, n_topics=4, slate_size=3, mean_sessions=3), seed=0)
    split = split_dataset(data, SplitConfig(), seed=0)
    stripped = type(split)(split.kind, split.users, split.items, split.train, split.val, split.test.drop(columns=["propensity"]), 0)
    assert "no propensities" in logged_rounds(stripped, None, 1000, 0)
