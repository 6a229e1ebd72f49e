r"""How well the synthetic world's log lets *any* learner rank by uplift: a Bayes ceiling on CP@K.

The oracle ranks by the true :math:`\tau(u,i)`. A learner sees only the log. Consider a learner
that knows everything about the world except the items' quality :math:`q_i` — every user's interests
:math:`\theta_u`, every item's topics :math:`\phi_i` and popularity :math:`z_i`, users' activity, the
structural equations and all their coefficients (:mod:`recause.models.world.scm`) — and infers
:math:`q` from logged impressions. Quality enters only the persuasion :math:`r`, so only the outcomes
of impressions carry information about it (exposure does not depend on it, organic finds do not):

.. math::

    \log p(q_i = g \mid \text{log}) = \log \pi(g) + \sum_{(u,k,y) \in \text{impressions of } i}
        y \log P_{uik}(g) + (1-y)\log(1 - P_{uik}(g)),\qquad P_{uik}(g) = p_0(u,i) + \kappa_k\,\tau(u,i; g)

on a grid of values g. CP@K is linear in τ, so ranking by the posterior mean
:math:`E[\tau(u,i) \mid \text{log}] = \sum_g p(g \mid \text{log})\,\tau(u,i;g)` maximises the expected
CP@K given that information; a learner that knows less cannot expect more. Its CP@K over the
oracle's is the ceiling a target like "≥ 0.7 × the oracle" should be read against.

Priors :math:`\pi`: ``marginal`` — :math:`q \sim N(0, 1)`, the world's draw; ``popularity`` — the
world draws a latent :math:`\ell = \rho q + \sqrt{1-\rho^2}\,e` and ranks items by it for popularity,
so given an item's popularity rank, :math:`q \mid \ell \sim N(\rho\ell, 1-\rho^2)` with :math:`\ell`
replaced by the normal quantile of the rank (an approximation of the order statistic's posterior).
The ``popularity`` prior uses what the log shows (popularity) and is the ceiling's; ``marginal`` is
a lower reference.

Pure functions of the world and arrays; no I/O.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.special import ndtri

from recause.models.world.scm import SyntheticWorld, _logit, _sigmoid

Prior = Literal["marginal", "popularity"]


def quality_grid(points: int = 121, span: float = 5.0) -> np.ndarray:
    """(points,) evenly spaced quality values in [-span, span] (q is standard normal)."""
    return np.linspace(-span, span, points)


def _parts(world: SyntheticWorld, users: np.ndarray, items: np.ndarray, pairs: bool) -> tuple[np.ndarray, np.ndarray]:
    """(p0, logit r without the quality term) for aligned pairs or a users × items grid."""
    cfg = world.config
    a = world._affinity(world.theta, users, items, pairs)
    act = world.log_activity[users] if pairs else world.log_activity[users][:, None]
    z = world.popularity_z[items] if pairs else world.popularity_z[items][None, :]
    p0 = _sigmoid(_logit(cfg.organic_rate) + cfg.organic_interest_weight * a
                  + cfg.confounding * cfg.organic_popularity_weight * z + cfg.organic_activity_weight * act)
    return p0, _logit(cfg.persuasion_rate) + cfg.persuasion_interest_weight * a


def _uplift(world: SyntheticWorld, p0: np.ndarray, logit_r: np.ndarray) -> np.ndarray:
    rho = world.config.organic_after_dismissal
    r = _sigmoid(logit_r)
    return r * (1.0 - rho * p0) - (1.0 - rho) * p0


def log_prior(world: SyntheticWorld, prior: Prior, grid: np.ndarray) -> np.ndarray:
    """(n_items, G) log prior density of each item's quality on ``grid`` (up to a constant per item)."""
    n = world.n_items
    if prior == "marginal":
        return np.broadcast_to(-0.5 * grid[None, :] ** 2, (n, grid.size)).copy()
    if prior != "popularity":
        raise ValueError(f"prior must be 'marginal' or 'popularity', got {prior!r}")
    rho = world.config.popularity_quality_corr
    rank = np.argsort(np.argsort(-world.popularity_z, kind="stable"), kind="stable")  # 0 = most popular
    latent = ndtri(1.0 - (rank + 0.5) / n)
    var = max(1.0 - rho**2, 1e-6)
    return -0.5 * (grid[None, :] - rho * latent[:, None]) ** 2 / var


def quality_posterior(world: SyntheticWorld, users: np.ndarray, items: np.ndarray, slots: np.ndarray,
                      outcomes: np.ndarray, prior: Prior = "popularity", grid: np.ndarray | None = None) -> np.ndarray:
    """(n_items, G) posterior of every item's quality on ``grid`` given impressions.

    ``users``, ``items`` (n,) world ids of the impressions, ``slots`` (n,) 0-based slate positions,
    ``outcomes`` (n,) 0/1. Everything but q is taken from ``world``.
    """
    grid = quality_grid() if grid is None else np.asarray(grid, dtype=np.float64)
    users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
    slots, y = np.asarray(slots, dtype=np.int64), np.asarray(outcomes, dtype=np.float64)
    cfg = world.config
    p0, base = _parts(world, users, items, pairs=True)
    kappa = world.examination()[slots]
    loglik = np.zeros((world.n_items, grid.size))
    for g, value in enumerate(grid):
        p = np.clip(p0 + kappa * _uplift(world, p0, base + cfg.persuasion_quality_weight * value), 1e-12, 1 - 1e-12)
        loglik[:, g] = np.bincount(items, weights=y * np.log(p) + (1.0 - y) * np.log1p(-p), minlength=world.n_items)
    log_post = loglik + log_prior(world, prior, grid)
    log_post -= log_post.max(axis=1, keepdims=True)
    post = np.exp(log_post)
    return post / post.sum(axis=1, keepdims=True)


def posterior_uplift(world: SyntheticWorld, users: np.ndarray, posterior: np.ndarray,
                     grid: np.ndarray | None = None) -> np.ndarray:
    """(len(users), n_items) E[τ(u,i) | log] for world user ids ``users``, every item."""
    grid = quality_grid() if grid is None else np.asarray(grid, dtype=np.float64)
    users = np.asarray(users, dtype=np.int64)
    p0, base = _parts(world, users, np.arange(world.n_items), pairs=False)
    out = np.zeros_like(p0)
    weight = world.config.persuasion_quality_weight
    for g, value in enumerate(grid):
        out += posterior[None, :, g] * _uplift(world, p0, base + weight * value)
    return out


def quality_of_posterior(posterior: np.ndarray, grid: np.ndarray | None = None) -> np.ndarray:
    """(n_items,) posterior mean quality."""
    grid = quality_grid() if grid is None else np.asarray(grid, dtype=np.float64)
    return posterior @ grid

