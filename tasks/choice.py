"""The model of record: the best validation ranking, but a learned one over the popularity baseline
only when its validation advantage's bootstrap interval lies above zero.

The harness ranks every non-oracle policy by the validation selection metric
(:func:`recause.tasks.evaluate.selection_metric`: NDCG@k on per-user splits, debiased AUC on
randomized ones). A small validation split can put a model first by chance, so the leader is
compared with the simplest sensible ranking, :data:`SIMPLE_BASELINE` (item popularity in training),
on the same validation data:

- per-user splits: the mean over validation users of the paired NDCG difference and its percentile
  bootstrap interval over users (:func:`recause.tasks.train.select.paired_bootstrap`);
- randomized splits: the AUC difference on the validation rows and its cluster-bootstrap interval,
  users resampled with replacement (rows of one user move together) and both AUCs recomputed on each
  resample with the users' multiplicities as row weights (:func:`weighted_aucs`).

The leader is kept when the interval's lower end is above zero, else popularity is, and the reason
says which and by how much. A bootstrap cannot stand in for evidence the data lack: with fewer than
:data:`MIN_POSITIVES` positive validation rows (randomized splits) a handful of rows decides every
resample (Open Bandit's validation split holds 5, and the GNN that led on them ranked below popularity on test),
so popularity is kept and the reason says why. Pure: scores and values in, a decision out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recause.tasks.train.select import advantage_summary

SIMPLE_BASELINE = "popularity"
MIN_POSITIVES = 20  # positive validation rows below which an AUC difference is not evidence


@dataclass(frozen=True)
class ModelChoice:
    """The model of record (``model/name``), the validation leader it was chosen from, and why."""

    name: str
    leader: str
    reason: str
    advantage: float = float("nan")
    low: float = float("nan")
    high: float = float("nan")

    def summary(self) -> dict[str, float | str]:
        return {"model/selection_reason": self.reason, "model/validation_leader": self.leader,
                **advantage_summary("model", self.advantage, self.low, self.high)}


def weighted_aucs(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    r"""ROC AUC of ``scores`` under each row of ``weights``: a bootstrap resample as row multiplicities.

    :math:`\mathrm{AUC}_b = \sum_{p \in +} \sum_{n \in -} w_{bp} w_{bn} (1[s_n < s_p] + \tfrac12 1[s_n = s_p])
    / (W^+_b W^-_b)`; with all weights 1 it is :func:`recause.models.metrics.auc`.

    Parameters
    ----------
    scores : (n,) float;  labels : (n,) in {0, 1};  weights : (B, n) float >= 0

    Returns
    -------
    (B,) float; NaN where a resample holds no positive or no negative weight.
    """
    scores, labels, weights = np.asarray(scores), np.asarray(labels).astype(bool), np.atleast_2d(weights)
    if scores.ndim != 1 or labels.shape != scores.shape or weights.shape[1] != scores.size:
        raise ValueError(f"scores, labels must be (n,) and weights (B, n); got {scores.shape}, {labels.shape}, {weights.shape}")
    order = np.argsort(scores, kind="stable")
    distinct, starts = np.unique(scores[order], return_index=True)
    w = weights[:, order]
    pos = np.add.reduceat(w * labels[order], starts, axis=1)  # (B, G): positive weight per distinct score
    neg = np.add.reduceat(w * ~labels[order], starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg  # negative weight strictly below each distinct score
    total = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (pos * (below + 0.5 * neg)).sum(axis=1) / total, np.nan)


def auc_advantage(candidate: np.ndarray, baseline: np.ndarray, labels: np.ndarray, users: np.ndarray, *,
                  n_boot: int = 1000, level: float = 0.95, seed: int = 0, chunk: int = 100) -> tuple[float, float, float]:
    """AUC(candidate) − AUC(baseline) on the rows, and its ``level`` cluster-bootstrap interval over users.

    ``candidate``, ``baseline``: (n,) scores of the same rows; ``labels`` (n,) in {0, 1}; ``users`` (n,) ids.
    Resamples are drawn ``chunk`` at a time (memory: chunk × n floats).
    """
    _, row_user = np.unique(users, return_inverse=True)
    n_users = int(row_user.max()) + 1
    rng = np.random.default_rng([seed, 43])
    ones = np.ones((1, len(labels)))
    point = float(weighted_aucs(candidate, labels, ones)[0] - weighted_aucs(baseline, labels, ones)[0])
    diffs = []
    for start in range(0, n_boot, chunk):
        counts = rng.multinomial(n_users, np.full(n_users, 1.0 / n_users), size=min(chunk, n_boot - start))
        w = counts[:, row_user].astype(np.float64)
        diffs.append(weighted_aucs(candidate, labels, w) - weighted_aucs(baseline, labels, w))
    diff = np.concatenate(diffs)
    diff = diff[np.isfinite(diff)]
    tail = (1 - level) / 2
    return point, float(np.quantile(diff, tail)), float(np.quantile(diff, 1 - tail))


def choose(leader: str, advantage: tuple[float, float, float] | None, metric: str, units: str,
           level: float = 0.95) -> ModelChoice:
    """Keep ``leader`` when ``advantage`` = (mean, low, high) over :data:`SIMPLE_BASELINE` has ``low > 0``;
    else the baseline. ``advantage`` None: the leader is the baseline or the baseline was not scored."""
    if advantage is None:
        why = "it is the simple baseline" if leader == SIMPLE_BASELINE else f"{SIMPLE_BASELINE} was not scored on validation"
        return ModelChoice(leader, leader, f"{leader} is best on validation {metric} ({why})")
    mean, low, high = advantage
    interval = f"{mean:+.4g} on validation {metric} ({level:.0%} bootstrap CI {low:+.4g} to {high:+.4g} over {units})"
    if low > 0:
        return ModelChoice(leader, leader, f"{leader} beats {SIMPLE_BASELINE} by {interval}", mean, low, high)
    return ModelChoice(SIMPLE_BASELINE, leader, f"{leader} leads {SIMPLE_BASELINE} by {interval}, within its interval: "
                       f"the simpler {SIMPLE_BASELINE} is kept", mean, low, high)


def too_few_positives(leader: str, n_positives: int, metric: str) -> ModelChoice:
    """Popularity kept because the validation rows hold fewer than :data:`MIN_POSITIVES` positives."""
    return ModelChoice(SIMPLE_BASELINE, leader, f"{leader} leads on validation {metric}, but the validation rows hold "
                       f"{n_positives} positives (fewer than {MIN_POSITIVES}): too few to tell it from "
                       f"{SIMPLE_BASELINE}, so the simpler {SIMPLE_BASELINE} is kept")
