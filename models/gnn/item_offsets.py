r"""Per-item offsets of the outcome-if-exposed head, fitted by empirical Bayes after training.

The causal GNN's f1(u,i) = P(Y=1 | do(E=1)) learns an item's own effect (its quality, which only clicks on
impressions reveal) through the item's node state, which the exposure likelihood, f0 and f1 share; training stops
within a few epochs, when the outcome heads begin to overfit. An item's average uplift is its f1 effect less its
f0 effect, and f0's is learned from plentiful organic finds, f1's from a median of 1–2 clicks. So after training,
each item gets a logit offset :math:`e_i` of f1 — a random intercept with a Gaussian prior
:math:`e_i \sim N(0, \sigma^2)` — fitted on the training impressions with everything else held fixed:

.. math::

    \hat e_i = \arg\max_e \sum_{j \in \mathrm{imp}(i)} \log \mathrm{Bern}\big(y_j \mid
        f_0(u_j,i) + \kappa_{k_j}\,(\sigma(\ell_1(u_j,i) + e) - f_0(u_j,i))\big) - \frac{e^2}{2\sigma^2},

the click model of training (:func:`~recause.models.gnn.losses.examined_probability`: slot k examined with
probability κ_k, unexamined as if not shown), :math:`\ell_1` = logit f1. An item with many impressions moves
to what its clicks say; a rarely shown one stays near 0, i.e. at the network's estimate. The model scores f1
as :math:`\sigma(\ell_1 + e_i)` (:func:`shift_logits`). Pure numpy; no I/O.
"""

from __future__ import annotations

import numpy as np


def fit_item_offsets(logit_f1: np.ndarray, f0: np.ndarray, kappa: np.ndarray, clicked: np.ndarray, items: np.ndarray,
                     n_items: int, prior_sd: float, iterations: int = 30, tolerance: float = 1e-9) -> np.ndarray:
    r"""The MAP offsets :math:`\hat e` (n_items,) of the module docstring's objective, by Newton's method.

    Parameters: aligned (n,) arrays over the impressions — ``logit_f1`` the head's logit, ``f0`` the probability
    if not shown, ``kappa`` the slot's examination probability (1 without slots), ``clicked`` the outcome (0/1),
    ``items`` the item index in [0, n_items); ``prior_sd`` σ > 0. Each item's problem is one-dimensional and
    separate, so a step is two ``bincount`` s; a step is capped at 1 (logit units) and the curvature at the prior's
    (the objective is concave in e wherever the click probability's curvature keeps it so; the cap guards the rest).
    An item without impressions gets 0.
    """
    if prior_sd <= 0:
        raise ValueError(f"prior_sd must be positive, got {prior_sd}")
    n = len(items)
    if not (len(logit_f1) == len(f0) == len(kappa) == len(clicked) == n):
        raise ValueError("logit_f1, f0, kappa, clicked and items must be aligned (n,) arrays")
    logit_f1, f0, kappa, y = (np.asarray(a, np.float64) for a in (logit_f1, f0, kappa, clicked))
    precision = 1.0 / prior_sd**2
    offsets = np.zeros(n_items)
    for _ in range(iterations):
        p1 = 1.0 / (1.0 + np.exp(-(logit_f1 + offsets[items])))
        q = np.clip(f0 + kappa * (p1 - f0), 1e-9, 1.0 - 1e-9)
        dq = kappa * p1 * (1.0 - p1)  # ∂q/∂e
        d2q = dq * (1.0 - 2.0 * p1)  # ∂²q/∂e²
        dl = y / q - (1.0 - y) / (1.0 - q)  # ∂ log-likelihood / ∂q
        d2l = -y / q**2 - (1.0 - y) / (1.0 - q) ** 2
        gradient = np.bincount(items, dl * dq, minlength=n_items) - precision * offsets
        curvature = np.bincount(items, d2l * dq**2 + dl * d2q, minlength=n_items) - precision
        step = np.clip(-gradient / np.minimum(curvature, -precision), -1.0, 1.0)
        offsets += step
        if np.max(np.abs(step), initial=0.0) < tolerance:
            break
    return offsets


def logits(probability: np.ndarray) -> np.ndarray:
    """log(p / (1 − p)) elementwise, p clipped to [1e-12, 1 − 1e-12]."""
    p = np.clip(probability, 1e-12, 1.0 - 1e-12)
    return np.log(p) - np.log1p(-p)


def shift_logits(probability: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """σ(logit p + e): ``probability`` (n_users, n_items) shifted by per-item ``offsets`` (n_items,) on the logit scale."""
    return 1.0 / (1.0 + np.exp(-(logits(probability) + offsets[None, :])))
