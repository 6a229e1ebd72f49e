r"""An interval for each item's uplift: the doubly robust (AIPW) mean over users, from the training log.

Estimand, per item i: :math:`\bar\tau_i = \frac{1}{|U|}\sum_u \tau_{ui}`, the average effect over
the split's users of recommending i in the top slot, :math:`\tau_{ui} = P(Y=1 \mid do(E=1)) -
P(Y=1 \mid do(E=0))` — the quantity the GNN's :math:`\hat\tau_{ui} = f_1 - f_0` estimates per user.

Per user the pseudo-outcome

.. math::
    \psi_{ui} = \hat\tau_{ui} + \frac{A_{ui} - B_{ui}}{\bar\kappa}, \qquad
    A_{ui} = \sum_{j \in \text{impressions of } (u,i)} \frac{Y_j - \hat f_0 - \kappa_{k_j}\hat\tau}{n_u \pi_j}, \qquad
    B_{ui} = (1 - E^{\text{any}}_{ui})\,\frac{O_{ui} - r_u \hat f_0}{r_u (1 - \hat g_{ui})}

corrects the model with the log: :math:`A` is the inverse-propensity residual of the training
impressions (slot :math:`k_j`, logged per-slot propensity :math:`\pi_j`, :math:`n_u` training slots
of the user; :math:`E[A] = (p_0 - f_0) + \bar\kappa(\tau - \hat\tau)`), :math:`B` that of organic
finds :math:`O` among pairs never shown in the log (:math:`r_u` the user's share of the log in
training, :math:`\hat g` the model's exposure probability over the whole log; :math:`E[B] = p_0 - f_0`).
With the logged :math:`\pi` and a correct :math:`\hat g` it is unbiased for :math:`\tau_{ui}` whatever
the outcome heads; its mean over users is :math:`\hat{\bar\tau}_i` and the interval is the normal
one with the users' standard error. Logs without slots use the pair's propensity (:math:`n_u = 1`,
:math:`\kappa = 1`).

Rarely shown items get wide intervals (their impressions carry weights :math:`1/(n_u\pi)`): that is
the log's information about them, not a defect. Pure: arrays in, arrays out; blocks of users.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.stats import norm

from recause.tasks.data.exposure import exposed_rows, inverse_propensity, shown_pairs
from recause.tasks.data.split import Split

Scores = Callable[[np.ndarray], np.ndarray]  # users (B,) -> (B, n_items)


@dataclass(frozen=True)
class ItemIntervals:
    """Per split item: the AIPW mean uplift over users with its interval at ``level``."""

    estimate: np.ndarray  # (n_items,)
    low: np.ndarray  # (n_items,)
    high: np.ndarray  # (n_items,)
    level: float

    def frame(self, item_ids: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({"item_id": item_ids, "uplift_item": self.estimate, "uplift_low": self.low, "uplift_high": self.high})


def impression_weights(train: pd.DataFrame, n_users: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The training impressions: user, item, 0-based slot (−1 without positions), outcome and the
    inverse-propensity weight :math:`1/(n_u\\pi_j)` (slate logs) or :math:`1/\\pi_j` (pair logs)."""
    shown = exposed_rows(train)
    try:
        weight = inverse_propensity(train, n_users)[shown]
    except ValueError as error:
        raise ValueError("item uplift intervals need the logged propensity of every training impression") from error
    rows = train[shown]
    user, item = rows["user"].to_numpy(np.int64), rows["item"].to_numpy(np.int64)
    y = rows["positive"].to_numpy(np.float64)
    slate = "position" in rows.columns and rows["position"].notna().all() and len(rows) > 0
    slot = rows["position"].to_numpy(np.int64) - 1 if slate else np.full(len(rows), -1, dtype=np.int64)
    return user, item, slot, y, weight


def item_uplift_intervals(
    split: Split, uplift: Scores, f0: Scores, propensity: Scores, kappa: np.ndarray, retention: np.ndarray,
    *, level: float = 0.95, block: int = 512,
) -> ItemIntervals:
    """:math:`\\hat{\\bar\\tau}_i` with its ``level`` interval for every split item (see the module).

    ``uplift``, ``f0``, ``propensity``: the model's τ̂, f0 and ĝ as score functions of split user
    indices -> (B, n_items); ``kappa`` (n_slots,) the examination probabilities (κ_1 = 1; ``[1.0]``
    for logs without slots); ``retention`` (n_users,) each user's share of the log in training.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    n_users, n_items = split.n_users, split.n_items
    kappa = np.asarray(kappa, dtype=np.float64)
    kappa_bar = float(kappa.mean())
    user, item, slot, y, w = impression_weights(split.train, n_users)
    k_row = kappa[np.clip(slot, 0, len(kappa) - 1)] if (slot >= 0).any() else np.ones(len(slot))
    frames = [split.train, split.val, split.test]
    shown = shown_pairs(frames)
    ever = sparse.csr_matrix((np.ones(len(shown), bool), (shown["user"], shown["item"])), shape=(n_users, n_items))
    organic_rows = split.train[~exposed_rows(split.train) & split.train["positive"].to_numpy(bool)]
    organic = sparse.csr_matrix((np.ones(len(organic_rows)), (organic_rows["user"], organic_rows["item"])),
                                shape=(n_users, n_items))
    organic.data[:] = 1.0  # a pair found twice is one find
    total = np.zeros(n_items)
    squares = np.zeros(n_items)
    order = np.argsort(user, kind="stable")
    user_sorted = user[order]
    for start in range(0, n_users, block):
        users = np.arange(start, min(start + block, n_users))
        tau, base, g = (np.asarray(fn(users), dtype=np.float64) for fn in (uplift, f0, propensity))
        lo, hi = np.searchsorted(user_sorted, [users[0], users[-1] + 1])
        rows = order[lo:hi]
        ru, ri = user[rows] - start, item[rows]
        residual = (y[rows] - base[ru, ri] - k_row[rows] * tau[ru, ri]) * w[rows]
        a = np.zeros_like(tau)
        np.add.at(a, (ru, ri), residual)
        r = np.clip(retention[users], 1e-12, 1.0)[:, None]
        never = ~ever[users].toarray()
        found = organic[users].toarray()
        b = never * (found - r * base) / (r * np.clip(1.0 - g, 1e-6, 1.0))
        psi = tau + (a - b) / kappa_bar
        total += psi.sum(axis=0)
        squares += (psi**2).sum(axis=0)
    mean = total / n_users
    sd = np.sqrt(np.maximum(squares / n_users - mean**2, 0.0) * n_users / max(n_users - 1, 1))
    half = float(norm.ppf(0.5 + level / 2)) * sd / np.sqrt(n_users)
    return ItemIntervals(mean, mean - half, mean + half, level)


def coverage(intervals: ItemIntervals, true_mean: np.ndarray) -> float:
    """Share of items whose interval holds the true mean uplift (synthetic world)."""
    return float(np.mean((intervals.low <= true_mean) & (true_mean <= intervals.high)))
