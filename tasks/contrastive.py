"""Contrastive evaluation: every intervention against the control, on the same logged rounds.

For each intervention (:mod:`tasks.interventions`) and the control (the policy that logged the
evaluation rounds): every off-policy estimator's value with a bootstrap CI, the **paired lift**
over the control (the same bootstrap resamples for both, so the CI of the difference is honest),
beyond-accuracy metrics of the top-K lists, and a **contrastive two-sample critic**
(:mod:`models.critic`) whose held-out AUC says how different the two worlds are beyond the mean.
On the synthetic world each value is also scored against the exact truth.

Rounds: on a per-user split, the held-out (validation and test) logged impressions with their
propensities — no policy or reward model was fitted on them (control = the logging policy); on a randomized split (Coat, Open Bandit), the rows of the uniformly random
policy (control = uniform, propensity 1/n_items per slot). Without logged propensities (MovieLens)
there is nothing to weigh by: the stage says so.

Memory: the estimators need, per round, only π(logged item), E_{a∼π}[q̂(x, a)] and q̂(x, logged item).
Each policy is therefore compressed to two actions per round — the logged item and "any other",
whose q̂ is the policy's mean q̂ over the rest — which gives *identical* DM/IPS/SNIPS/DR/SNDR/Switch/
DR-OS estimates while storing (n_rounds × 2) instead of (n_rounds × n_items) per policy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from scipy import sparse

from models.critic import two_sample_auc
from models.metrics import coverage, exposure_counts, gini
from models.ope import (
    DirectMethod,
    DoublyRobust,
    InverseProbabilityWeighting,
    OffPolicyEstimator,
    SelfNormalizedDoublyRobust,
    SelfNormalizedInverseProbabilityWeighting,
)
from models.ope_tuning import DoublyRobustWithShrinkageTuning, Lift, SwitchDoublyRobustTuning, compare_policies
from models.reward_models import CrossFitted, CrossFittedLogistic
from models.world import SyntheticWorld
from tasks.interventions import (
    DEFAULT_INTERVENTIONS,
    InterventionSpec,
    PolicySources,
    SlotFree,
    SlotPolicy,
    build_intervention,
    control_policy,
)
from tasks.split import Split

EstimatorName = Literal["dm", "ipw", "snipw", "dr", "sndr", "switch-dr", "dr-os"]
LAMBDAS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, float("inf"))
ESTIMATORS: dict[str, Callable[[], OffPolicyEstimator]] = {
    "dm": DirectMethod,
    "ipw": InverseProbabilityWeighting,
    "snipw": SelfNormalizedInverseProbabilityWeighting,
    "dr": DoublyRobust,
    "sndr": SelfNormalizedDoublyRobust,
    "switch-dr": lambda: SwitchDoublyRobustTuning(lambdas=LAMBDAS),
    "dr-os": lambda: DoublyRobustWithShrinkageTuning(lambdas=LAMBDAS),
}

class ContrastConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    enabled: bool = Field(True, description="Run the contrastive evaluation of the interventions.")
    interventions: list[InterventionSpec] = Field(
        default_factory=lambda: [s.model_copy() for s in DEFAULT_INTERVENTIONS],
        description="What-ifs to compare with the control; ones the data cannot support are skipped and said so.",
    )
    estimators: list[EstimatorName] = Field(["dm", "ipw", "snipw", "dr", "sndr", "switch-dr", "dr-os"], description="Off-policy estimators to report.")
    estimator_of_record: EstimatorName = Field("dr", description="The estimator behind interventions/<name>/lift.")
    of_record: str | None = Field(None, description="Intervention behind ope/<estimator>/...; default: bts if run, else the first.")
    n_bootstrap: int = Field(500, ge=50, le=20_000, description="Bootstrap resamples of the rounds.")
    alpha: float = Field(0.05, gt=0.0, lt=0.5, description="1 − confidence level of the intervals.")
    max_rounds: int = Field(50_000, ge=100, description="Logged rounds used at most (a seeded sample beyond).")
    reward_folds: int = Field(2, ge=1, le=10, description="Cross-fitting folds of the reward model.")
    k: int = Field(10, ge=1, description="List length of the beyond-accuracy metrics.")
    critic_users: int = Field(1000, ge=20, description="Users sampled for the critic and the beyond-accuracy metrics.")
    critic_epochs: int = Field(200, ge=10, description="Training steps of the critic.")


@dataclass(frozen=True)
class Rounds:
    """Logged rounds the estimators weigh: integer user/item (split indices), 0-based slot, 0/1 reward."""

    user: np.ndarray
    item: np.ndarray
    slot: np.ndarray
    reward: np.ndarray
    pscore: np.ndarray
    n_slots: int
    control: Literal["logging", "random"]


def logged_rounds(split: Split, randomized_policy: str | None, max_rounds: int, seed: int) -> Rounds | str:
    """The evaluation rounds, or the reason there are none."""
    if split.kind == "randomized":
        frame = pd.concat([split.val, split.test], ignore_index=True)
        frame = frame[(frame["policy"] == randomized_policy).fillna(False).to_numpy(dtype=bool)]
        pscore = np.full(len(frame), 1.0 / split.n_items)
        control: Literal["logging", "random"] = "random"
    else:
        if "propensity" not in split.test.columns:
            return "the log has no propensities (no exposure log): off-policy estimates need them"
        held_out = pd.concat([split.val, split.test], ignore_index=True)  # never used to fit a policy
        frame = held_out[held_out["exposed"].fillna(False).to_numpy(dtype=bool) & held_out["propensity"].notna()]
        pscore = frame["propensity"].to_numpy(dtype=np.float64)
        control = "logging"
    if frame.empty:
        return "no logged rounds with known propensities in the evaluation split"
    slot = frame["position"].fillna(1).to_numpy(dtype=np.int64) - 1 if "position" in frame.columns else np.zeros(len(frame), np.int64)
    keep = np.arange(len(frame))
    if len(frame) > max_rounds:
        keep = np.sort(np.random.default_rng([seed, 13]).choice(len(frame), size=max_rounds, replace=False))
    return Rounds(
        user=frame["user"].to_numpy()[keep], item=frame["item"].to_numpy()[keep], slot=slot[keep],
        reward=frame["positive"].to_numpy(dtype=np.float64)[keep], pscore=pscore[keep],
        n_slots=int(slot.max()) + 1, control=control,
    )


def reward_context(rounds: Rounds, n_users: int) -> sparse.csr_matrix:
    """(n_rounds, n_users + n_slots) one-hot user and slot: the reward model's context."""
    n = len(rounds.user)
    rows = np.r_[np.arange(n), np.arange(n)]
    cols = np.r_[rounds.user, n_users + rounds.slot]
    return sparse.csr_matrix((np.ones(2 * n), (rows, cols)), shape=(n, n_users + rounds.n_slots))


def fit_reward_model(rounds: Rounds, n_users: int, item_log_popularity: np.ndarray, folds: int, seed: int) -> tuple[CrossFitted, sparse.csr_matrix]:
    """Cross-fitted logistic q̂(user, slot, item): one-hot user, slot and item plus the item's
    standardised log popularity — observable features only. Returns the fit and the context."""
    n_items = len(item_log_popularity)
    z = (item_log_popularity - item_log_popularity.mean()) / (item_log_popularity.std() or 1.0)
    action_context = np.c_[np.eye(n_items), z]
    context = reward_context(rounds, n_users)
    model = CrossFittedLogistic(n_actions=n_items, n_folds=folds, random_state=seed, C=1.0)
    return model.fit_folds(context, rounds.item, rounds.reward, action_context=action_context), context


@dataclass(frozen=True)
class Compressed:
    """One policy on the rounds in the two-action form, and (synthetic) its exact value per round."""

    action_dist: np.ndarray  # (n, 2, 1): [π(logged item), 1 − π(logged item)]
    q_hat: np.ndarray  # (n, 2, 1): [q̂(logged item), mean q̂ of the other items under π]
    truth: np.ndarray | None  # (n,) Σ_a π(a) (p0 + κ_k τ) or None
    caused: np.ndarray | None  # (n,) Σ_a π(a) κ_k τ: the part of the outcome the recommendation caused


def compress(
    policies: Mapping[str, SlotPolicy],
    rounds: Rounds,
    reward_model: CrossFitted,
    context: sparse.csr_matrix,
    world: tuple[SyntheticWorld, np.ndarray, np.ndarray] | None = None,
    block_users: int = 256,
) -> dict[str, Compressed]:
    """Every policy's two-action form, by blocks of users: a slot-free policy (:class:`SlotFree`) and
    the truth are evaluated once per user, q̂ once per round.

    ``world``: (world, world ids of the split's users, world ids of its items) for exact values.
    """
    n = len(rounds.user)
    parts = {name: {key: np.empty(n) for key in ("pi", "q_other", "truth", "caused")} for name in policies}
    q_logged = np.empty(n)
    order = np.argsort(rounds.user, kind="stable")
    users_sorted = rounds.user[order]
    unique = np.unique(users_sorted)
    for start in range(0, len(unique), block_users):
        block = unique[start : start + block_users]
        lo, hi = np.searchsorted(users_sorted, [block[0], block[-1] + 1])
        rows = order[lo:hi]
        users, slots, items = rounds.user[rows], rounds.slot[rows], rounds.item[rows]
        inverse = np.searchsorted(block, users)
        at = np.arange(len(rows))
        q = reward_model.predict(rows, context)[:, :, 0]  # (R, n_items)
        q_logged[rows] = q[at, items]
        if world is not None:
            truth_world, world_users, world_items = world
            p0, p1 = truth_world._potential_outcomes(world_users[block], world_items, pairs=False)  # (U, n_items)
            kappa = truth_world.examination(rounds.n_slots)[slots]
        for name, policy in policies.items():
            per_user = policy.per_user(block) if isinstance(policy, SlotFree) else None
            p = per_user[inverse] if per_user is not None else policy(users, slots)  # (R, n_items)
            pi = p[at, items]
            rest = 1.0 - pi
            expected = np.einsum("ri,ri->r", p, q)
            parts[name]["pi"][rows] = pi
            parts[name]["q_other"][rows] = np.where(rest > 1e-12, (expected - pi * q_logged[rows]) / np.where(rest > 1e-12, rest, 1.0), 0.0)
            if world is not None:
                if per_user is not None:
                    base, effect = np.einsum("ui,ui->u", per_user, p0)[inverse], np.einsum("ui,ui->u", per_user, p1 - p0)[inverse]
                else:
                    base, effect = np.einsum("ri,ri->r", p, p0[inverse]), np.einsum("ri,ri->r", p, (p1 - p0)[inverse])
                parts[name]["truth"][rows] = base + kappa * effect
                parts[name]["caused"][rows] = kappa * effect
    out = {}
    for name, part in parts.items():
        dist = np.stack([part["pi"], 1.0 - part["pi"]], axis=1)[:, :, None]
        q_hat = np.stack([q_logged, np.clip(part["q_other"], 0.0, 1.0)], axis=1)[:, :, None]
        known = world is not None
        out[name] = Compressed(dist, q_hat, part["truth"] if known else None, part["caused"] if known else None)
    return out


def estimate(compressed: Mapping[str, Compressed], rounds: Rounds, control: str, config: ContrastConfig, seed: int) -> dict[str, dict[str, Lift]]:
    """estimator name -> intervention name -> paired :class:`Lift` over ``control``."""
    logged = dict(reward=rounds.reward, action=np.zeros(len(rounds.user), dtype=np.int64), pscore=rounds.pscore)
    dists = {name: c.action_dist for name, c in compressed.items()}
    q_hats = {name: c.q_hat for name, c in compressed.items()}
    return {
        name: compare_policies(
            ESTIMATORS[name](), dists, control, estimated_rewards_by_reg_model=q_hats,
            alpha=config.alpha, n_bootstrap_samples=config.n_bootstrap, random_state=seed, **logged,
        )
        for name in config.estimators
    }


def sample_lists(probabilities: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """(n_users, k) items, each slot drawn independently from the user's row of ``probabilities``."""
    cdf = np.cumsum(probabilities, axis=1)
    cdf /= cdf[:, -1:]
    n, n_items = probabilities.shape
    flat = (cdf + np.arange(n)[:, None]).ravel()
    rows = np.repeat(np.arange(n), k)
    hits = np.searchsorted(flat, rows + rng.random(n * k) * (1 - 1e-12), side="right")
    return np.minimum(hits - rows * n_items, n_items - 1).reshape(n, k)


def beyond_accuracy(lists: np.ndarray, n_items: int, log_popularity: np.ndarray, item_vectors: np.ndarray | None) -> dict[str, float]:
    """Coverage, exposure Gini, novelty and (with text) intra-list diversity of what a policy shows.

    ``lists``: (n_users, k) items a stochastic policy drew (:func:`sample_lists`). Novelty = mean
    −log2 of the listed items' share of training engagements; diversity = 1 − mean pairwise cosine
    within a list.
    """
    k = lists.shape[1]
    share = np.exp(log_popularity) / np.exp(log_popularity).sum()
    out = {
        f"coverage_at_{k}": coverage(lists, n_items),
        f"gini_at_{k}": gini(exposure_counts(lists, n_items)),
        f"novelty_at_{k}": float(-np.log2(share[lists]).mean()),
    }
    if item_vectors is not None and k > 1:
        v = item_vectors[lists]  # (U, k, d)
        sims = np.einsum("ukd,ujd->ukj", v, v)
        off = (sims.sum(axis=(1, 2)) - np.einsum("ukk->u", sims)) / (k * (k - 1))
        out[f"diversity_at_{k}"] = float(1.0 - off.mean())
    return out


def critic_features(
    probabilities: np.ndarray, users: np.ndarray, q: np.ndarray, item_repr: np.ndarray,
    user_repr: np.ndarray | None, popularity_z: np.ndarray, k: int, rng: np.random.Generator,
) -> np.ndarray:
    """One row per user: what the policy shows them (a sampled list of k) and what q̂ predicts.

    Columns: mean item representation of the list, q̂ mean/std/max over the list, mean popularity z,
    and the user's own representation (the same in both worlds; it lets the critic condition on who).
    """
    lists = sample_lists(probabilities, k, rng)
    q_list = np.take_along_axis(q, lists, axis=1)
    columns = [item_repr[lists].mean(axis=1), q_list.mean(axis=1, keepdims=True), q_list.std(axis=1, keepdims=True),
               q_list.max(axis=1, keepdims=True), popularity_z[lists].mean(axis=1, keepdims=True)]
    if user_repr is not None:
        columns.append(user_repr[users])
    return np.concatenate(columns, axis=1)


def critic_auc(
    shown: Mapping[str, np.ndarray], users: np.ndarray, control: str, rounds: Rounds, reward_model: CrossFitted, n_users: int,
    item_repr: np.ndarray, user_repr: np.ndarray | None, popularity_z: np.ndarray, config: ContrastConfig, seed: int,
) -> dict[str, float]:
    """Held-out AUC of the two-sample critic, intervention vs control, on the same sampled ``users``.

    ``shown``: policy name -> (n_users, n_items) first-slot probabilities for ``users``.
    """
    rng = np.random.default_rng([seed, 17])
    # a fixed Gaussian projection to 32 dimensions keeps the critic small and fast (Johnson–Lindenstrauss)
    item_repr = item_repr @ rng.standard_normal((item_repr.shape[1], 32)) / np.sqrt(32) if item_repr.shape[1] > 32 else item_repr
    if user_repr is not None and user_repr.shape[1] > 32:
        user_repr = user_repr @ rng.standard_normal((user_repr.shape[1], 32)) / np.sqrt(32)
    slots = np.zeros(len(users), dtype=np.int64)
    one_round = Rounds(users, np.zeros(len(users), np.int64), slots, np.zeros(len(users)), np.ones(len(users)), rounds.n_slots, rounds.control)
    q = reward_model.models[0][0].predict_all_actions(reward_context(one_round, n_users), reward_model.action_context)
    k = min(config.k, item_repr.shape[0])
    features = {name: critic_features(p, users, q, item_repr, user_repr, popularity_z, k, rng) for name, p in shown.items()}
    return {
        name: two_sample_auc(features[control], x, epochs=config.critic_epochs, seed=seed)
        for name, x in features.items() if name != control
    }


def verdict(name: str, lift: Lift, outcome: str) -> str:
    """"raises the click rate by +4.1% [+1.0%, +7.3%]" or "no detectable change (...)"."""
    r = lift.relative
    span = f"{r.value:+.1%} [{r.low:+.1%}, {r.high:+.1%}]"
    if r.low > 0:
        return f"{name}: raises the {outcome} by {span}"
    if r.high < 0:
        return f"{name}: lowers the {outcome} by {span}"
    return f"{name}: no detectable change in the {outcome} ({span})"


@dataclass(frozen=True)
class ContrastResult:
    """One row per policy (control first) with estimates, lifts, truth and beyond-accuracy metrics;
    the flat metrics for the summary; one verdict line per intervention; what was skipped and why."""

    table: pd.DataFrame
    metrics: dict[str, float | str]
    verdicts: list[str]
    skipped: dict[str, str]


def contrast_interventions(
    split: Split,
    sources: PolicySources,
    config: ContrastConfig,
    *,
    randomized_policy: str | None,
    outcome: str,
    world: SyntheticWorld | None = None,
    known_values: Mapping[str, float] | None = None,
    user_repr: np.ndarray | None = None,
    seed: int = 0,
) -> ContrastResult | str:
    """Estimate every intervention against the control on the same rounds; a reason string if impossible.

    ``known_values``: policy kind -> its true value where the data hold one (Open Bandit: the
    Bernoulli-TS log's click rate); on the synthetic world every policy's truth is exact.
    """
    rounds = logged_rounds(split, randomized_policy, config.max_rounds, seed)
    if isinstance(rounds, str):
        return rounds
    policies: dict[str, SlotPolicy] = {"control": control_policy(rounds.control, sources)}
    specs = {"control": None}
    skipped: dict[str, str] = {}
    for spec in config.interventions:
        if spec.policy == rounds.control:
            skipped[spec.name] = f"it is the control: the evaluation rounds were logged by the {spec.policy} policy"
            continue
        built = build_intervention(spec, sources)
        if isinstance(built, str):
            skipped[spec.name] = built
        else:
            policies[spec.name], specs[spec.name] = built, spec
    reward_model, context = fit_reward_model(rounds, split.n_users, sources.log_popularity, config.reward_folds, seed)
    truth_world = (world, split.users.ids.astype(np.int64), split.items.ids.astype(np.int64)) if world is not None else None
    compressed = compress(policies, rounds, reward_model, context, truth_world)
    lifts = estimate(compressed, rounds, "control", config, seed)

    truth: dict[str, float] = {}
    caused: dict[str, float] = {}
    for name, spec in specs.items():
        if world is not None:
            truth[name] = float(compressed[name].truth.mean())
            caused[name] = float(compressed[name].caused.mean())
        elif spec is not None and known_values and spec.policy in known_values:
            truth[name] = float(known_values[spec.policy])

    item_repr = sources.item_vectors
    if item_repr is None:  # no text: a fixed random projection of item ids tells lists apart
        item_repr = np.random.default_rng([seed, 19]).standard_normal((sources.n_items, 32)) / np.sqrt(32)
    pop_z = (sources.log_popularity - sources.log_popularity.mean()) / (sources.log_popularity.std() or 1.0)
    rng = np.random.default_rng([seed, 23])
    users = np.unique(rounds.user)
    users = np.sort(rng.choice(users, size=min(config.critic_users, len(users)), replace=False))
    shown = {name: p(users, np.zeros(len(users), np.int64)) for name, p in policies.items()}  # first slot
    critic = critic_auc(shown, users, "control", rounds, reward_model, split.n_users, item_repr, user_repr, pop_z, config, seed)
    k = min(config.k, sources.n_items)
    beyond = {name: beyond_accuracy(sample_lists(p, k, rng), sources.n_items, sources.log_popularity, sources.item_vectors)
              for name, p in shown.items()}
    return _assemble(policies, lifts, truth, caused, critic, beyond, rounds, skipped, config, outcome)


def _assemble(policies, lifts, truth, caused, critic, beyond, rounds: Rounds, skipped, config: ContrastConfig, outcome: str) -> ContrastResult:
    record = config.estimator_of_record
    names = list(policies)
    rows, metrics, verdicts = [], {}, []
    metrics["contrast/n_rounds"] = float(len(rounds.user))
    metrics["contrast/control"] = "logging policy" if rounds.control == "logging" else "uniform random"
    metrics["contrast/estimator_of_record"] = record
    for name in names:
        row: dict[str, float | str] = {"policy": name}
        for est, by_name in lifts.items():
            value = next(iter(by_name.values())).control if name == "control" else by_name[name].treatment
            row |= {f"{est}": value.value, f"{est}_low": value.low, f"{est}_high": value.high}
            metrics |= {f"interventions/{name}/{est}/estimate": value.value,
                        f"interventions/{name}/{est}/ci_low": value.low, f"interventions/{name}/{est}/ci_high": value.high}
            if name in truth and truth[name] != 0:
                metrics[f"interventions/{name}/{est}/relative_error"] = abs(value.value / truth[name] - 1.0)
        if name != "control":
            lift = lifts[record][name]
            row |= {"lift": lift.relative.value, "lift_low": lift.relative.low, "lift_high": lift.relative.high,
                    "absolute_lift": lift.difference.value, "critic_auc": critic[name]}
            metrics |= {f"interventions/{name}/lift": lift.relative.value, f"interventions/{name}/ci_low": lift.relative.low,
                        f"interventions/{name}/ci_high": lift.relative.high, f"interventions/{name}/absolute_lift": lift.difference.value,
                        f"interventions/{name}/critic_auc": critic[name]}
            verdicts.append(verdict(name, lift, outcome))
        if name in truth:
            row["true_value"] = truth[name]
            metrics[f"interventions/{name}/true_value"] = truth[name]
            if name != "control" and "control" in truth and truth["control"] != 0:
                row["true_lift"] = truth[name] / truth["control"] - 1.0
                metrics[f"interventions/{name}/true_lift"] = row["true_lift"]
        if name in caused:
            row["true_caused"] = caused[name]
            metrics[f"interventions/{name}/true_caused_value"] = caused[name]
        row |= beyond[name]
        metrics |= {f"interventions/{name}/{key}": value for key, value in beyond[name].items()}
        rows.append(row)
    metrics |= _agreement_with_truth(lifts[record], truth, names)
    of_record = config.of_record if config.of_record in names else ("bts" if "bts" in names else next((n for n in names if n != "control"), None))
    if of_record is not None:
        metrics["ope/policy"] = of_record
        for est in lifts:
            metrics[f"ope/{est}/estimate"] = metrics[f"interventions/{of_record}/{est}/estimate"]
            if f"interventions/{of_record}/{est}/relative_error" in metrics:
                metrics[f"ope/{est}/relative_error"] = metrics[f"interventions/{of_record}/{est}/relative_error"]
    metrics |= {f"interventions/{name}/skipped": reason for name, reason in skipped.items()}
    return ContrastResult(pd.DataFrame(rows), metrics, verdicts, skipped)


def _agreement_with_truth(lifts: Mapping[str, Lift], truth: Mapping[str, float], names: list[str]) -> dict[str, float]:
    """Where the truth is known for the control and ≥ 3 interventions: Kendall τ between estimated and
    true lifts, and the share of value CIs (estimator of record) that cover the true value."""
    known = [n for n in names if n != "control" and n in truth and "control" in truth]
    if len(known) < 3 or truth["control"] == 0:
        return {}
    from scipy.stats import kendalltau

    estimated = [lifts[n].relative.value for n in known]
    true = [truth[n] / truth["control"] - 1.0 for n in known]
    covered = [lifts[n].treatment.low <= truth[n] <= lifts[n].treatment.high for n in known]
    covered.append(next(iter(lifts.values())).control.low <= truth["control"] <= next(iter(lifts.values())).control.high)
    return {"interventions/kendall_tau": float(kendalltau(estimated, true).statistic), "interventions/ci_coverage": float(np.mean(covered))}
