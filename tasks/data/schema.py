"""The data model every loader produces and every later stage consumes (README, "Data").

A :class:`Dataset` is three pandas tables plus metadata:

``interactions``
    ``user_id, item_id, timestamp, exposed, outcome`` and, when the source has them,
    ``position, propensity, policy, query`` and context columns (``meta.context_columns``).
``items``
    ``item_id`` and, when the source has them, ``title, text, categories`` and feature columns
    (Open Bandit items have no text at all).
``users``
    ``user_id`` and optionally ``profile_text`` and feature columns.

Every table also carries two provenance columns, ``_source_file`` and ``_source_row``
(1-based line in that file, counting its header), so that a validation failure can name
the exact line a user has to fix. They are not part of the schema proper.

Tables keep the dtypes of their source; :mod:`validations` checks and coerces them. The
row order of ``users`` and ``items`` carries no meaning: stages map ids to integer indices
with :class:`IdIndex`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from recause.models.world.scm import SyntheticWorld

OutcomeKind = Literal["binary", "rating"]

class DatasetError(ValueError):
    """A dataset cannot be read: a missing file or folder, an unknown name, a file that is not
    what its name says (corrupt, binary, UTF-16, a link to nothing), or metadata the data
    contradict. The message says what was expected where, and how to fix it. The CLI exits 3."""


SOURCE_FILE = "_source_file"
SOURCE_ROW = "_source_row"
PROVENANCE = (SOURCE_FILE, SOURCE_ROW)

INTERACTION_REQUIRED = ("user_id", "item_id", "timestamp", "exposed", "outcome")
INTERACTION_OPTIONAL = ("position", "propensity", "policy", "query")
ITEM_REQUIRED = ("item_id",)
ITEM_OPTIONAL = ("title", "text", "categories")
USER_REQUIRED = ("user_id",)
USER_OPTIONAL = ("profile_text",)

TABLES = ("interactions", "items", "users")


@dataclass(frozen=True)
class DatasetMeta:
    """What a dataset can and cannot tell us; later stages branch on these facts.

    Attributes
    ----------
    name : registry name, e.g. ``"coat"``.
    outcome_kind : ``"binary"`` (click, 0/1) or ``"rating"``.
    outcome_range : inclusive (low, high) of valid outcomes.
    positive_threshold : an outcome ``>= positive_threshold`` counts as a positive.
    has_unexposed_outcomes : the log holds outcomes of pairs that were *not* exposed, which is
        what identifies P(Y=1 | do(E=0)) and hence uplift.
    randomized_policy : the ``policy`` value of rows logged by a uniformly random policy (a
        randomized test split), or ``None``.
    has_timestamps : whether ``timestamp`` carries real times (Coat has none: all NaT).
    key_columns : columns that identify one interaction row.
    context_columns : per-row context features (e.g. Open Bandit's user-item affinities).
    sources : table name -> file(s) it was read from, for messages.
    notes : facts a user should see in the run report.
    """

    name: str
    outcome_kind: OutcomeKind
    outcome_range: tuple[float, float]
    positive_threshold: float
    has_unexposed_outcomes: bool
    randomized_policy: str | None
    has_timestamps: bool
    key_columns: tuple[str, ...]
    context_columns: tuple[str, ...] = ()
    sources: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def has_randomized_test(self) -> bool:
        return self.randomized_policy is not None


def rating_study_meta(name: str, sources: dict[str, str], notes: tuple[str, ...]) -> DatasetMeta:
    """Metadata of a 1–5 rating study with self-selected training ratings and a test split on
    items drawn at random (``policy == "random"``), e.g. Coat and Yahoo! R3: positive = rating ≥ 4,
    no timestamps, a (user, item) pair may appear once per split."""
    return DatasetMeta(
        name=name,
        outcome_kind="rating",
        outcome_range=(1.0, 5.0),
        positive_threshold=4.0,
        has_unexposed_outcomes=False,
        randomized_policy="random",
        has_timestamps=False,
        key_columns=("user_id", "item_id", "policy"),
        sources=sources,
        notes=notes,
    )


class PairScorer(Protocol):
    """Scores of a fixed policy for any users × items, by id.

    ``score(user_ids, item_ids)`` returns an array of shape ``(len(user_ids), len(item_ids))``;
    higher means more likely to be shown. Used for the logging policy, whose scores come
    with the data (Coat's given propensities, the synthetic world's π0).
    """

    def score(self, user_ids: np.ndarray, item_ids: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class DenseScores:
    """A :class:`PairScorer` backed by a dense ``(n_users, n_items)`` matrix with id labels.

    Ids not in the matrix score ``fill`` (e.g. an item the logging policy never knew).
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    values: np.ndarray
    fill: float = 0.0

    def __post_init__(self) -> None:
        expected = (len(self.user_ids), len(self.item_ids))
        if self.values.shape != expected:
            raise ValueError(f"DenseScores.values has shape {self.values.shape}, expected {expected}")

    def score(self, user_ids: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
        rows = pd.Index(self.user_ids).get_indexer(user_ids)
        cols = pd.Index(self.item_ids).get_indexer(item_ids)
        out = self.values[np.ix_(np.maximum(rows, 0), np.maximum(cols, 0))].astype(np.float64)
        out[rows < 0, :] = self.fill
        out[:, cols < 0] = self.fill
        return out


@dataclass(frozen=True)
class BetaPrior:
    """A Thompson-sampling policy's Beta(alpha, beta) prior per item, by item id (each array (n,))."""

    item_ids: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray

    def __post_init__(self) -> None:
        if not (self.item_ids.shape == self.alpha.shape == self.beta.shape) or self.item_ids.ndim != 1:
            raise ValueError(f"item_ids, alpha and beta must be aligned 1-D arrays, got {self.item_ids.shape}, "
                             f"{self.alpha.shape} and {self.beta.shape}")
        if not ((self.alpha > 0).all() and (self.beta > 0).all()):
            raise ValueError("Beta prior parameters must be positive")

    def aligned(self, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(alpha, beta) in the order of ``item_ids``; None when some item has no prior."""
        positions = pd.Index(self.item_ids).get_indexer(np.asarray(item_ids))
        if (positions < 0).any():
            return None
        return self.alpha[positions], self.beta[positions]


@dataclass(frozen=True)
class Dataset:
    """Three tables, their metadata, and what is known about how the data were generated.

    ``logging_scores`` scores the policy that produced the (non-randomized) log, when known.
    ``world`` is the synthetic world's ground truth, present only for ``synthetic``.
    ``bts_prior`` is the prior of a Bernoulli Thompson-sampling policy that logged part of the
    data (Open Bandit's ``prior_bts.yaml``), when the data ship it.
    """

    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    meta: DatasetMeta
    logging_scores: PairScorer | None = None
    world: SyntheticWorld | None = None
    bts_prior: BetaPrior | None = None

    def table(self, name: str) -> pd.DataFrame:
        if name not in TABLES:
            raise KeyError(f"unknown table {name!r}; expected one of {TABLES}")
        return getattr(self, name)

    def with_tables(self, **tables: pd.DataFrame) -> Dataset:
        """A copy with some tables replaced (inputs are never mutated)."""
        unknown = set(tables) - set(TABLES)
        if unknown:
            raise KeyError(f"unknown tables {sorted(unknown)}; expected a subset of {TABLES}")
        return replace(self, **tables)

    def summary(self) -> dict[str, float | int | str | bool]:
        """Counts a user checks first (rows, users, items, positives), whatever the tables hold:
        this runs before validation, which reports a missing ``outcome`` column."""
        inter = self.interactions
        outcome = inter["outcome"] if "outcome" in inter.columns else pd.Series(dtype="float64")
        positive = pd.to_numeric(outcome, errors="coerce") >= self.meta.positive_threshold
        return {
            "data/name": self.meta.name,
            "data/n_interactions": len(inter),
            "data/n_users": len(self.users),
            "data/n_items": len(self.items),
            "data/n_positives": int(positive.sum()),
            "data/has_unexposed_outcomes": self.meta.has_unexposed_outcomes,
            "data/has_randomized_test": self.meta.has_randomized_test,
        }


@dataclass(frozen=True)
class IdIndex:
    """A bijection between ids and ``0..n-1``, in the order given."""

    ids: np.ndarray

    @classmethod
    def of(cls, ids: pd.Series | np.ndarray) -> IdIndex:
        values = np.asarray(ids)
        if len(pd.unique(values)) != len(values):
            raise ValueError("IdIndex needs unique ids; validate the table first")
        return cls(values)

    def __len__(self) -> int:
        return len(self.ids)

    def positions(self, ids: pd.Series | np.ndarray) -> np.ndarray:
        """Integer positions of ``ids``; raises on an id this index does not know."""
        pos = pd.Index(self.ids).get_indexer(np.asarray(ids))
        if (pos < 0).any():
            missing = np.asarray(ids)[pos < 0][:5].tolist()
            raise KeyError(f"{int((pos < 0).sum())} ids are not in the index, e.g. {missing}")
        return pos


def with_provenance(frame: pd.DataFrame, source: str, first_line: int = 2) -> pd.DataFrame:
    """Add ``_source_file`` and ``_source_row`` (1-based file line; the header is line 1)."""
    out = frame.copy()
    out[SOURCE_FILE] = pd.Categorical.from_codes(np.zeros(len(out), dtype=np.int8), [source])
    out[SOURCE_ROW] = np.arange(first_line, first_line + len(out), dtype=np.int64)
    return out
