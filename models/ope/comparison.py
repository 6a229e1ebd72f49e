"""Several estimators and several policies on the same logged rounds, with shared bootstrap resamples.

- :func:`estimate_all`: several estimators of one policy, validated once, on shared resamples.
- :func:`compare_policies` / :func:`estimate_lift`: paired bootstrap of the difference between
  policies evaluated on the same rounds — the lift of each intervention over a control, with
  intervals that account for the two estimates' correlation.

Arrays as in :mod:`recause.models.ope.estimators`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recause.models.ope.estimators import Estimate, OffPolicyEstimator, bootstrap_values, check_inputs, summarise

def estimate_all(
    estimators: Sequence[OffPolicyEstimator] | Mapping[str, OffPolicyEstimator],
    *,
    reward: np.ndarray,
    action: np.ndarray,
    action_dist: np.ndarray,
    pscore: np.ndarray | None = None,
    position: np.ndarray | None = None,
    estimated_rewards_by_reg_model: np.ndarray | None = None,
    alpha: float = 0.05,
    n_bootstrap_samples: int = 1000,
    random_state: int = 0,
) -> dict[str, Estimate]:
    """Every estimator's :class:`Estimate` of one policy: validates once and shares the resamples.

    Arrays as in :mod:`recause.models.ope.estimators`. ``estimators``: a mapping label → estimator, or a sequence
    labelled by ``name`` (which must then be unique). Returns label → Estimate.
    """
    if not isinstance(estimators, Mapping):
        names = [e.name for e in estimators]
        if len(set(names)) != len(names):
            raise ValueError(f"estimators have repeated names {names}; pass a mapping label -> estimator")
        estimators = dict(zip(names, estimators))
    if not estimators:
        raise ValueError("estimators is empty")
    data = check_inputs(reward, action, action_dist, pscore, position, estimated_rewards_by_reg_model)
    for estimator in estimators.values():  # each one's requirements, without validating the arrays again
        if estimator.uses_pscore and pscore is None:
            raise ValueError(f"pscore is required by {estimator.name}")
        if estimator.uses_reward_model and estimated_rewards_by_reg_model is None:
            raise ValueError(f"estimated_rewards_by_reg_model is required by {estimator.name}")
    terms = [e.round_terms(data) for e in estimators.values()]
    reps = bootstrap_values(terms, n_bootstrap_samples, random_state)
    return {label: summarise(t.value(), reps[:, j], alpha) for j, (label, t) in enumerate(zip(estimators, terms))}


@dataclass(frozen=True)
class Lift:
    """A paired comparison of a treatment policy with a control on the same rounds.

    ``difference`` = V̂(treatment) − V̂(control); ``relative`` = V̂(treatment) / V̂(control) − 1
    (replicates with a zero control value are dropped); both with paired bootstrap intervals.
    """

    control: Estimate
    treatment: Estimate
    difference: Estimate
    relative: Estimate


def compare_policies(
    estimator: OffPolicyEstimator,
    action_dists: Mapping[str, np.ndarray],
    control: str,
    *,
    reward: np.ndarray,
    action: np.ndarray,
    pscore: np.ndarray | None = None,
    position: np.ndarray | None = None,
    estimated_rewards_by_reg_model: np.ndarray | Mapping[str, np.ndarray] | None = None,
    alpha: float = 0.05,
    n_bootstrap_samples: int = 1000,
    random_state: int = 0,
) -> dict[str, Lift]:
    """Every policy against ``control`` on the same logged rounds, with paired bootstrap intervals.

    ``action_dists``: policy name → (n, n_actions, len_list), ``control`` one of the names. All
    policies are evaluated with one estimator and reward model on the same rounds, and every
    bootstrap resample of rounds is applied to all of them, so the interval of a difference
    accounts for the correlation of the two estimates (it is much narrower than the two
    intervals suggest). ``estimated_rewards_by_reg_model`` is one array for all policies, or a
    mapping name → array when each policy brings its own (e.g. compressed action spaces).
    Returns name → :class:`Lift` for every policy but the control.
    """
    if control not in action_dists:
        raise ValueError(f"control {control!r} is not one of the action_dists {sorted(action_dists)}")
    logged = dict(reward=reward, action=action, pscore=pscore, position=position)
    names = [control] + [name for name in action_dists if name != control]

    def q_hat(name: str) -> np.ndarray | None:
        if isinstance(estimated_rewards_by_reg_model, Mapping):
            return estimated_rewards_by_reg_model[name]
        return estimated_rewards_by_reg_model

    terms = [
        estimator.round_terms(estimator.check(action_dist=action_dists[name], estimated_rewards_by_reg_model=q_hat(name), **logged))
        for name in names
    ]
    reps = bootstrap_values(terms, n_bootstrap_samples, random_state)  # (B, n_policies)
    values = [t.value() for t in terms]
    control_estimate = summarise(values[0], reps[:, 0], alpha)
    nan = float("nan")
    out = {}
    for j, name in enumerate(names[1:], start=1):
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = reps[:, j] / reps[:, 0] - 1.0
        ratio = ratio[np.isfinite(ratio)]
        relative_value = values[j] / values[0] - 1.0 if values[0] != 0 else nan
        out[name] = Lift(
            control=control_estimate,
            treatment=summarise(values[j], reps[:, j], alpha),
            difference=summarise(values[j] - values[0], reps[:, j] - reps[:, 0], alpha),
            relative=summarise(relative_value, ratio, alpha) if ratio.size else Estimate(nan, nan, nan, nan),
        )
    return out


def estimate_lift(
    estimator: OffPolicyEstimator, *, action_dist: np.ndarray, control_action_dist: np.ndarray, **logged: Any
) -> Lift:
    """Paired bootstrap of the lift of ``action_dist`` (treatment) over ``control_action_dist``:
    :func:`compare_policies` with two policies; ``logged`` takes its keyword arguments (``reward``,
    ``action``, ``pscore``, ``position``, ``estimated_rewards_by_reg_model``, ``alpha``, ...)."""
    return compare_policies(
        estimator, {"control": control_action_dist, "treatment": action_dist}, "control", **logged
    )["treatment"]
