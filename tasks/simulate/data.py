"""From a split to what the simulator trains on: user and item states, logged slates, organic finds.

- **States** (:class:`States`): the causal GNN's node states when the flow trained it (its outcome
  model is the generator's pre-training; a text edit re-encodes the graph); otherwise, per user, the
  PCA projection of their text-and-history vector (the text-feature stage's), their table's feature
  columns (numbers as they are, categories one-hot) and their training activity, and per item, the
  projection of its text vector, its feature columns and its training popularity — standardised
  with the training statistics, the projections kept (:class:`Projection`) so an edited text
  vector maps to an edited state.
- **Slates** (:class:`Slates`): the exposed rows of a split part grouped into the slates they were
  shown in — a user's consecutive rows (by time) whose positions increase, within
  ``gap_seconds``; without positions every row is a slate of one. Each slate keeps its logged
  per-slot propensities and gets an importance weight toward a reference policy
  :math:`\\pi_{ref} = (1-\\alpha)\\pi_0 + \\alpha/n_{items}`: :math:`\\min(\\prod_k \\pi_{ref}/\\pi_0, w_{max})`.
- **Organic finds** (synthetic world): unexposed positives, for the P(Y=1 | do(E=0)) head.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recause.tasks.data.schema import PROVENANCE, Dataset
from recause.tasks.data.split import Split
from recause.tasks.features.build import TextFeatures

TEXT_COLUMNS = {"title", "text", "categories", "profile_text", "query"}


@dataclass(frozen=True)
class Projection:
    """A fitted linear map of text vectors to ``d`` principal components: (n, t) -> (n, d)."""

    mean: np.ndarray  # (t,)
    components: np.ndarray  # (t, d)

    @classmethod
    def fit(cls, vectors: np.ndarray, dim: int) -> Projection:
        mean = vectors.mean(axis=0)
        _, _, vt = np.linalg.svd(vectors - mean, full_matrices=False)
        return cls(mean, vt[: min(dim, vt.shape[0])].T)

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        return (vectors - self.mean) @ self.components


@dataclass(frozen=True)
class StateMap:
    """Raw parts -> standardised state: text vectors (projected) beside the other columns."""

    projection: Projection | None
    mean: np.ndarray
    std: np.ndarray

    def __call__(self, text: np.ndarray | None, other: np.ndarray) -> np.ndarray:
        parts = ([self.projection(text)] if self.projection is not None and text is not None else []) + [other]
        return ((np.concatenate(parts, axis=1) - self.mean) / self.std).astype(np.float32)


@dataclass(frozen=True)
class States:
    """User states (n_users, d_u) and item states (n_items, d_i), and how to remake them after an edit.

    ``source``: ``"gnn"`` (the causal GNN's node states) or ``"features"`` (projected text vectors,
    table columns, activity/popularity). With text topics (``n_topics`` = T > 0) every state ends
    with side features: a user's topic shares of their training engagements and log activity, an
    item's topic mix (its text topic) and log popularity (standardised) — the interest proxies an
    edit changes the way it changes the world's interests or topics. ``user_text``/``item_text``:
    the text vectors the states were made from (None without text); ``encode(user_text, item_text)``
    remakes both states' main parts from edited text vectors (None when text does not enter them).
    ``user_condition`` (n_users,) the segment code of each user (0 without segments), ``conditions`` their names.
    """

    user: np.ndarray
    item: np.ndarray
    source: str
    user_text: np.ndarray | None
    item_text: np.ndarray | None
    encode: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None
    user_condition: np.ndarray
    conditions: tuple[str, ...]
    n_topics: int = 0

    @property
    def side_width(self) -> int:
        return self.n_topics + 1 if self.n_topics else 0

    def user_topics(self) -> np.ndarray:
        """(n_users, T) each user's topic shares (the side features' interest proxy)."""
        return self.user[:, -self.side_width : -1]

    def item_topics(self) -> np.ndarray:
        """(n_items, T) each item's topic mix."""
        return self.item[:, -self.side_width : -1]

    def edited(self, user_rows: np.ndarray | None = None, user_vectors: np.ndarray | None = None,
               item_rows: np.ndarray | None = None, item_vectors: np.ndarray | None = None,
               user_topics: np.ndarray | None = None, item_topics: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(user states, item states) after replacing some users' and/or items' text vectors
        (``*_vectors`` for ``*_rows``) and/or their topic shares (``*_topics``, for the same rows)."""
        user, item = self.user.copy(), self.item.copy()
        if user_vectors is not None or item_vectors is not None:
            if self.encode is None:
                raise ValueError(f"the simulator's states ({self.source}) do not read text, so a text edit cannot reach them")
            user_text, item_text = self.user_text.copy(), self.item_text.copy()
            if user_vectors is not None:
                user_text[user_rows] = user_vectors
            if item_vectors is not None:
                item_text[item_rows] = item_vectors
            user_main, item_main = self.encode(user_text, item_text)
            user[:, : user_main.shape[1]], item[:, : item_main.shape[1]] = user_main, item_main
        if user_topics is not None:
            user[np.ix_(user_rows, np.arange(user.shape[1] - self.side_width, user.shape[1] - 1))] = user_topics
        if item_topics is not None:
            item[np.ix_(item_rows, np.arange(item.shape[1] - self.side_width, item.shape[1] - 1))] = item_topics
        return user, item


def table_columns(frame: pd.DataFrame, id_column: str, max_categories: int = 20) -> np.ndarray:
    """(n, c) numeric view of a users/items table's feature columns: numbers as they are, booleans
    as 0/1, categories and strings one-hot over their ``max_categories`` most frequent values."""
    parts = []
    for column in frame.columns:
        if column in (id_column, *PROVENANCE) or column in TEXT_COLUMNS:
            continue
        values = frame[column]
        if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            parts.append(pd.to_numeric(values, errors="coerce").fillna(0.0).to_numpy(np.float64)[:, None])
        else:
            text = values.astype("string").fillna("")
            top = text.value_counts().index[:max_categories]
            parts.append(np.stack([(text == v).to_numpy(np.float64) for v in top], axis=1))
    return np.concatenate(parts, axis=1) if parts else np.zeros((len(frame), 0))


def build_states(split: Split, dataset: Dataset, features: TextFeatures | None, text_dim: int, gnn=None) -> States:
    """User and item states aligned to the split's indices (see the module docstring).

    ``gnn``: a fitted causal model (:class:`recause.tasks.train.fit.TrainedModel`); its node states
    are the states, re-encoded through the GNN after a text edit.
    """
    users = dataset.users.set_index("user_id").loc[split.users.ids].reset_index()
    if "segment" in users.columns:
        segment = pd.Categorical(users["segment"].astype("string").fillna("unknown"))
        condition, names = segment.codes.astype(np.int64), tuple(str(c) for c in segment.categories)
    else:
        condition, names = np.zeros(split.n_users, dtype=np.int64), ("all",)
    user_text = item_text = None
    if features is not None:
        user_text, item_text = features.user_vectors.astype(np.float64), features.item_vectors.astype(np.float64)
    n_users = split.n_users
    # the side features of one cross-fitting fold (half the training data): what the model trains with
    # (each slot with its pair's other fold), so what it answers with is alike in spread
    side_user, side_item, n_topics = side_features(split, features, fold=0)
    if gnn is not None:
        nodes = gnn.node_states()
        encode = GnnEncoding(gnn, n_users) if features is not None and gnn.config.use_text else None
        return States(np.c_[nodes[:n_users], side_user].astype(np.float32), np.c_[nodes[n_users:], side_item].astype(np.float32),
                      "gnn", user_text, item_text, encode, condition, names, n_topics)
    items = dataset.items.set_index("item_id").loc[split.items.ids].reset_index()
    train = split.train
    activity = np.log1p(np.bincount(train["user"], minlength=n_users))[:, None]
    popularity = np.log1p(np.bincount(train.loc[train["positive"], "item"], minlength=split.n_items))[:, None]
    user_other = np.concatenate([table_columns(users, "user_id"), activity], axis=1)
    item_other = np.concatenate([table_columns(items, "item_id"), popularity], axis=1)
    user_projection = Projection.fit(user_text, text_dim) if user_text is not None else None
    item_projection = Projection.fit(item_text, text_dim) if item_text is not None else None
    user_map = _standardiser(user_projection, user_text, user_other)
    item_map = _standardiser(item_projection, item_text, item_other)
    encode = FeatureEncoding(user_map, item_map, user_other, item_other) if features is not None else None
    return States(np.c_[user_map(user_text, user_other), side_user].astype(np.float32),
                  np.c_[item_map(item_text, item_other), side_item].astype(np.float32), "features", user_text, item_text,
                  encode, condition, names, n_topics)


def pair_fold(user: np.ndarray, item: np.ndarray) -> np.ndarray:
    """(n,) 0/1: the cross-fitting fold of each (user, item) pair (a fixed hash, the same in every run)."""
    code = (np.asarray(user, dtype=np.uint64) * np.uint64(2654435761) + np.asarray(item, dtype=np.uint64) * np.uint64(40503))
    return ((code >> np.uint64(7)) & np.uint64(1)).astype(np.int64)


def side_features(split: Split, features: TextFeatures | None, prior: float = 0.1,
                  fold: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """(user side (n_users, T + 1), item side (n_items, T + 1), T): each user's topic shares of their
    training engagements (smoothed by ``prior`` per topic) and standardised log activity; each item's
    topic (one-hot; zeros without one) and standardised log popularity. Empty without text topics.

    ``fold``: computed only from the training rows whose pair is *not* in that fold (:func:`pair_fold`)
    — the cross-fitted features a row of that fold trains with, so a click never informs its own features.
    """
    if features is None or (features.item_topics < 0).all():
        return np.zeros((split.n_users, 0)), np.zeros((split.n_items, 0)), 0
    n_topics = int(features.item_topics.max()) + 1
    topic = features.item_topics
    phi = np.zeros((split.n_items, n_topics))
    phi[np.flatnonzero(topic >= 0), topic[topic >= 0]] = 1.0
    train = split.train
    if fold is not None:
        train = train[pair_fold(train["user"].to_numpy(), train["item"].to_numpy()) != fold]
    engaged = train.loc[train["positive"], ["user", "item"]]
    counts = np.zeros((split.n_users, n_topics))
    np.add.at(counts, engaged["user"].to_numpy(), phi[engaged["item"].to_numpy()])
    shares = (counts + prior) / (counts.sum(axis=1, keepdims=True) + prior * n_topics)
    z = lambda x: (x - x.mean()) / (x.std() or 1.0)  # noqa: E731
    activity = z(np.log1p(np.bincount(train["user"], minlength=split.n_users)))
    popularity = z(np.log1p(np.bincount(engaged["item"], minlength=split.n_items)))
    return np.c_[shares, activity], np.c_[phi, popularity], n_topics


def cross_fitted_sides(split: Split, features: TextFeatures | None) -> tuple[np.ndarray, np.ndarray] | None:
    """((2, n_users, T + 1), (2, n_items, T + 1)): the side features of each fold (None without topics)."""
    if features is None or (features.item_topics < 0).all():
        return None
    parts = [side_features(split, features, fold=f) for f in (0, 1)]
    return np.stack([p[0] for p in parts]), np.stack([p[1] for p in parts])


@dataclass(frozen=True)
class GnnEncoding:
    """Text vectors -> (user states, item states): the causal GNN re-encodes its graph with the edited text."""

    gnn: object  # recause.tasks.train.fit.TrainedModel
    n_users: int

    def __call__(self, user_text: np.ndarray, item_text: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The states' main parts (the side features are kept by :meth:`States.edited`)."""
        nodes = self.gnn.node_states(np.concatenate([user_text, item_text]))
        return nodes[: self.n_users].astype(np.float32), nodes[self.n_users :].astype(np.float32)


@dataclass(frozen=True)
class FeatureEncoding:
    """Text vectors -> (user states, item states) through the fitted projections and standardisation."""

    user_map: StateMap
    item_map: StateMap
    user_other: np.ndarray
    item_other: np.ndarray

    def __call__(self, user_text: np.ndarray, item_text: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.user_map(user_text, self.user_other), self.item_map(item_text, self.item_other)


def _standardiser(projection: Projection | None, text: np.ndarray | None, other: np.ndarray) -> StateMap:
    raw = np.concatenate(([projection(text)] if projection is not None else []) + [other], axis=1)
    std = raw.std(axis=0)
    return StateMap(projection, raw.mean(axis=0), np.where(std > 1e-9, std, 1.0))


@dataclass(frozen=True)
class Slates:
    """Logged slates of one split part, padded to ``n_positions`` slots.

    ``user`` (S,) split indices; ``items``, ``positions`` (S, K) int64 (-1 = padding; positions
    0-based); ``clicks``, ``pscore`` (S, K) float (logged per-slot propensity, NaN where unknown);
    ``mask`` (S, K) bool; ``weight`` (S,) the importance weight toward the reference policy.
    """

    user: np.ndarray
    items: np.ndarray
    positions: np.ndarray
    clicks: np.ndarray
    pscore: np.ndarray
    mask: np.ndarray
    weight: np.ndarray

    @property
    def n_positions(self) -> int:
        return self.items.shape[1]

    def __len__(self) -> int:
        return len(self.user)

    def subset(self, rows: np.ndarray) -> Slates:
        return Slates(*(getattr(self, f)[rows] for f in ("user", "items", "positions", "clicks", "pscore", "mask", "weight")))


def group_slates(frame: pd.DataFrame, n_items: int, n_positions: int, *, reference_mix: float, max_weight: float,
                 gap_seconds: float = 3600.0) -> Slates:
    """The exposed rows of ``frame`` (a split part) grouped into slates (see the module docstring)."""
    rows = frame[frame["exposed"].fillna(False).to_numpy(dtype=bool)]
    has_position = "position" in rows.columns and rows["position"].notna().all() and len(rows) > 0
    position = rows["position"].to_numpy(np.int64) - 1 if has_position else np.zeros(len(rows), np.int64)
    seconds = (rows["timestamp"].astype("int64").to_numpy() / 1e9 if "timestamp" in rows.columns
               and rows["timestamp"].notna().all() else np.arange(len(rows), dtype=np.float64) * 2 * gap_seconds)
    user = rows["user"].to_numpy(np.int64)
    order = np.lexsort((position, seconds, user))
    user, position, seconds = user[order], position[order], seconds[order]
    item = rows["item"].to_numpy(np.int64)[order]
    click = rows["positive"].to_numpy(np.float64)[order]
    pscore = rows["propensity"].to_numpy(np.float64)[order] if "propensity" in rows.columns else np.full(len(rows), np.nan)
    new = np.ones(len(rows), dtype=bool)
    if has_position:
        new[1:] = (user[1:] != user[:-1]) | (position[1:] <= position[:-1]) | (seconds[1:] - seconds[:-1] > gap_seconds)
    slate = np.cumsum(new) - 1
    n_slates = int(slate[-1]) + 1 if len(slate) else 0
    column = position if has_position else np.zeros(len(rows), np.int64)
    shape = (n_slates, n_positions)
    items, positions = np.full(shape, -1, np.int64), np.full(shape, -1, np.int64)
    clicks, ps, mask = np.zeros(shape), np.full(shape, np.nan), np.zeros(shape, dtype=bool)
    items[slate, column], positions[slate, column], clicks[slate, column] = item, position, click
    ps[slate, column], mask[slate, column] = pscore, True
    first = np.flatnonzero(new)
    ratio = np.where(mask & np.isfinite(ps), (1 - reference_mix) + reference_mix / (n_items * np.where(ps > 0, ps, 1.0)), 1.0)
    weight = np.minimum(np.exp(np.log(ratio).sum(axis=1)), max_weight)
    return Slates(user[first], items, positions, clicks, ps, mask, weight)


@dataclass(frozen=True)
class OrganicFinds:
    """Unexposed positives of the training part, and the pairs that were exposed (they are no negatives).

    ``user``/``item`` (n,) the finds; ``exposed_codes`` sorted ``user * n_items + item`` of exposed
    pairs; ``retention`` (n_users,) the share of each user's log in the training part.
    """

    user: np.ndarray
    item: np.ndarray
    found_codes: np.ndarray
    exposed_codes: np.ndarray
    retention: np.ndarray


def organic_finds(split: Split) -> OrganicFinds | None:
    """The training part's organic finds, or None when the data have none."""
    train = split.train
    exposed = train["exposed"].fillna(False).to_numpy(dtype=bool)
    organic = ~exposed & train["positive"].to_numpy(dtype=bool)
    if not organic.any():
        return None
    counts = {p: np.bincount(getattr(split, p)["user"].to_numpy(), minlength=split.n_users) for p in ("train", "val", "test")}
    total = counts["train"] + counts["val"] + counts["test"]
    retention = np.where(total > 0, counts["train"] / np.maximum(total, 1), 0.0) if split.kind == "per_user" else np.ones(split.n_users)
    user, item = train["user"].to_numpy(np.int64), train["item"].to_numpy(np.int64)
    codes = user * split.n_items + item
    return OrganicFinds(user[organic], item[organic], np.unique(codes[organic]), np.unique(codes[exposed]), retention)
