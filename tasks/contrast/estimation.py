"""Off-policy estimates of every intervention on the logged rounds: rounds, reward model, compression.

Rounds: on a per-user split, the held-out (validation and test) logged impressions with their
propensities — no policy or reward model was fitted on them (control = the logging policy); on a
randomized split (Coat, Open Bandit), the rows of the uniformly random policy (control = uniform,
propensity 1/n_items per slot). Without logged propensities (MovieLens) there is nothing to weigh
by: :func:`logged_rounds` says so.

Memory: the estimators need, per round, only π(logged item), E_{a∼π}[q̂(x, a)] and q̂(x, logged item).
Each policy is therefore compressed to two actions per round — the logged item and "any other",
whose q̂ is the policy's mean q̂ over the rest — which gives *identical* DM/IPS/SNIPS/DR/SNDR/Switch/
DR-OS estimates while storing (n_rounds × 2) instead of (n_rounds × n_items) per policy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import sparse

from recause.models.ope.comparison import Lift, compare_policies
from recause.models.ope.estimators import (
    DirectMethod,
    DoublyRobust,
    InverseProbabilityWeighting,
    OffPolicyEstimator,
    SelfNormalizedDoublyRobust,
    SelfNormalizedInverseProbabilityWeighting,
)
from recause.models.ope.reward_models import CrossFitted, CrossFittedLogistic
from recause.models.ope.tuning import DoublyRobustWithShrinkageTuning, SwitchDoublyRobustTuning
from recause.models.world.scm import SyntheticWorld
from recause.tasks.contrast.config import ContrastConfig
from recause.tasks.contrast.interventions import SlotFree, SlotPolicy
from recause.tasks.data.split import Split
from recause.tasks.shards import MapShards, in_order

ESTIMATORS: dict[str, Callable[[], OffPolicyEstimator]] = {
    "dm": DirectMethod,
    "ipw": InverseProbabilityWeighting,
    "snipw": SelfNormalizedInverseProbabilityWeighting,
    "dr": DoublyRobust,
    "sndr": SelfNormalizedDoublyRobust,
    "switch-dr": SwitchDoublyRobustTuning,  # each with its own λ grid (the class defaults, as Open Bandit Pipeline's)
    "dr-os": DoublyRobustWithShrinkageTuning,
}
"""The estimators by config name (:data:`recause.tasks.contrast.config.EstimatorName`)."""


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
    caused_hat: np.ndarray | None = None  # (n,) Σ_a π(a) τ̂(u, a): the outcome caused per recommendation seen, by τ̂
    caused_seen: np.ndarray | None = None  # (n,) Σ_a π(a) τ: the same, exact (caused = κ_k × caused_seen)


COMPRESS_SHARDS = 8
"""How many shards :func:`compress` splits its users into (whole blocks of ``block_users``; fewer where the rounds
have fewer blocks): enough for a few workers to share evenly, few enough that submitting them costs little."""

PARTS = ("pi", "q_other", "truth", "caused", "caused_hat", "caused_seen")


def compress(
    policies: Mapping[str, SlotPolicy],
    rounds: Rounds,
    reward_model: CrossFitted,
    context: sparse.csr_matrix,
    world: tuple[SyntheticWorld, np.ndarray, np.ndarray] | None = None,
    block_users: int = 256,
    uplift: Callable[[np.ndarray], np.ndarray] | None = None,
    map_shards: MapShards = in_order,
) -> dict[str, Compressed]:
    """Every policy's two-action form, by blocks of users: a slot-free policy (:class:`SlotFree`) and
    the truth are evaluated once per user, q̂ once per round.

    ``world``: (world, world ids of the split's users, world ids of its items) for exact values.
    ``uplift``: split user indices (B,) -> (B, n_items) τ̂, for each policy's estimated caused outcome.
    The shards (:func:`start_compress`) are read at once (:func:`compressed_from`).
    """
    return compressed_from(start_compress(policies, rounds, reward_model, context, world, block_users, uplift, map_shards))


@dataclass(frozen=True)
class Compressing:
    """:func:`compress`'s shards, submitted (:func:`start_compress`); :func:`compressed_from` reads them."""

    policies: list[str]
    n: int  # rounds
    results: Sequence[tuple[np.ndarray, dict[str, dict[str, np.ndarray]], np.ndarray]]  # per shard (compress_users)
    known: bool  # a world gave the exact parts
    has_uplift: bool  # τ̂ gave caused_hat


def start_compress(policies: Mapping[str, SlotPolicy], rounds: Rounds, reward_model: CrossFitted, context: sparse.csr_matrix,
                   world: tuple[SyntheticWorld, np.ndarray, np.ndarray] | None = None, block_users: int = 256,
                   uplift: Callable[[np.ndarray], np.ndarray] | None = None, map_shards: MapShards = in_order,
                   shards: int = COMPRESS_SHARDS) -> Compressing:
    """Submit :func:`compress`'s shards: the users in up to ``shards`` runs of whole blocks (:func:`compress_users`).
    Each row is computed within its user's block whatever shard holds it, so the numbers do not depend on them."""
    unique = np.unique(rounds.user)
    blocks = max(1, -(-len(unique) // block_users))
    per_shard = block_users * -(-blocks // max(1, shards))
    chunks = [unique[start : start + per_shard] for start in range(0, len(unique), per_shard)]
    common = dict(policies=policies, rounds=rounds, reward_model=reward_model, context=context, world=world,
                  block_users=block_users, uplift=uplift)
    return Compressing(list(policies), len(rounds.user), map_shards(compress_users, chunks, common), world is not None,
                       uplift is not None)


def compressed_from(pending: Compressing) -> dict[str, Compressed]:
    """Every policy's :class:`Compressed` from :func:`start_compress`'s shards (waits for them)."""
    parts = {name: {key: np.empty(pending.n) for key in PARTS} for name in pending.policies}
    q_logged = np.empty(pending.n)
    for rows, chunk_parts, chunk_q in pending.results:
        q_logged[rows] = chunk_q
        for name, part in chunk_parts.items():
            for key, values in part.items():
                parts[name][key][rows] = values
    out = {}
    for name, part in parts.items():
        dist = np.stack([part["pi"], 1.0 - part["pi"]], axis=1)[:, :, None]
        q_hat = np.stack([q_logged, np.clip(part["q_other"], 0.0, 1.0)], axis=1)[:, :, None]
        exact = {key: part[key] if pending.known else None for key in ("truth", "caused", "caused_seen")}
        out[name] = Compressed(dist, q_hat, exact["truth"], exact["caused"], part["caused_hat"] if pending.has_uplift else None,
                               exact["caused_seen"])
    return out


def compress_users(
    users: np.ndarray,
    policies: Mapping[str, SlotPolicy],
    rounds: Rounds,
    reward_model: CrossFitted,
    context: sparse.csr_matrix,
    world: tuple[SyntheticWorld, np.ndarray, np.ndarray] | None,
    block_users: int,
    uplift: Callable[[np.ndarray], np.ndarray] | None,
) -> tuple[np.ndarray, dict[str, dict[str, np.ndarray]], np.ndarray]:
    """One shard of :func:`compress`: the rounds of ``users`` (sorted split user indices), by blocks of
    ``block_users``. Returns (rows (m,) into the rounds, policy -> part -> (m,) values, (m,) q̂ of the logged item)."""
    order = np.argsort(rounds.user, kind="stable")
    users_sorted = rounds.user[order]
    lo, hi = np.searchsorted(users_sorted, [users[0], users[-1] + 1])
    mine = order[lo:hi]  # the shard's rows, grouped by user
    m = len(mine)
    parts = {name: {key: np.zeros(m) for key in PARTS} for name in policies}
    q_logged = np.empty(m)
    offset = 0
    for start in range(0, len(users), block_users):
        block = users[start : start + block_users]
        b_lo, b_hi = np.searchsorted(users_sorted, [block[0], block[-1] + 1])
        rows = order[b_lo:b_hi]
        at = np.arange(len(rows))
        span = slice(offset, offset + len(rows))
        offset += len(rows)
        users_r, slots, items = rounds.user[rows], rounds.slot[rows], rounds.item[rows]
        inverse = np.searchsorted(block, users_r)
        q = reward_model.predict(rows, context)[:, :, 0]  # (R, n_items)
        q_logged[span] = q[at, items]
        if world is not None:
            truth_world, world_users, world_items = world
            p0, p1 = truth_world.potential_outcomes(world_users[block], world_items)  # (U, n_items)
            kappa = truth_world.examination(rounds.n_slots)[slots]
        tau_hat = uplift(block) if uplift is not None else None  # (U, n_items)
        for name, policy in policies.items():
            part = parts[name]
            per_user = policy.per_user(block) if isinstance(policy, SlotFree) else None
            p = per_user[inverse] if per_user is not None else policy(users_r, slots)  # (R, n_items)
            pi = p[at, items]
            rest = 1.0 - pi
            expected = np.einsum("ri,ri->r", p, q)
            part["pi"][span] = pi
            part["q_other"][span] = np.where(rest > 1e-12, (expected - pi * q_logged[span]) / np.where(rest > 1e-12, rest, 1.0), 0.0)
            if world is not None:
                if per_user is not None:
                    base, effect = np.einsum("ui,ui->u", per_user, p0)[inverse], np.einsum("ui,ui->u", per_user, p1 - p0)[inverse]
                else:
                    base, effect = np.einsum("ri,ri->r", p, p0[inverse]), np.einsum("ri,ri->r", p, (p1 - p0)[inverse])
                part["truth"][span] = base + kappa * effect
                part["caused"][span] = kappa * effect
                part["caused_seen"][span] = effect
            if tau_hat is not None:
                part["caused_hat"][span] = (np.einsum("ui,ui->u", per_user, tau_hat)[inverse] if per_user is not None
                                            else np.einsum("ri,ri->r", p, tau_hat[inverse]))
    return mine, parts, q_logged


@dataclass(frozen=True)
class Interval:
    """A value with its (1 − α) interval."""

    value: float
    low: float
    high: float


def clustered_mean(values: np.ndarray, clusters: np.ndarray, alpha: float) -> Interval:
    r"""The mean of per-round ``values`` with a normal interval whose standard error is clustered by
    ``clusters`` (the user: one user's rounds are not independent):
    :math:`\mathrm{se} = \sqrt{\sum_u (S_u - n_u \bar v)^2} / N`, :math:`S_u` the sum of user u's values."""
    from scipy.stats import norm

    n = len(values)
    mean = float(values.mean())
    _, codes = np.unique(clusters, return_inverse=True)
    residual = np.bincount(codes, weights=values - mean)
    se = float(np.sqrt((residual**2).sum())) / n
    z = float(norm.ppf(1 - alpha / 2))
    return Interval(mean, mean - z * se, mean + z * se)


def effective_sample_size(compressed: Compressed, rounds: Rounds) -> float:
    r"""Kish's effective sample size of the importance weights :math:`w = \pi(a_t \mid x_t) / p_t`:
    :math:`(\sum w)^2 / \sum w^2` — how many rounds the weighting estimators (IPW, DR) effectively rest on."""
    weights = compressed.action_dist[:, 0, 0] / rounds.pscore
    total = float((weights**2).sum())
    return float(weights.sum()) ** 2 / total if total > 0 else 0.0


def caused_estimates(compressed: Mapping[str, Compressed], rounds: Rounds, control: str,
                     alpha: float) -> dict[str, tuple[Interval, Interval | None]]:
    """Each policy's estimated outcome caused per recommendation seen, E_t[Σ_a π(a) τ̂(u_t, a)] (τ̂ is the
    effect of an item the user examines: the slot's examination probability is not in it), and (not for the control)
    its difference from the control's on the same rounds — both with user-clustered intervals.

    The interval is the sampling error over the logged rounds; the error of τ̂ itself is not in it
    (on the synthetic world the report sets each estimate beside the truth). Empty without τ̂."""
    if compressed[control].caused_hat is None:
        return {}
    base = compressed[control].caused_hat
    out: dict[str, tuple[Interval, Interval | None]] = {}
    for name, c in compressed.items():
        value = clustered_mean(c.caused_hat, rounds.user, alpha)
        out[name] = (value, None if name == control else clustered_mean(c.caused_hat - base, rounds.user, alpha))
    return out


def estimate(compressed: Mapping[str, Compressed], rounds: Rounds, control: str, config: ContrastConfig, seed: int,
             map_shards: MapShards = in_order) -> dict[str, dict[str, Lift]]:
    """estimator name -> intervention name -> paired :class:`Lift` over ``control``.

    One shard per estimator (:func:`estimator_lifts`, through ``map_shards``): each takes every
    policy, so the paired bootstrap resamples are drawn once per estimator, from ``seed`` alone, as
    in one process."""
    common = dict(dists={name: c.action_dist for name, c in compressed.items()},
                  q_hats={name: c.q_hat for name, c in compressed.items()},
                  control=control, reward=rounds.reward, pscore=rounds.pscore, alpha=config.alpha,
                  n_bootstrap=config.n_bootstrap, seed=seed)
    return dict(zip(config.estimators, map_shards(estimator_lifts, list(config.estimators), common)))


def estimator_lifts(estimator: str, dists: Mapping[str, np.ndarray], q_hats: Mapping[str, np.ndarray], control: str,
                    reward: np.ndarray, pscore: np.ndarray, alpha: float, n_bootstrap: int, seed: int) -> dict[str, Lift]:
    """One estimator's shard of :func:`estimate`: every policy's paired :class:`Lift` over ``control``.

    ``dists`` / ``q_hats``: policy -> (n, 2, 1) compressed action distribution / reward model
    (:class:`Compressed`); ``reward``, ``pscore``: (n,) the logged rounds (the logged action is 0)."""
    return compare_policies(
        ESTIMATORS[estimator](), dists, control, estimated_rewards_by_reg_model=q_hats, reward=reward,
        action=np.zeros(len(reward), dtype=np.int64), pscore=pscore, alpha=alpha, n_bootstrap_samples=n_bootstrap,
        random_state=seed,
    )
