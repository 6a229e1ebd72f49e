r"""Off-policy estimators of a policy's value from logged bandit feedback, with bootstrap intervals.

Inputs follow Open Bandit Pipeline's ``estimate_policy_value`` (Saito et al., NeurIPS 2021 Datasets
and Benchmarks, arXiv:2008.07146), one row per logged impression i:

- ``reward`` (n,): the observed outcome :math:`r_i`;
- ``action`` (n,) int: the logged item :math:`a_i \in [0, n_{actions})`;
- ``position`` (n,) int, 0-based, or None for single-action data: the slot :math:`k_i`;
- ``pscore`` (n,): the logging propensity :math:`\pi_0(a_i \mid x_i, k_i) \in (0, 1]`;
- ``action_dist`` (n, n_actions, len_list): the evaluation policy :math:`\pi_e(a \mid x_i, k)`,
  each ``[i, :, k]`` a distribution over actions;
- ``estimated_rewards_by_reg_model`` (n, n_actions, len_list): a reward model :math:`\hat q(x_i, a, k)`.

Slates are handled in the position-wise (independent-item) form: every impression is a round of
its own with the evaluation policy's marginal at that slot, so the value estimated is the
expected reward per shown slot, :math:`V(\pi_e) = \mathbb{E}_{x,k}\,\mathbb{E}_{a \sim \pi_e(\cdot|x,k)}[q(x,a,k)]`.
Single-action data are the case ``len_list == 1``.

With :math:`w_i = \pi_e(a_i|x_i,k_i) / \pi_0(a_i|x_i,k_i)` and
:math:`\hat q_\pi(x_i,k_i) = \sum_a \pi_e(a|x_i,k_i)\,\hat q(x_i,a,k_i)`, every estimator here is

.. math:: \hat V = \mathbb{E}_n[b_i] + \mathbb{E}_n[c_i] \,/\, \mathbb{E}_n[m_i]

for per-round terms (base b, correction c, normaliser m; m ≡ 1 unless self-normalised) returned
by :meth:`OffPolicyEstimator.round_terms` — the one hook variants override. Bootstrap intervals
resample rounds and recompute the ratio, so self-normalised estimators are re-normalised in every
resample (obp keeps the full-sample normaliser fixed; both agree on the point estimate).

The bootstrap draws its resamples with ``numpy.random.RandomState(random_state).randint``, the
same stream as obp's ``estimate_confidence_interval_by_bootstrap``, and shares one set of resamples
across estimators and across the two arms of a paired comparison.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import numpy as np

_SUM_TOL = 1e-6  # |Σ_a π_e(a|x,k) − 1| allowed per (round, position)
_BOOTSTRAP_CELLS = 2_000_000  # resample counts held in memory at once (chunk × n_rounds)


# ---------------------------------------------------------------------------------------------- inputs
@dataclass(frozen=True, eq=False)
class OPEInputs:
    """Validated logged feedback and evaluation-policy arrays; build with :func:`check_inputs`."""

    reward: np.ndarray  # (n,) float64
    action: np.ndarray  # (n,) int64
    position: np.ndarray  # (n,) int64, 0-based
    action_dist: np.ndarray  # (n, n_actions, len_list)
    pscore: np.ndarray | None = None  # (n,) float64 in (0, 1]
    estimated_rewards: np.ndarray | None = None  # (n, n_actions, len_list)

    @property
    def n_rounds(self) -> int:
        return self.reward.shape[0]

    @cached_property
    def _rows(self) -> np.ndarray:
        return np.arange(self.n_rounds)

    @cached_property
    def pi_factual(self) -> np.ndarray:
        """(n,) π_e(a_i | x_i, k_i)."""
        return self.action_dist[self._rows, self.action, self.position]

    @cached_property
    def importance_weight(self) -> np.ndarray:
        """(n,) w_i = π_e(a_i|x_i,k_i) / π_0(a_i|x_i,k_i)."""
        if self.pscore is None:
            raise ValueError("pscore is required for importance weights")
        return self.pi_factual / self.pscore

    @cached_property
    def q_factual(self) -> np.ndarray:
        """(n,) q̂(x_i, a_i, k_i)."""
        return self._rewards_model()[self._rows, self.action, self.position]

    @cached_property
    def q_policy(self) -> np.ndarray:
        """(n,) Σ_a π_e(a|x_i,k_i) q̂(x_i,a,k_i), the direct-method term."""
        q = self._rewards_model()[self._rows, :, self.position]  # (n, n_actions)
        pi = self.action_dist[self._rows, :, self.position]  # (n, n_actions)
        return np.einsum("na,na->n", q, pi) / pi.sum(axis=1)

    def _rewards_model(self) -> np.ndarray:
        if self.estimated_rewards is None:
            raise ValueError("estimated_rewards_by_reg_model is required by this estimator")
        return self.estimated_rewards


def _first_bad(mask: np.ndarray) -> str:
    where = np.argwhere(mask)
    return f"{int(mask.sum())} entries, first at index {tuple(int(i) for i in where[0])}"


def _float_array(name: str, x: object, ndim: int) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {arr.shape}")
    if arr.size and not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite, found NaN or inf in {_first_bad(~np.isfinite(arr))}")
    return arr


def _index_array(name: str, x: object, n: int, upper: int, upper_name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) like reward, got {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    bad = (arr < 0) | (arr >= upper)
    if bad.any():
        raise ValueError(f"{name} must lie in [0, {upper_name}={upper}), found {arr[bad][0]} in {_first_bad(bad)}")
    return arr.astype(np.int64, copy=False)


def check_inputs(
    reward: np.ndarray,
    action: np.ndarray,
    action_dist: np.ndarray,
    pscore: np.ndarray | None = None,
    position: np.ndarray | None = None,
    estimated_rewards_by_reg_model: np.ndarray | None = None,
) -> OPEInputs:
    """Validate the arrays (see the module docstring for shapes) and return :class:`OPEInputs`.

    Raises ``ValueError`` naming the argument: wrong shape or dtype, NaN/inf, a propensity
    outside (0, 1], an action or position out of range, negative probabilities or an
    ``action_dist`` row that does not sum to 1 (tolerance 1e-6). Nothing is copied when the
    inputs are already float64 / int64.
    """
    reward = _float_array("reward", reward, 1)
    n = reward.shape[0]
    if n == 0:
        raise ValueError("reward is empty: no logged rounds to estimate from")
    action_dist = _float_array("action_dist", action_dist, 3)
    if action_dist.shape[0] != n:
        raise ValueError(f"action_dist must have n_rounds={n} rows like reward, got shape {action_dist.shape}")
    n_actions, len_list = action_dist.shape[1:]
    if (action_dist < 0).any():
        raise ValueError(f"action_dist must be non-negative, found negative values in {_first_bad(action_dist < 0)}")
    off = np.abs(action_dist.sum(axis=1) - 1.0) > _SUM_TOL  # (n, len_list)
    if off.any():
        i, k = np.argwhere(off)[0]
        raise ValueError(
            f"action_dist[i, :, k] must sum to 1 over actions; {int(off.sum())} (round, position) pairs do not, "
            f"first (i={i}, k={k}) sums to {action_dist[i, :, k].sum():.6g}"
        )
    action = _index_array("action", action, n, n_actions, "n_actions")
    if position is None:
        if len_list != 1:
            raise ValueError(f"position is required when action_dist has len_list={len_list} > 1 positions")
        position = np.zeros(n, dtype=np.int64)
    else:
        position = _index_array("position", position, n, len_list, "len_list")
    if pscore is not None:
        pscore = _float_array("pscore", pscore, 1)
        if pscore.shape[0] != n:
            raise ValueError(f"pscore must have shape ({n},) like reward, got {pscore.shape}")
        bad = (pscore <= 0) | (pscore > 1)
        if bad.any():
            raise ValueError(
                f"pscore must lie in (0, 1] (a propensity of 0 gives an infinite importance weight), "
                f"found {pscore[bad][0]:.6g} in {_first_bad(bad)}"
            )
    if estimated_rewards_by_reg_model is not None:
        estimated_rewards_by_reg_model = _float_array(
            "estimated_rewards_by_reg_model", estimated_rewards_by_reg_model, 3
        )
        if estimated_rewards_by_reg_model.shape != action_dist.shape:
            raise ValueError(
                f"estimated_rewards_by_reg_model must have the shape of action_dist {action_dist.shape}, "
                f"got {estimated_rewards_by_reg_model.shape}"
            )
    return OPEInputs(reward, action, position, action_dist, pscore, estimated_rewards_by_reg_model)


# ---------------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class RoundTerms:
    """Per-round terms of an estimate: V̂ = mean(base) + mean(correction) / mean(normaliser)."""

    base: np.ndarray  # (n,)
    correction: np.ndarray | None = None  # (n,), None = 0
    normaliser: np.ndarray | None = None  # (n,), None = 1

    def value(self) -> float:
        value = float(self.base.mean())
        if self.correction is not None:
            norm = 1.0 if self.normaliser is None else float(self.normaliser.mean())
            value += float(self.correction.mean()) / norm
        return value

    def round_rewards(self) -> np.ndarray:
        """(n,) per-round contributions whose mean is :meth:`value` (obp's ``_estimate_round_rewards``)."""
        if self.correction is None:
            return self.base
        norm = 1.0 if self.normaliser is None else float(self.normaliser.mean())
        return self.base + self.correction / norm

    def columns(self) -> np.ndarray:
        """(n, 3) [base, correction, normaliser] for the bootstrap."""
        n = self.base.shape[0]
        corr = np.zeros(n) if self.correction is None else self.correction
        norm = np.ones(n) if self.normaliser is None else self.normaliser
        return np.column_stack([self.base, corr, norm])


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its percentile bootstrap interval.

    ``value``: the estimate on all rounds; ``mean``: the mean of the bootstrap replicates;
    ``low``, ``high``: their ``alpha/2`` and ``1 - alpha/2`` percentiles.
    """

    value: float
    mean: float
    low: float
    high: float

    def covers(self, truth: float) -> bool:
        return self.low <= truth <= self.high


def bootstrap_counts(n_rounds: int, n_bootstrap: int, random_state: int) -> Iterator[np.ndarray]:
    """Resample counts in chunks: (chunk, n_rounds) float64, row b = how often each round is drawn.

    Row b holds the counts of ``RandomState(random_state).randint(0, n_rounds, n_rounds)`` for the
    b-th resample in sequence — the draws obp's bootstrap makes with the same ``random_state``.
    """
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap_samples must be >= 1, got {n_bootstrap}")
    rng = np.random.RandomState(random_state)
    chunk = max(1, _BOOTSTRAP_CELLS // n_rounds)
    for start in range(0, n_bootstrap, chunk):
        size = min(chunk, n_bootstrap - start)
        idx = rng.randint(0, n_rounds, size=(size, n_rounds))
        flat = (idx + (np.arange(size) * n_rounds)[:, None]).ravel()
        yield np.bincount(flat, minlength=size * n_rounds).reshape(size, n_rounds).astype(np.float64)


def bootstrap_values(terms: Sequence[RoundTerms], n_bootstrap: int, random_state: int) -> np.ndarray:
    """(n_bootstrap, len(terms)) values of each estimate on the same resamples of the rounds."""
    stacked = np.concatenate([t.columns() for t in terms], axis=1)  # (n, 3 m)
    n = stacked.shape[0]
    parts = []
    for counts in bootstrap_counts(n, n_bootstrap, random_state):
        means = (counts @ stacked) / n  # (chunk, 3 m)
        parts.append(means[:, 0::3] + means[:, 1::3] / means[:, 2::3])
    return np.concatenate(parts, axis=0)


def summarise(value: float, replicates: np.ndarray, alpha: float) -> Estimate:
    """An :class:`Estimate` from a point value and its (n_bootstrap,) replicates."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    low, high = np.percentile(replicates, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return Estimate(float(value), float(np.mean(replicates)), float(low), float(high))


# ---------------------------------------------------------------------------------------------- estimators
@dataclass(frozen=True)
class OffPolicyEstimator(ABC):
    """Base class: validates inputs, turns :meth:`round_terms` into estimates and intervals.

    Subclasses set ``name``, declare what they need (``uses_pscore``, ``uses_reward_model``) and
    implement :meth:`round_terms`; hyperparameters are checked in :meth:`_check_hyperparameters`.
    """

    name: ClassVar[str]
    uses_pscore: ClassVar[bool] = True
    uses_reward_model: ClassVar[bool] = False

    def __post_init__(self) -> None:
        self._check_hyperparameters()

    def _check_hyperparameters(self) -> None:
        """Raise ``ValueError`` on an invalid hyperparameter; nothing to check by default."""

    @abstractmethod
    def round_terms(self, data: OPEInputs) -> RoundTerms:
        """The per-round terms of the estimate on validated ``data``."""

    def check(
        self,
        *,
        reward: np.ndarray,
        action: np.ndarray,
        action_dist: np.ndarray,
        pscore: np.ndarray | None = None,
        position: np.ndarray | None = None,
        estimated_rewards_by_reg_model: np.ndarray | None = None,
    ) -> OPEInputs:
        """Validate the inputs (:func:`check_inputs`) and that this estimator's required ones are given."""
        if self.uses_pscore and pscore is None:
            raise ValueError(f"pscore is required by {self.name}")
        if self.uses_reward_model and estimated_rewards_by_reg_model is None:
            raise ValueError(f"estimated_rewards_by_reg_model is required by {self.name}")
        return check_inputs(reward, action, action_dist, pscore, position, estimated_rewards_by_reg_model)

    def estimate_policy_value(
        self,
        *,
        reward: np.ndarray,
        action: np.ndarray,
        action_dist: np.ndarray,
        pscore: np.ndarray | None = None,
        position: np.ndarray | None = None,
        estimated_rewards_by_reg_model: np.ndarray | None = None,
    ) -> float:
        """V̂(π_e): expected reward per round (per shown slot for slates). Arrays as in the module docstring."""
        data = self.check(
            reward=reward, action=action, action_dist=action_dist, pscore=pscore, position=position,
            estimated_rewards_by_reg_model=estimated_rewards_by_reg_model,
        )
        return self.round_terms(data).value()

    def estimate_interval(
        self,
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
    ) -> Estimate:
        """The estimate with a percentile bootstrap interval of level ``1 - alpha``, seeded by ``random_state``."""
        data = self.check(
            reward=reward, action=action, action_dist=action_dist, pscore=pscore, position=position,
            estimated_rewards_by_reg_model=estimated_rewards_by_reg_model,
        )
        terms = self.round_terms(data)
        return summarise(terms.value(), bootstrap_values([terms], n_bootstrap_samples, random_state)[:, 0], alpha)


@dataclass(frozen=True)
class DirectMethod(OffPolicyEstimator):
    r"""Direct Method: :math:`\hat V_{DM} = \mathbb{E}_n[\sum_a \pi_e(a|x_i,k_i)\,\hat q(x_i,a,k_i)]`.

    Beygelzimer & Langford, "The Offset Tree for Learning with Partial Labels", KDD 2009.
    Unbiased only if the reward model is; no propensities needed.
    """

    name: ClassVar[str] = "dm"
    uses_pscore: ClassVar[bool] = False
    uses_reward_model: ClassVar[bool] = True

    def round_terms(self, data: OPEInputs) -> RoundTerms:
        return RoundTerms(data.q_policy)


@dataclass(frozen=True)
class ShrinkageEstimator(OffPolicyEstimator):
    """Estimators with a weight-shrinkage hyperparameter ``lambda_`` ≥ 0 (inf = none); :meth:`shrink`
    is the hook that maps importance weights w to ŵ. :mod:`recause.models.ope.tuning` picks ``lambda_``."""

    lambda_: float = np.inf

    def _check_hyperparameters(self) -> None:
        if not isinstance(self.lambda_, (int, float)) or isinstance(self.lambda_, bool) or np.isnan(self.lambda_):
            raise ValueError(f"lambda_ must be a number >= 0 (inf = no shrinkage), got {self.lambda_!r}")
        if self.lambda_ < 0:
            raise ValueError(f"lambda_ must be >= 0, got {self.lambda_}")

    def shrink(self, w: np.ndarray) -> np.ndarray:
        """Shrunk importance weights ŵ(w); clipping min(w, λ) by default."""
        return np.minimum(w, self.lambda_)


@dataclass(frozen=True)
class InverseProbabilityWeighting(ShrinkageEstimator):
    r"""IPS: :math:`\hat V = \mathbb{E}_n[\min(w_i, \lambda)\, r_i]`; λ = inf is unbiased.

    Strehl, Langford, Li & Kakade, "Learning from Logged Implicit Exploration Data", NeurIPS 2010;
    clipping as in Su et al., ICML 2020.
    """

    name: ClassVar[str] = "ipw"

    def round_terms(self, data: OPEInputs) -> RoundTerms:
        return RoundTerms(self.shrink(data.importance_weight) * data.reward)


@dataclass(frozen=True)
class SelfNormalizedInverseProbabilityWeighting(OffPolicyEstimator):
    r"""SNIPS: :math:`\hat V = \mathbb{E}_n[w_i r_i] / \mathbb{E}_n[w_i]`.

    Swaminathan & Joachims, "The Self-Normalized Estimator for Counterfactual Learning", NeurIPS 2015.
    """

    name: ClassVar[str] = "snipw"

    def round_terms(self, data: OPEInputs) -> RoundTerms:
        w = data.importance_weight
        return RoundTerms(np.zeros(data.n_rounds), w * data.reward, w)


@dataclass(frozen=True)
class DoublyRobust(ShrinkageEstimator):
    r"""DR: :math:`\hat V = \mathbb{E}_n[\hat q_\pi(x_i,k_i) + \hat w_i (r_i - \hat q(x_i,a_i,k_i))]`.

    Dudík, Erhan, Langford & Li, "Doubly Robust Policy Evaluation and Optimization", Statistical
    Science 2014. ``lambda_`` clips the weights (ŵ = min(w, λ)); inf = plain DR. Variants change
    :meth:`shrink` only.
    """

    name: ClassVar[str] = "dr"
    uses_reward_model: ClassVar[bool] = True

    def round_terms(self, data: OPEInputs) -> RoundTerms:
        w_hat = self.shrink(data.importance_weight)
        return RoundTerms(data.q_policy + w_hat * (data.reward - data.q_factual))


@dataclass(frozen=True)
class SwitchDoublyRobust(DoublyRobust):
    r"""Switch-DR: the DR correction only where :math:`w_i \le \lambda` (ŵ = w·1[w ≤ λ]), DM elsewhere.

    Wang, Agarwal & Dudík, "Optimal and Adaptive Off-policy Evaluation in Contextual Bandits",
    ICML 2017. λ = inf is DR, λ = 0 is DM (except rounds with w = 0).
    """

    name: ClassVar[str] = "switch-dr"

    def shrink(self, w: np.ndarray) -> np.ndarray:
        return w * (w <= self.lambda_)


@dataclass(frozen=True)
class DoublyRobustWithShrinkage(DoublyRobust):
    r"""DR with optimistic shrinkage: :math:`\hat w = \lambda w / (w^2 + \lambda)`.

    Su, Dimakopoulou, Krishnamurthy & Dudík, "Doubly Robust Off-policy Evaluation with Shrinkage",
    ICML 2020. λ = inf is DR, λ = 0 is DM.
    """

    name: ClassVar[str] = "dr-os"

    def shrink(self, w: np.ndarray) -> np.ndarray:
        if np.isinf(self.lambda_):
            return w
        if self.lambda_ == 0:
            return np.zeros_like(w)
        return self.lambda_ * w / (w**2 + self.lambda_)


@dataclass(frozen=True)
class SelfNormalizedDoublyRobust(OffPolicyEstimator):
    r"""SNDR: :math:`\hat V = \mathbb{E}_n[\hat q_\pi] + \mathbb{E}_n[w_i (r_i - \hat q_i)] / \mathbb{E}_n[w_i]`.

    The self-normalised DR of Kallus & Uehara, "Intrinsically Efficient, Stable, and Bounded
    Off-Policy Evaluation for Reinforcement Learning", NeurIPS 2019 (as obp's ``sndr``).
    """

    name: ClassVar[str] = "sndr"
    uses_reward_model: ClassVar[bool] = True

    def round_terms(self, data: OPEInputs) -> RoundTerms:
        w = data.importance_weight
        return RoundTerms(data.q_policy, w * (data.reward - data.q_factual), w)
