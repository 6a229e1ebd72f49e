"""Declarative interventions: what-if policies, written in the config, turned into action distributions.

An intervention swaps the ranking policy. Each is *stochastic* — every slot is drawn from
:math:`\\pi(i \\mid u) = (1-\\epsilon)\\,\\mathrm{softmax}_i(z_{u,i} / T) + \\epsilon / n_{items}`, with
:math:`z_{u,\\cdot}` the normal scores of the ranks of the policy's scores for user u — like the logging policy. That is
what makes it estimable from logs: a deterministic top-K policy on a large catalogue puts all its
mass where the logging policy put almost none, and no estimator can say what it would do.

Scores are standardised per user by their ranks (normal scores), so one temperature fits all.

Kinds of policy (``policy``):

- ``logging``: the policy that logged the data (its probabilities, not re-softmaxed);
- ``random``: uniform over the catalogue;
- ``popularity``, ``content``, ``oracle_relevance``, ``oracle_uplift``: the baselines' scores;
- ``popularity_penalty``: the ``base`` policy's standardised scores minus ``strength`` × standardised
  log popularity (promote the long tail);
- ``diversity``: the ``base`` policy's standardised scores minus ``strength`` × each item's highest
  text similarity to the base policy's top-5 items for the user (move away from more of the same);
- ``bts``: Open Bandit's Bernoulli Thompson-sampling policy from its Beta prior (``prior_bts.yaml``).

The user-feature and item-text edits of DESIGN §1 need the user simulator and come with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

PolicyKind = Literal[
    "logging", "random", "popularity", "content", "oracle_relevance", "oracle_uplift",
    "popularity_penalty", "diversity", "bts", "gnn_causal", "gnn_causal_uplift",
]
Probabilities = Callable[[np.ndarray], np.ndarray]  # users (B,) -> (B, n_items), rows sum to 1


class InterventionSpec(BaseModel):
    """One what-if: a policy to compare against the control."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$", description="Name in reports and metric keys.")
    policy: PolicyKind = Field(..., description="Which policy replaces the control.")
    base: PolicyKind | None = Field(None, description="Base scores for popularity_penalty / diversity.")
    strength: float = Field(1.0, ge=0.0, description="Weight of the popularity penalty or the diversity push.")
    temperature: float = Field(0.3, gt=0.0, description="Softmax temperature over per-user rank normal scores (0.3: the top 1% of items take about half the mass).")
    epsilon: float = Field(0.05, ge=0.0, le=1.0, description="Uniform share mixed in (keeps every item possible).")


DEFAULT_INTERVENTIONS = [
    InterventionSpec(name="random", policy="random"),
    InterventionSpec(name="popularity", policy="popularity"),
    InterventionSpec(name="content", policy="content"),
    InterventionSpec(name="long-tail", policy="popularity_penalty", base="logging", strength=1.0),
    InterventionSpec(name="diverse-content", policy="diversity", base="content", strength=2.0),
    InterventionSpec(name="gnn-relevance", policy="gnn_causal"),
    InterventionSpec(name="gnn-uplift", policy="gnn_causal_uplift"),
    InterventionSpec(name="oracle-uplift", policy="oracle_uplift"),
    InterventionSpec(name="bts", policy="bts"),
]


def standardise(scores: np.ndarray) -> np.ndarray:
    """Per-row normal scores of the ranks, Φ⁻¹(rank / (n + 1)); tied scores share their mean rank.

    Rank-based, so a policy's temperature means the same whatever the scale of its scores (raw
    counts, probabilities, cosines): the top of n = 300 items sits at z ≈ 2.7. (B, n) -> (B, n).
    """
    from scipy.special import ndtri

    return ndtri(average_ranks(scores) / (scores.shape[1] + 1))


def average_ranks(scores: np.ndarray) -> np.ndarray:
    """1-based ranks within each row, ties given their mean rank (vectorised ``rankdata``). (B, n) -> (B, n)."""
    b, n = scores.shape
    order = np.argsort(scores, axis=1, kind="stable")
    ordered = np.take_along_axis(scores, order, axis=1)
    position = np.broadcast_to(np.arange(n), (b, n))
    starts = np.ones((b, n), dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    first = np.maximum.accumulate(np.where(starts, position, 0), axis=1)
    ends = np.ones((b, n), dtype=bool)
    ends[:, :-1] = starts[:, 1:]
    last = np.minimum.accumulate(np.where(ends, position, n - 1)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty((b, n))
    np.put_along_axis(ranks, order, (first + last) / 2.0 + 1.0, axis=1)
    return ranks


def softmax_policy(z: np.ndarray, temperature: float, epsilon: float) -> np.ndarray:
    """(1 − ε) softmax(z / T) + ε / n, row-wise. (B, n) -> (B, n), rows sum to 1."""
    logits = z / temperature
    logits = logits - logits.max(axis=1, keepdims=True)
    soft = np.exp(logits)
    soft /= soft.sum(axis=1, keepdims=True)
    return (1.0 - epsilon) * soft + epsilon / z.shape[1]


def penalised_scores(base: np.ndarray, log_popularity: np.ndarray, strength: float) -> np.ndarray:
    """z(base) − strength · z(log popularity): the long tail moves up. (B, n) -> (B, n)."""
    return standardise(base) - strength * standardise(log_popularity[None, :])


def diversified_scores(base: np.ndarray, item_vectors: np.ndarray, strength: float, top: int = 5) -> np.ndarray:
    """z(base) − strength · max cosine to the user's top-``top`` items under ``base``. (B, n) -> (B, n).

    ``item_vectors``: (n, d) unit vectors. The top items themselves get the full penalty (cosine 1),
    so the policy spreads its mass over items unlike them.
    """
    picks = np.argpartition(-base, min(top, base.shape[1] - 1), axis=1)[:, :top]  # (B, top), any order
    similarity = (item_vectors[picks] @ item_vectors.T).max(axis=1)  # (B, top, n) -> (B, n)
    return standardise(base) - strength * similarity


def from_scores(score_fn: Callable[[np.ndarray], np.ndarray], spec: InterventionSpec) -> Probabilities:
    return lambda users: softmax_policy(standardise(score_fn(users)), spec.temperature, spec.epsilon)


def normalised(prob_fn: Callable[[np.ndarray], np.ndarray]) -> Probabilities:
    """Scores that already are probabilities up to scale (e.g. logged propensities), rows renormalised."""

    def probabilities(users: np.ndarray) -> np.ndarray:
        p = np.clip(prob_fn(users), 0.0, None)
        total = p.sum(axis=1, keepdims=True)
        return np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / p.shape[1])

    return probabilities


def uniform(n_items: int) -> Probabilities:
    return lambda users: np.full((len(users), n_items), 1.0 / n_items)


SlotPolicy = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (users (B,), slots (B,)) -> (B, n_items)


@dataclass(frozen=True)
class PolicySources:
    """What interventions can be built from (all aligned to the split's user/item indices).

    ``scores``: baseline name -> users -> (B, n_items) scores; ``logging``: users -> the logging
    policy's propensity-like scores; ``log_popularity`` (n_items,) log(1 + training engagements);
    ``item_vectors`` (n_items, d) text embeddings; ``bts_prior`` (alpha, beta) per item.
    """

    n_items: int
    n_slots: int
    scores: dict[str, Callable[[np.ndarray], np.ndarray]]
    skipped: dict[str, str]
    logging: Callable[[np.ndarray], np.ndarray] | None
    log_popularity: np.ndarray
    item_vectors: np.ndarray | None = None
    bts_prior: tuple[np.ndarray, np.ndarray] | None = None
    seed: int = 0


@dataclass(frozen=True)
class SlotFree:
    """A policy whose distribution is the same in every slot; ``per_user`` lets callers evaluate
    it once per user instead of once per logged round."""

    per_user: Probabilities

    def __call__(self, users: np.ndarray, slots: np.ndarray) -> np.ndarray:
        return self.per_user(users)


def slot_free(probabilities: Probabilities) -> SlotPolicy:
    return SlotFree(probabilities)


def control_policy(kind: str, sources: PolicySources) -> SlotPolicy:
    """The policy that logged the evaluation rounds: the logging policy, or uniform for randomized data."""
    if kind == "random" or sources.logging is None:
        return slot_free(uniform(sources.n_items))
    return slot_free(normalised(sources.logging))


def build_intervention(spec: InterventionSpec, sources: PolicySources) -> SlotPolicy | str:
    """The intervention's per-slot policy, or the reason the data cannot support it."""
    kind = spec.policy
    if kind == "random":
        return slot_free(uniform(sources.n_items))
    if kind == "logging":
        if sources.logging is None:
            return "the data do not say how the logging policy scored items"
        return slot_free(normalised(sources.logging))
    if kind == "bts":
        if sources.bts_prior is None:
            return "Bernoulli-TS needs a Beta prior per item (Open Bandit's prior_bts.yaml)"
        from models.bandit_policies import bernoulli_ts_action_dist

        alpha, beta = sources.bts_prior
        dist = np.asarray(bernoulli_ts_action_dist(alpha, beta, min(sources.n_slots, len(alpha)), random_state=sources.seed))[0]
        dist = (1 - spec.epsilon) * dist + spec.epsilon / sources.n_items  # (n_items, n_slots)
        return lambda users, slots: dist[:, np.minimum(slots, dist.shape[1] - 1)].T
    if kind in ("popularity_penalty", "diversity"):
        base = spec.base or "logging"
        base_fn = sources.logging if base == "logging" else sources.scores.get(base)
        if base_fn is None:
            return f"its base policy {base!r} is not available ({sources.skipped.get(base, 'no scores')})"
        if kind == "popularity_penalty":
            return slot_free(lambda users: softmax_policy(
                penalised_scores(base_fn(users), sources.log_popularity, spec.strength), spec.temperature, spec.epsilon))
        if sources.item_vectors is None:
            return "the diversity re-rank needs item text embeddings"
        vectors = sources.item_vectors
        return slot_free(lambda users: softmax_policy(
            diversified_scores(base_fn(users), vectors, spec.strength), spec.temperature, spec.epsilon))
    if kind not in sources.scores:
        return sources.skipped.get(kind, f"policy {kind!r} is not available")
    return slot_free(from_scores(sources.scores[kind], spec))
