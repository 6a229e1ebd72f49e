"""Exposure columns of a log part, read one way everywhere: which rows were shown, which pairs were
ever shown, and the inverse-propensity weight of each shown row.

A missing ``exposed`` value means not shown. For slate logs (every shown row has a ``position``) the
logged propensity π_j is per slot, and a user's :math:`n_u` shown rows in the part share the unit of
analysis, so a row's weight is :math:`1/(n_u\\pi_j)`; for pair logs (e.g. Coat) it is :math:`1/\\pi_j`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd


def exposed_rows(frame: pd.DataFrame) -> np.ndarray:
    """(n_rows,) bool: the row was shown (a missing value is not)."""
    return frame["exposed"].fillna(False).astype(bool).to_numpy(bool)


def shown_pairs(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """The (user, item) of every shown row of ``frames``, in order (a pair shown twice appears twice)."""
    return pd.concat([f.loc[exposed_rows(f), ["user", "item"]] for f in frames], ignore_index=True)


def inverse_propensity(frame: pd.DataFrame, n_users: int) -> np.ndarray:
    """(n_rows,) float: :math:`1/(n_u\\pi_j)` (slate logs) or :math:`1/\\pi_j` (pair logs) on shown rows, 0 on
    the others; π clipped to [1e-12, 1]. Raises when a shown row lacks its logged propensity."""
    shown = exposed_rows(frame)
    if shown.any() and ("propensity" not in frame.columns or frame.loc[shown, "propensity"].isna().any()):
        raise ValueError("inverse-propensity weights need the logged propensity of every shown row")
    weight = np.zeros(len(frame))
    if not shown.any():
        return weight
    user = frame["user"].to_numpy(np.int64)[shown]
    pi = np.clip(frame.loc[shown, "propensity"].to_numpy(np.float64), 1e-12, 1.0)
    slate = "position" in frame.columns and frame.loc[shown, "position"].notna().all()
    n_u = np.bincount(user, minlength=n_users)[user] if slate else np.ones(len(user))
    weight[shown] = 1.0 / (n_u * pi)
    return weight
