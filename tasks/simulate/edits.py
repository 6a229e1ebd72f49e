"""Feature edits: what the simulator changes for an intervention on users or items, and the same
intervention on the synthetic world, whose exact answer it is scored against.

A :class:`FeatureEdit` holds, for the simulator, new text vectors for some users or items (their
states are remade through the fitted projections) or per-user weights of the population, and, for
the synthetic world, a function returning the edited world. Edits name topics by a word of the
text-feature stage's topic terms (or the topic number); on the synthetic world each such topic is
matched to the world topic most of its items belong to.

Estimands (per logged round, the control policy in charge):

- **direct effect**: the same slates (the control's distribution under the original features),
  outcomes under the edited features;
- **total effect**: the control policy re-ranks under the edited features too (the world's logging
  policy with its edited interest estimates; for the simulator, the control's distribution
  re-weighted by the logging-policy imitation's change, :func:`re_ranked`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recause.models.world.scm import SyntheticWorld
from recause.tasks.config import ConfigurationError
from recause.tasks.data.schema import Dataset
from recause.tasks.data.split import Split
from recause.tasks.features.build import TextFeatures, item_documents
from recause.tasks.simulate.data import States

Embed = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class EditContext:
    """What edits are made from: the split, the validated dataset (with its world when synthetic),
    the text features, the simulator's states and an ``embed`` function for rewritten text."""

    split: Split
    dataset: Dataset
    features: TextFeatures | None
    states: States
    embed: Embed | None = None


@dataclass(frozen=True)
class FeatureEdit:
    """One intervention on features, for the simulator and (where there is one) the world.

    ``user_rows``/``user_vectors``: split indices of edited users and their new text vectors;
    ``item_rows``/``item_vectors`` likewise for items; ``user_weight`` (n_users,) multiplies each
    user's rounds (a population shift); ``world``: the edited synthetic world (None elsewhere).
    """

    user_rows: np.ndarray | None = None
    user_vectors: np.ndarray | None = None
    user_topics: np.ndarray | None = None
    item_rows: np.ndarray | None = None
    item_vectors: np.ndarray | None = None
    item_topics: np.ndarray | None = None
    user_weight: np.ndarray | None = None
    world: SyntheticWorld | None = None

    def states(self, states: States) -> tuple[np.ndarray, np.ndarray | None]:
        """(user states, item states or None when unchanged) under the edit."""
        if self.user_rows is None and self.item_rows is None:
            return states.user, None
        users, items = states.edited(self.user_rows, self.user_vectors, self.item_rows, self.item_vectors,
                                     None if self.user_topics is None or not states.n_topics else self.user_topics,
                                     None if self.item_topics is None or not states.n_topics else self.item_topics)
        return users, (None if self.item_rows is None else items)


# ---------------------------------------------------------------------------------------------- naming
def resolve_topic(features: TextFeatures, topic: str) -> int:
    """The text-feature topic a user names: its number, or a word among its terms (exactly one match)."""
    table = features.topics
    if topic.strip().isdigit() and int(topic) in set(table["topic"]):
        return int(topic)
    word = topic.strip().lower()
    matches = [int(row.topic) for row in table.itertuples() if word in [t.strip().lower() for t in str(row.terms).split(",")]
               or word in [t.strip().lower() for t in str(row.label).split("/")]]
    if len(matches) != 1:
        options = "; ".join(f"{row.topic}: {row.label}" for row in table.itertuples())
        found = "no topic has" if not matches else f"{len(matches)} topics have"
        raise ConfigurationError(f"topic {topic!r}: {found} that term; name one by number or a term of exactly one topic ({options})")
    return matches[0]


def segment_rows(states: States, segment: str | None) -> np.ndarray:
    """Split indices of the users in ``segment`` (all users when None)."""
    if segment is None:
        return np.arange(len(states.user))
    if segment not in states.conditions:
        raise ConfigurationError(f"segment {segment!r} is not in the data; segments: {', '.join(states.conditions)}")
    return np.flatnonzero(states.user_condition == states.conditions.index(segment))


def world_topic(features: TextFeatures, world: SyntheticWorld, split: Split, topic: int) -> int:
    """The world topic most items of text topic ``topic`` belong to."""
    members = split.items.ids[features.item_topics == topic].astype(np.int64)
    return int(np.bincount(world.main_topics(members), minlength=world.config.n_topics).argmax())


def topic_direction(features: TextFeatures, topic: int) -> np.ndarray:
    """(t,) unit vector: the mean text vector of the topic's items."""
    centre = features.item_vectors[features.item_topics == topic].mean(axis=0)
    return centre / max(np.linalg.norm(centre), 1e-12)


def _normalise(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


# ---------------------------------------------------------------------------------------------- the edits
def interest_shift(context: EditContext, segment: str | None, topic: str, delta: float) -> FeatureEdit | str:
    """Users of ``segment`` move their interest toward topic (δ > 0: θ' = (1−δ)θ + δ·e_t) or away from it
    (δ < 0: θ'_t = (1−|δ|)θ_t, renormalised); the logging policy's estimate θ̂ moves the same way."""
    if context.features is None:
        return "an interest shift needs text features (topics and user vectors); the data have no text"
    rows = segment_rows(context.states, segment)
    f = resolve_topic(context.features, topic)
    c = topic_direction(context.features, f)
    v = context.states.user_text[rows]
    if delta >= 0:
        vectors = _normalise((1 - delta) * v + delta * c[None, :])
    else:
        vectors = _normalise(v + delta * (v @ c)[:, None] * c[None, :])
    topics = _shift(context.states.user_topics()[rows], f, delta) if context.states.n_topics else None
    world = None
    if context.dataset.world is not None:
        w = context.dataset.world
        t = world_topic(context.features, w, context.split, f)
        ids = context.split.users.ids[rows].astype(np.int64)
        world = w.with_interests(ids, _shift(w.theta[ids], t, delta), _shift(w.theta_hat[ids], t, delta))
    return FeatureEdit(user_rows=rows, user_vectors=vectors, user_topics=topics, world=world)


def profile_rewrite(context: EditContext, segment: str | None, text: str) -> FeatureEdit | str:
    """Users of ``segment`` get ``text`` as their profile: their text vectors become its embedding
    (L2-normalised); their engagement-based topic shares stay. On the synthetic world what users
    write is not what they want: their interests and the logging policy's estimates of them do not
    move, so the exact effect of both estimands is nil there — a simulator that answers otherwise
    reads text as interest."""
    if context.features is None:
        return "a profile rewrite needs text features; the data have no text"
    if context.embed is None:
        return "a profile rewrite needs the text encoder to embed the new text"
    rows = segment_rows(context.states, segment)
    vector = _normalise(np.asarray(context.embed([text]), dtype=np.float64))
    return FeatureEdit(user_rows=rows, user_vectors=np.repeat(vector, len(rows), axis=0), world=context.dataset.world)


def _shift(theta: np.ndarray, topic: int, delta: float) -> np.ndarray:
    if delta >= 0:
        out = (1 - delta) * theta
        out[:, topic] += delta
        return out
    out = theta.copy()
    out[:, topic] *= 1 + delta
    return out / out.sum(axis=1, keepdims=True)


def item_rewrite(context: EditContext, items: Sequence[int] | None, topic: str | None, set_topics: Sequence[str],
                 text: str | None) -> FeatureEdit | str:
    """Items (by id, or every item of ``topic``) rewritten: to ``text``, or on the synthetic world to
    a text the world writes for topics ``set_topics`` (their topic mix becomes those topics, equally)."""
    if context.features is None:
        return "an item rewrite needs text features; the data have no text"
    if context.embed is None:
        return "an item rewrite needs the text encoder to embed the new text"
    split = context.split
    if items is not None:
        known = pd.Index(split.items.ids)
        positions = known.get_indexer(np.asarray(items))
        if (positions < 0).any():
            raise ConfigurationError(f"items {np.asarray(items)[positions < 0][:5].tolist()} are not in the data")
        rows = positions.astype(np.int64)
    elif topic is not None:
        rows = np.flatnonzero(context.features.item_topics == resolve_topic(context.features, topic))
    else:
        raise ConfigurationError("an item edit needs items (ids) or a topic whose items it rewrites")
    world, new_text, mix_text = None, None, None
    if set_topics:
        topics = [resolve_topic(context.features, t) for t in set_topics]
        if context.states.n_topics:
            mix_text = np.zeros((len(rows), context.states.n_topics))
            mix_text[:, topics] = 1.0 / len(topics)
        if context.dataset.world is not None:
            w = context.dataset.world
            mix = np.zeros((len(rows), w.config.n_topics))
            for f in topics:
                mix[:, world_topic(context.features, w, split, f)] += 1.0 / len(topics)
            world = w.with_item_topics(split.items.ids[rows].astype(np.int64), mix)
            new_text = item_documents(w.item_texts_for(mix)).tolist()
    if text is not None:
        new_text = [text] * len(rows)
    if new_text is None:
        return "an item rewrite outside the synthetic world needs the new text (text:)"
    return FeatureEdit(item_rows=rows, item_vectors=np.asarray(context.embed(new_text), dtype=np.float64),
                       item_topics=mix_text, world=world)


def population_reweighting(context: EditContext, weights: dict[str, float]) -> FeatureEdit | str:
    """Each segment's users weigh ``weights[segment]`` times as much (unnamed segments: 1)."""
    states = context.states
    if states.conditions == ("all",):
        return "a population shift needs user segments (a segment column in the users table)"
    factor = np.ones(len(states.user))
    for segment, value in weights.items():
        factor[segment_rows(states, segment)] = value
    return FeatureEdit(user_weight=factor)


# ---------------------------------------------------------------------------------------------- policies under an edit
def re_ranked(control: np.ndarray, log_before: np.ndarray, log_after: np.ndarray) -> np.ndarray:
    """The control's distribution (n, n_items) moved as the logging-policy imitation moves under an
    edit: π' ∝ π · π̂0'/π̂0, rows renormalised (unchanged where the imitation does not change)."""
    shift = log_after - log_before
    out = control * np.exp(shift - shift.max(axis=1, keepdims=True))
    return out / out.sum(axis=1, keepdims=True)
