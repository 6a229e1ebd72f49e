"""Choosing between the causal GNN and a simpler baseline on validation data, with uncertainty.

The learned model is chosen over the baseline only when its validation advantage on the uplift
criterion (:class:`recause.tasks.train.data.UpliftCriterion`, per validation user) has a paired
bootstrap interval above zero; otherwise the simpler model is kept and the reason says why. Both
are scored with the same exposure nuisance (the causal model's propensity head), so the
comparison does not depend on which model estimates ĝ. Pure: per-user values in, a decision out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Selection:
    """Which uplift model the run acts on and why: the criterion, the candidate's mean advantage over
    the baseline per validation user and its bootstrap interval (summary keys ``uplift/model``,
    ``uplift/selection_reason``, ...; ``model/name`` stays the harness's best relevance ranking)."""

    name: str
    reason: str
    criterion: str
    advantage: float = float("nan")
    low: float = float("nan")
    high: float = float("nan")

    def summary(self) -> dict[str, float | str]:
        return {"uplift/model": self.name, "uplift/selection_reason": self.reason, "uplift/selection_criterion": self.criterion,
                **advantage_summary("uplift", self.advantage, self.low, self.high)}


def advantage_summary(prefix: str, advantage: float, low: float, high: float) -> dict[str, float]:
    """``<prefix>/selection_advantage`` and its interval ``_low`` / ``_high``; empty when there was no comparison (NaN)."""
    if not np.isfinite(advantage):
        return {}
    return {f"{prefix}/selection_advantage": advantage, f"{prefix}/selection_advantage_low": low,
            f"{prefix}/selection_advantage_high": high}


def paired_bootstrap(candidate: np.ndarray, baseline: np.ndarray, *, n_boot: int = 1000, level: float = 0.95,
                     seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``candidate - baseline`` over units (users) and its percentile bootstrap interval."""
    diff = np.asarray(candidate, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    if diff.ndim != 1 or diff.size < 2:
        raise ValueError(f"need two aligned 1-D arrays of at least 2 units, got {np.shape(candidate)} and {np.shape(baseline)}")
    rng = np.random.default_rng([seed, 41])
    means = diff[rng.integers(0, diff.size, (n_boot, diff.size))].mean(axis=1)
    tail = (1 - level) / 2
    return float(diff.mean()), float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def select(candidate: str, candidate_values: np.ndarray, baseline: str, baseline_values: np.ndarray, criterion: str,
           *, seed: int = 0, level: float = 0.95, kept: str = "the simpler") -> Selection:
    """``candidate`` when its advantage's ``level`` interval lies above zero, else ``baseline`` (said
    to be ``kept`` as "<kept> <baseline> is kept")."""
    mean, low, high = paired_bootstrap(candidate_values, baseline_values, level=level, seed=seed)
    interval = f"{mean:+.4g} per validation user ({level:.0%} bootstrap CI {low:+.4g} to {high:+.4g}) on {criterion}"
    if low > 0:
        return Selection(candidate, f"{candidate} beats {baseline} by {interval}", criterion, mean, low, high)
    return Selection(baseline, f"{candidate}'s advantage over {baseline}, {interval}, is within its interval: {kept} "
                     f"{baseline} is kept", criterion, mean, low, high)
