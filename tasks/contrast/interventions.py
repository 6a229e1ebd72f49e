"""Declarative interventions: what-ifs written in the config, turned into per-slot action distributions.

An intervention is one kind of what-if (``kind``), a pydantic model with one hook,
:meth:`InterventionSpec.build`, that turns it into a :data:`SlotPolicy` on the evaluation rounds
(or says why the data cannot support it), and feature edits a second one, :meth:`InterventionSpec.edit`,
that says what changes in users' or items' features (the simulator answers those).
:data:`Intervention` is the discriminated union the config holds; a YAML entry without ``kind`` is
a ``policy_swap``. Kinds: ``policy_swap``, ``user_edit`` (shift a segment's interest toward or away
from a topic), ``item_edit`` (rewrite items to other topics or text), ``population_shift``
(re-weight the user mix).

``policy_swap`` replaces the ranking policy. Each swap is *stochastic* — every slot is drawn from a
softmax over per-user normal scores of the policy's scores, mixed with uniform
(:mod:`recause.models.policies.stochastic`) — like the logging policy. That is what makes it
estimable from logs: a deterministic top-K policy on a large catalogue puts all its mass where the
logging policy put almost none, and no estimator can say what it would do.

Policies (``policy``), each built by one function in :data:`POLICY_BUILDERS` (any other name is
looked up among the scored policies — baselines and the causal GNN's):

- ``logging``: the policy that logged the data (its probabilities, not re-softmaxed);
- ``random``: uniform over the catalogue;
- ``popularity``, ``content``, ``oracle_relevance``, ``oracle_uplift``, ``gnn_causal``,
  ``gnn_causal_uplift``: the scored policies;
- ``popularity_penalty``: the ``base`` policy's standardised scores minus ``strength`` × standardised
  log popularity (promote the long tail);
- ``diversity``: the ``base`` policy's standardised scores minus ``strength`` × each item's highest
  text similarity to the base policy's top-5 items for the user (move away from more of the same);
- ``bts``: Open Bandit's Bernoulli Thompson-sampling policy from its Beta prior.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

import numpy as np
from pydantic import BeforeValidator, Field, model_validator

from recause.models.policies.stochastic import diversified_scores, penalised_scores, softmax_policy, standardise
from recause.tasks.config import Section
from recause.tasks.contrast.sources import PolicySources

if TYPE_CHECKING:
    from recause.tasks.features.build import TextFeatures
    from recause.tasks.simulate.edits import EditContext, FeatureEdit

PolicyKind = Literal[
    "logging", "random", "popularity", "content", "oracle_relevance", "oracle_uplift",
    "popularity_penalty", "diversity", "bts", "gnn_causal", "gnn_causal_uplift",
]
Probabilities = Callable[[np.ndarray], np.ndarray]  # users (B,) -> (B, n_items), rows sum to 1
SlotPolicy = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (users (B,), slots (B,)) -> (B, n_items)


class InterventionSpec(Section, ABC):
    """One what-if to compare with the control. Kinds differ in :meth:`build`."""

    kind: str
    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$", description="Name in reports and metric keys.")
    is_feature_edit: ClassVar[bool] = False

    @abstractmethod
    def build(self, sources: PolicySources) -> SlotPolicy | str:
        """The intervention's per-slot policy on ``sources``' catalogue, or why the data cannot support it."""

    @property
    def deploys(self) -> str | None:
        """The policy this intervention puts in front of users, when it is a policy of its own."""
        return None

    def edit(self, context: EditContext) -> FeatureEdit | str | None:
        """What the intervention changes in users' or items' features (None: it changes none — a
        policy swap), or why the data cannot support the change."""
        return None

    def named_topics(self) -> list[str]:
        """The text-feature topics the intervention names (checked as soon as the topics exist: :func:`check_topics`)."""
        return []


class PolicySwap(InterventionSpec):
    """Swap the ranking policy for ``policy`` (stochastic: softmax over rank normal scores + ε uniform)."""

    kind: Literal["policy_swap"] = "policy_swap"
    policy: PolicyKind = Field(..., description="Which policy replaces the control.")
    base: PolicyKind | None = Field(None, description="Base scores for popularity_penalty / diversity (default: logging).")
    strength: float = Field(1.0, ge=0.0, description="Weight of the popularity penalty or the diversity push.")
    temperature: float = Field(0.3, gt=0.0, description="Softmax temperature over per-user rank normal scores (0.3: the top 1% of items take about half the mass).")
    epsilon: float = Field(0.05, ge=0.0, le=1.0, description="Uniform share mixed in (keeps every item possible).")

    def build(self, sources: PolicySources) -> SlotPolicy | str:
        return POLICY_BUILDERS.get(self.policy, _scored)(self, sources)

    @property
    def deploys(self) -> str:
        return self.policy


FEATURE_EDIT = ("a feature edit: no log holds outcomes under edited features, so no off-policy estimator can "
                "answer it; the simulator does (simulate.enabled)")


class UserEdit(InterventionSpec):
    """Shift a segment's interest toward a topic (δ > 0) or away from it (δ < 0), or replace its profile text."""

    is_feature_edit: ClassVar[bool] = True

    kind: Literal["user_edit"]
    segment: str | None = Field(None, description="Users whose interest moves (a value of the users' segment column); None = all.")
    topic: str | None = Field(None, min_length=1, description="The topic: a term of one text-feature topic, or its number.")
    delta: float = Field(0.3, ge=-1.0, le=1.0, description="δ > 0: θ' = (1 − δ)θ + δ·e_topic; δ < 0: the topic's share shrinks by |δ|.")
    text: str | None = Field(None, min_length=1, description="Instead of a topic: the users' new profile text (their text "
                             "vector becomes its embedding; their engagement-based interest proxies stay).")

    @model_validator(mode="after")
    def _topic_or_text(self) -> UserEdit:
        if (self.topic is None) == (self.text is None):
            raise ValueError("a user edit either shifts interest toward a topic (topic, delta) or replaces profile text (text)")
        return self

    def build(self, sources: PolicySources) -> SlotPolicy | str:
        return FEATURE_EDIT

    def named_topics(self) -> list[str]:
        return [self.topic] if self.topic is not None else []

    def edit(self, context: EditContext) -> FeatureEdit | str:
        from recause.tasks.simulate.edits import interest_shift, profile_rewrite

        if self.text is not None:
            return profile_rewrite(context, self.segment, self.text)
        return interest_shift(context, self.segment, self.topic, self.delta)


class ItemEdit(InterventionSpec):
    """Rewrite items — by id, or every item of a topic — to other topics or to a given text."""

    is_feature_edit: ClassVar[bool] = True

    kind: Literal["item_edit"]
    items: list[int] | None = Field(None, description="Item ids to rewrite.")
    topic: str | None = Field(None, description="Rewrite every item of this topic (a term of one text-feature topic, or its number).")
    set_topics: list[str] = Field([], description="The topics the items are rewritten to (equal shares; the synthetic world writes the text).")
    text: str | None = Field(None, description="The new text of every rewritten item (outside the synthetic world).")

    @model_validator(mode="after")
    def _what_and_how(self) -> ItemEdit:
        if (self.items is None) == (self.topic is None):
            raise ValueError("an item edit names either items (ids) or a topic whose items it rewrites")
        if not self.set_topics and self.text is None:
            raise ValueError("an item edit needs set_topics or text: what the items become")
        return self

    def build(self, sources: PolicySources) -> SlotPolicy | str:
        return FEATURE_EDIT

    def named_topics(self) -> list[str]:
        return ([self.topic] if self.topic is not None else []) + list(self.set_topics)

    def edit(self, context: EditContext) -> FeatureEdit | str:
        from recause.tasks.simulate.edits import item_rewrite

        return item_rewrite(context, self.items, self.topic, self.set_topics, self.text)


class PopulationShift(InterventionSpec):
    """Re-weight the user mix: each named segment's users count ``weights[segment]`` times."""

    is_feature_edit: ClassVar[bool] = True

    kind: Literal["population_shift"]
    weights: dict[str, float] = Field(..., min_length=1, description="Segment -> weight (≥ 0; unnamed segments keep 1).")

    @model_validator(mode="after")
    def _non_negative(self) -> PopulationShift:
        bad = {k: v for k, v in self.weights.items() if not v >= 0}
        if bad or not any(v > 0 for v in self.weights.values()):
            raise ValueError(f"population weights must be ≥ 0 and not all 0, got {self.weights}")
        return self

    def build(self, sources: PolicySources) -> SlotPolicy | str:
        return FEATURE_EDIT

    def edit(self, context: EditContext) -> FeatureEdit | str:
        from recause.tasks.simulate.edits import population_reweighting

        return population_reweighting(context, self.weights)


def check_topics(interventions: Sequence[InterventionSpec], features: TextFeatures) -> None:
    """Raise :class:`~recause.tasks.config.ConfigurationError` for the first topic an intervention names
    that the text features do not have, as its edit would in the contrast stage — but as soon as the
    features stage has found the topics, so a misspelt topic costs seconds, not a trained model."""
    from recause.tasks.simulate.edits import resolve_topic

    for spec in interventions:
        for topic in spec.named_topics():
            resolve_topic(features, topic)


def _default_kind(value: Any) -> Any:
    """A spec written without ``kind`` is a policy swap (the form presets used before kinds existed)."""
    return {"kind": "policy_swap", **value} if isinstance(value, dict) and "kind" not in value else value


Intervention = Annotated[Union[PolicySwap, UserEdit, ItemEdit, PopulationShift], Field(discriminator="kind"),
                         BeforeValidator(_default_kind)]
"""Any intervention kind, told apart by ``kind``."""



DEFAULT_INTERVENTIONS: tuple[InterventionSpec, ...] = (
    PolicySwap(name="random", policy="random"),
    PolicySwap(name="popularity", policy="popularity"),
    PolicySwap(name="content", policy="content"),
    PolicySwap(name="long-tail", policy="popularity_penalty", base="logging", strength=1.0),
    PolicySwap(name="diverse-content", policy="diversity", base="content", strength=2.0),
    PolicySwap(name="gnn-relevance", policy="gnn_causal"),
    PolicySwap(name="gnn-uplift", policy="gnn_causal_uplift"),
    PolicySwap(name="oracle-uplift", policy="oracle_uplift"),
    PolicySwap(name="bts", policy="bts"),
    UserEdit(kind="user_edit", name="interest-topic-0", topic="0", delta=0.3),
    ItemEdit(kind="item_edit", name="rewrite-topic-0-to-1", topic="0", set_topics=["1"]),
    PopulationShift(kind="population_shift", name="twice-the-heavy-users", weights={"heavy": 2.0}),
)


# ---------------------------------------------------------------------------------------------- distributions
@dataclass(frozen=True)
class SlotFree:
    """A policy whose distribution is the same in every slot; ``per_user`` lets callers evaluate
    it once per user instead of once per logged round."""

    per_user: Probabilities

    def __call__(self, users: np.ndarray, slots: np.ndarray) -> np.ndarray:
        return self.per_user(users)


def from_scores(score_fn: Callable[[np.ndarray], np.ndarray], temperature: float, epsilon: float) -> Probabilities:
    """Softmax over the per-user rank normal scores of ``score_fn``, ε uniform mixed in."""
    return lambda users: softmax_policy(standardise(score_fn(users)), temperature, epsilon)


def normalised(prob_fn: Callable[[np.ndarray], np.ndarray]) -> Probabilities:
    """Scores that already are probabilities up to scale (e.g. logged propensities), rows renormalised."""

    def probabilities(users: np.ndarray) -> np.ndarray:
        p = np.clip(prob_fn(users), 0.0, None)
        total = p.sum(axis=1, keepdims=True)
        return np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / p.shape[1])

    return probabilities


def uniform(n_items: int) -> Probabilities:
    return lambda users: np.full((len(users), n_items), 1.0 / n_items)


def control_policy(kind: str, sources: PolicySources) -> SlotPolicy:
    """The policy that logged the evaluation rounds: the logging policy, or uniform for randomized data."""
    if kind == "random" or sources.logging is None:
        return SlotFree(uniform(sources.n_items))
    return SlotFree(normalised(sources.logging))


# ---------------------------------------------------------------------------------------------- one builder per policy
def _random(spec: PolicySwap, sources: PolicySources) -> SlotPolicy | str:
    return SlotFree(uniform(sources.n_items))


def _logging(spec: PolicySwap, sources: PolicySources) -> SlotPolicy | str:
    if sources.logging is None:
        return "the data do not say how the logging policy scored items"
    return SlotFree(normalised(sources.logging))


def _bts(spec: PolicySwap, sources: PolicySources) -> SlotPolicy | str:
    if sources.bts_prior is None:
        return "Bernoulli-TS needs a Beta prior per item (Open Bandit's prior_bts.yaml)"
    from recause.models.policies.bandit import bernoulli_ts_action_dist

    alpha, beta = sources.bts_prior
    dist = np.asarray(bernoulli_ts_action_dist(alpha, beta, min(sources.n_slots, len(alpha)), random_state=sources.seed))[0]
    dist = (1 - spec.epsilon) * dist + spec.epsilon / sources.n_items  # (n_items, n_slots)
    return lambda users, slots: dist[:, np.minimum(slots, dist.shape[1] - 1)].T


def _base_scores(spec: PolicySwap, sources: PolicySources) -> Callable[[np.ndarray], np.ndarray] | str:
    base = spec.base or "logging"
    base_fn = sources.logging if base == "logging" else sources.scores.get(base)
    if base_fn is None:
        return f"its base policy {base!r} is not available ({sources.skipped.get(base, 'no scores')})"
    return base_fn


def _popularity_penalty(spec: PolicySwap, sources: PolicySources) -> SlotPolicy | str:
    base_fn = _base_scores(spec, sources)
    if isinstance(base_fn, str):
        return base_fn
    return SlotFree(lambda users: softmax_policy(
        penalised_scores(base_fn(users), sources.log_popularity, spec.strength), spec.temperature, spec.epsilon))


def _diversity(spec: PolicySwap, sources: PolicySources) -> SlotPolicy | str:
    base_fn = _base_scores(spec, sources)
    if isinstance(base_fn, str):
        return base_fn
    if sources.item_vectors is None:
        return "the diversity re-rank needs item text embeddings"
    vectors = sources.item_vectors
    return SlotFree(lambda users: softmax_policy(
        diversified_scores(base_fn(users), vectors, spec.strength), spec.temperature, spec.epsilon))


def _scored(spec: PolicySwap, sources: PolicySources) -> SlotPolicy | str:
    if spec.policy not in sources.scores:
        return sources.skipped.get(spec.policy, f"policy {spec.policy!r} is not available")
    return SlotFree(from_scores(sources.scores[spec.policy], spec.temperature, spec.epsilon))


POLICY_BUILDERS: dict[str, Callable[[PolicySwap, PolicySources], SlotPolicy | str]] = {
    "random": _random,
    "logging": _logging,
    "bts": _bts,
    "popularity_penalty": _popularity_penalty,
    "diversity": _diversity,
}
"""Policies built by their own rule; every other policy name ranks by its scores (:func:`_scored`)."""
