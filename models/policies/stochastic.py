"""Stochastic policies from scores: every slot drawn from a softmax over per-user normal scores.

:math:`\pi(i \mid u) = (1-\epsilon)\,\mathrm{softmax}_i(z_{u,i} / T) + \epsilon / n_{items}`, with
:math:`z_{u,\cdot}` the normal scores of the ranks of a policy's scores for user u. Rank-based
standardisation makes one temperature fit every policy, whatever the scale of its scores; the
uniform share keeps every item possible, which is what makes the policy estimable from logs.
Score edits (a popularity penalty, a diversity push) act on the standardised scores.
All functions are pure and vectorised over a block of users: (B, n_items) in, (B, n_items) out.
"""

from __future__ import annotations

import numpy as np


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
