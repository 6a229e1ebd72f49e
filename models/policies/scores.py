"""Ranking policies as score functions over a fixed catalogue.

A policy maps a block of users (integer indices) to scores over every item, shape
``(n_users_in_block, n_items)``; higher is ranked first. Evaluation turns scores into top-K
lists, slates and action distributions. Variants differ only in :meth:`Policy.scores`.

The reference (baseline) policies here need no training: random, most-popular, the logging
policy (when the data say how it scored), and on the synthetic world the two oracles, which
rank by the true P(Y=1 | do(E=1)) and by the true uplift τ — the ceilings a causal model
is measured against.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable

import numpy as np


class Policy(ABC):
    """Scores every item for a block of users."""

    name: str

    @abstractmethod
    def scores(self, users: np.ndarray) -> np.ndarray:
        """``users``: (n,) int indices -> (n, n_items) float scores."""


@dataclass(frozen=True)
class RandomPolicy(Policy):
    """Uniformly random ranking, reproducible per (seed, user) whatever the block."""

    n_items: int
    seed: int = 0
    name: str = "random"

    def scores(self, users: np.ndarray) -> np.ndarray:
        return np.stack([np.random.default_rng([self.seed, int(u)]).random(self.n_items) for u in users])


@dataclass(frozen=True)
class PopularityPolicy(Policy):
    """Most-popular: every user gets items ranked by ``counts`` (n_items,), e.g. train positives."""

    counts: np.ndarray
    name: str = "popularity"

    def scores(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.counts.astype(np.float64), (len(users), len(self.counts))).copy()


@dataclass(frozen=True)
class FunctionPolicy(Policy):
    """A policy given by a function of user indices, e.g. the logging policy's known scores or an
    oracle's ground truth (``score_fn(users) -> (n, n_items)``)."""

    name: str
    score_fn: Callable[[np.ndarray], np.ndarray]

    def scores(self, users: np.ndarray) -> np.ndarray:
        return np.asarray(self.score_fn(np.asarray(users)), dtype=np.float64)
