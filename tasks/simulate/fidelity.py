"""How faithful the simulator is, measured on held-out logged slates rather than assumed.

On the held-out (validation and test) slates of the logging policy, the simulator's clicks for the
very same slates are compared with the real ones:

- **calibration by position**: the simulator's click probability at each position against the real
  rate (the check fails where the gap exceeds both ``max_calibration_error`` and three standard
  errors of the held-out rate, so a small held-out sample does not fail a sound simulator);
- **clicks per slate**: the histogram of the number of clicks in a slate, real against simulated,
  and their total-variation distance (the joint structure a per-slot model can miss);
- **classifier two-sample tests** (Lopez-Paz & Oquab, ICLR 2017): a logistic regression and
  gradient-boosted trees try to tell real slates from simulated ones by their user, items, positions
  and clicks; their held-out AUC is 0.5 when they cannot. The *floor* is what the same test gives a
  perfect simulator: on the synthetic world, clicks re-drawn from the world itself for the same
  slates; elsewhere, one half of the real slates against the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recause.tasks.simulate.data import Slates


@dataclass(frozen=True)
class Fidelity:
    """The fidelity report: per-position and per-count tables, the two-sample tests, the verdict."""

    positions: pd.DataFrame  # position, n, real_rate, simulated_rate, expected_rate, abs_error, standard_error
    counts: pd.DataFrame  # clicks, real_share, simulated_share
    c2st: pd.DataFrame  # classifier, auc, floor
    total_variation: float
    passed: bool
    reason: str

    def metrics(self) -> dict[str, float | bool | str]:
        out: dict[str, float | bool | str] = {
            "simulator/calibration_error": float(self.positions["abs_error"].max()),
            "simulator/calibration_error_mean": float(np.average(self.positions["abs_error"], weights=self.positions["n"])),
            "simulator/clicks_per_slate_tv": self.total_variation,
            "simulator/fidelity_passed": self.passed,
            "simulator/fidelity": self.reason,
        }
        for row in self.c2st.itertuples():
            out[f"simulator/c2st_auc_{row.classifier}"] = float(row.auc)
            out[f"simulator/c2st_floor_{row.classifier}"] = float(row.floor)
        out["simulator/c2st_auc"] = float(self.c2st["auc"].max())
        out["simulator/c2st_floor"] = float(self.c2st["floor"].max())
        return out


def slate_features(slates: Slates, clicks: np.ndarray, user_state: np.ndarray, item_state: np.ndarray) -> np.ndarray:
    """(S, f) what a two-sample classifier reads of a slate: the user's state, clicks by position,
    the click count, the mean state of the clicked items and of all items shown."""
    m = slates.mask.astype(np.float64)
    c = clicks * m
    items = item_state[slates.items.clip(0)] * m[..., None]  # (S, K, d)
    shown = m.sum(1, keepdims=True).clip(1)
    count = c.sum(1, keepdims=True)
    clicked_mean = (items * c[..., None]).sum(1) / count.clip(1)
    return np.concatenate([user_state[slates.user], c, count, count / shown, clicked_mean, items.sum(1) / shown], axis=1)


def two_sample_aucs(real: np.ndarray, other: np.ndarray, seed: int, paired: bool = False) -> dict[str, float]:
    """Held-out AUC of a logistic regression and of gradient-boosted trees separating ``other`` from ``real`` rows.

    ``paired``: row j of ``real`` and of ``other`` describe the same slate (only the clicks differ);
    both then fall in the same fold, so no classifier is tested on a slate it was trained on.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.concatenate([real, other])
    y = np.r_[np.zeros(len(real)), np.ones(len(other))]
    models = {
        "logistic": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, C=1.0)),
        "boosted_trees": lambda: HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, random_state=seed),
    }
    if paired:
        fold = np.random.default_rng([seed, 47]).permutation(len(real)) % 2
        fold = np.r_[fold, fold]
        folds = [(np.flatnonzero(fold != f), np.flatnonzero(fold == f)) for f in (0, 1)]
    else:
        folds = list(StratifiedKFold(2, shuffle=True, random_state=seed).split(x, y))
    out = {}
    for name, make in models.items():
        scores = np.empty(len(y))
        for train, test in folds:
            scores[test] = make().fit(x[train], y[train]).predict_proba(x[test])[:, 1]
        out[name] = float(roc_auc_score(y, scores))
    return out


def fidelity(slates: Slates, real: np.ndarray, simulated: np.ndarray, expected: np.ndarray, perfect: np.ndarray | None,
             user_state: np.ndarray, item_state: np.ndarray, *, max_auc: float, max_calibration_error: float,
             seed: int, max_slates: int = 20_000) -> Fidelity:
    """The report for held-out ``slates``: ``real`` clicks, ``simulated`` clicks and ``expected``
    click probabilities (all (S, K)); ``perfect``: clicks re-drawn from the true world (None
    elsewhere: the floor is then one half of the real slates against the other)."""
    m = slates.mask
    pos = slates.positions[m]
    rows = []
    for k in np.unique(pos):
        at = pos == k
        r, s, e = real[m][at].mean(), simulated[m][at].mean(), expected[m][at].mean()
        rows.append({"position": int(k) + 1, "n": int(at.sum()), "real_rate": r, "simulated_rate": s, "expected_rate": e,
                     "abs_error": abs(e - r), "standard_error": float(np.sqrt(max(e * (1 - e), 1e-12) / at.sum()))})
    positions = pd.DataFrame(rows)
    k = slates.n_positions
    real_counts = np.bincount((real * m).sum(1).astype(int), minlength=k + 1)[: k + 1] / len(slates)
    sim_counts = np.bincount((simulated * m).sum(1).astype(int), minlength=k + 1)[: k + 1] / len(slates)
    counts = pd.DataFrame({"clicks": np.arange(k + 1), "real_share": real_counts, "simulated_share": sim_counts})
    tv = float(0.5 * np.abs(real_counts - sim_counts).sum())

    rng = np.random.default_rng([seed, 31])
    keep = np.sort(rng.choice(len(slates), size=min(max_slates, len(slates)), replace=False))
    sub = slates.subset(keep)
    feats = lambda clicks: slate_features(sub, clicks[keep], user_state, item_state)  # noqa: E731
    aucs = two_sample_aucs(feats(real), feats(simulated), seed, paired=True)
    if perfect is not None:
        floor = two_sample_aucs(feats(real), feats(perfect), seed, paired=True)
    else:
        half = rng.permutation(len(keep)) < len(keep) // 2
        f = feats(real)
        floor = two_sample_aucs(f[half], f[~half], seed)
    c2st = pd.DataFrame([{"classifier": name, "auc": aucs[name], "floor": floor[name]} for name in aucs])
    problems = []
    worst = float(positions["abs_error"].max())
    # a gap counts only beyond the allowed error and beyond sampling noise (3 standard errors of the held-out rate)
    excess = positions["abs_error"] - np.maximum(max_calibration_error, 3 * positions["standard_error"])
    if (excess > 0).any():
        at = positions.loc[excess.idxmax()]
        problems.append(f"position {int(at.position)}'s click rate is off by {at.abs_error:.4f} (allowed "
                        f"{max(max_calibration_error, 3 * at.standard_error):.4f} there)")
    if c2st["auc"].max() > max_auc:
        problems.append(f"a two-sample test tells simulated from real slates (AUC {c2st['auc'].max():.3f} > {max_auc:g})")
    reason = "passed: " + f"calibration within {worst:.4f}, two-sample AUC {c2st['auc'].max():.3f} (floor {c2st['floor'].max():.3f})"
    return Fidelity(positions, counts, c2st, tv, not problems, "; ".join(problems) if problems else reason)


def resample_from_truth(slates: Slates, probability: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray], seed: int) -> np.ndarray:
    """(S, K) clicks re-drawn from true click probabilities ``probability(users, items, positions)`` of the slots."""
    m = slates.mask
    p = np.zeros(m.shape)
    p[m] = probability(np.repeat(slates.user, m.shape[1])[m.ravel()], slates.items[m], slates.positions[m])
    return (np.random.default_rng([seed, 37]).random(m.shape) < p).astype(np.float64) * m
