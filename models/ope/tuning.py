r"""Data-driven shrinkage for off-policy estimators: λ chosen on the logged data.

- :class:`SwitchDoublyRobustTuning`, :class:`DoublyRobustWithShrinkageTuning` (and the IPS / DR
  clipping versions) pick ``lambda_`` from a candidate grid on the logged data the way Open Bandit
  Pipeline's ``estimators_tuning`` does, by one of two rules:

  * ``"slope"`` (default, as obp): SLOPE, Su, Srinath & Krishnamurthy, "Adaptive Estimator
    Selection for Off-Policy Evaluation", ICML 2020 (the variant of Tucker & Lee, 2021). Candidates
    are ordered by the width :math:`c_\lambda = t_{n-1}(1-\delta)\sqrt{\widehat{\mathrm{Var}}/(n-1)}`
    of their one-sided Student-t bound, widest first; walking down, a candidate is kept while
    :math:`|\hat V_j - \hat V_i| \le c_i + (\sqrt 6 - 1)\,c_j` for every kept j; the last one kept wins.
  * ``"mse"``: the smallest estimated MSE, :math:`\widehat{\mathrm{Var}}(\text{round rewards})/n +
    \widehat{\mathrm{Bias}}^2` with :math:`\widehat{\mathrm{Bias}} = |\mathbb{E}_n[(w - \hat w)(r - \hat q)]|`,
    plus, with ``use_bias_upper_bound``, the high-probability terms
    :math:`\sqrt{2\,\mathbb{E}_n[w^2]\log(2/\delta)/n} + 2\max w\,\log(2/\delta)/(3n)`
    (Su, Dimakopoulou, Krishnamurthy & Dudík, ICML 2020; Wang, Agarwal & Dudík, ICML 2017).

  ``lambda_`` is chosen once on all rounds; the bootstrap interval then holds it fixed (as obp).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from recause.models.ope.estimators import (
    DoublyRobust,
    DoublyRobustWithShrinkage,
    InverseProbabilityWeighting,
    OffPolicyEstimator,
    OPEInputs,
    RoundTerms,
    ShrinkageEstimator,
    SwitchDoublyRobust,
)

TuningMethod = Literal["slope", "mse"]
_SLOPE_C = np.sqrt(6.0) - 1.0


@dataclass(frozen=True)
class ShrinkageTuning(OffPolicyEstimator):
    """Picks ``lambda_`` of a :class:`~recause.models.ope.estimators.ShrinkageEstimator` family on the data, then estimates.

    Parameters
    ----------
    lambdas : candidate values, each >= 0 (``inf`` = no shrinkage).
    tuning_method : ``"slope"`` or ``"mse"`` (see the module docstring).
    delta : confidence parameter of the Student-t width (SLOPE) or the bias bound (MSE), in (0, 1).
    use_bias_upper_bound : MSE only: add the high-probability deviation terms to the bias.
    """

    family: ClassVar[type[ShrinkageEstimator]]
    descending: ClassVar[bool] = True  # obp's candidate order; it decides ties
    lambdas: tuple[float, ...] = ()
    tuning_method: TuningMethod = "slope"
    delta: float = 0.1
    use_bias_upper_bound: bool = True

    def _check_hyperparameters(self) -> None:
        if len(self.lambdas) == 0:
            raise ValueError("lambdas must hold at least one candidate value")
        for value in self.lambdas:
            self.family(lambda_=value)  # raises on a negative, NaN or non-numeric candidate
        if self.tuning_method not in ("slope", "mse"):
            raise ValueError(f"tuning_method must be 'slope' or 'mse', got {self.tuning_method!r}")
        if not 0.0 < self.delta < 1.0:
            raise ValueError(f"delta must lie in (0, 1), got {self.delta}")

    @property
    def uses_reward_model(self) -> bool:  # type: ignore[override]
        return self.family.uses_reward_model

    def candidates(self) -> list[ShrinkageEstimator]:
        """One estimator per distinct λ, in obp's order (descending, ascending for shrinkage)."""
        values = sorted({float(v) for v in self.lambdas}, reverse=self.descending)
        return [self.family(lambda_=v) for v in values]

    def select(self, data: OPEInputs) -> ShrinkageEstimator:
        """The candidate that ``tuning_method`` picks on validated ``data``."""
        candidates = self.candidates()
        terms = [c.round_terms(data) for c in candidates]
        if self.tuning_method == "mse":
            scores = [self._estimated_mse(c, t, data) for c, t in zip(candidates, terms)]
            return candidates[int(np.argmin(scores))]
        return candidates[self._slope(terms)]

    def round_terms(self, data: OPEInputs) -> RoundTerms:
        return self.select(data).round_terms(data)

    def _slope(self, terms: Sequence[RoundTerms]) -> int:
        from scipy.special import stdtrit  # lazy: scipy is only needed here

        rewards = [t.round_rewards() for t in terms]
        n = rewards[0].shape[0]
        t_quantile = stdtrit(n - 1, 1.0 - self.delta)
        theta = [float(r.mean()) for r in rewards]
        width = [float(np.sqrt(np.var(r) / (n - 1)) * t_quantile) for r in rewards]
        order = np.argsort(width)[::-1]  # widest first
        kept_theta, kept_width = [theta[order[0]]], [width[order[0]]]
        for rank, idx in enumerate(order[1:], start=1):
            gap_ok = np.abs(np.array(kept_theta) - theta[idx]) <= width[idx] + _SLOPE_C * np.array(kept_width)
            if not gap_ok.all():
                return int(order[rank - 1])
            kept_theta.append(theta[idx])
            kept_width.append(width[idx])
        return int(order[-1])

    def _estimated_mse(self, estimator: ShrinkageEstimator, terms: RoundTerms, data: OPEInputs) -> float:
        n = data.n_rounds
        w = data.importance_weight
        residual = data.reward - data.q_factual if self.family.uses_reward_model else data.reward
        bias = abs(float(((w - estimator.shrink(w)) * residual).mean()))
        if self.use_bias_upper_bound:
            log_term = np.log(2.0 / self.delta)
            bias += np.sqrt(2.0 * float((w**2).mean()) * log_term / n) + 2.0 * float(w.max()) * log_term / (3.0 * n)
        return float(np.var(terms.round_rewards())) / n + bias**2


@dataclass(frozen=True)
class InverseProbabilityWeightingTuning(ShrinkageTuning):
    """IPS with its clipping threshold λ (ŵ = min(w, λ)) chosen on the data."""

    name: ClassVar[str] = "ipw-tuned"
    family: ClassVar[type[ShrinkageEstimator]] = InverseProbabilityWeighting


@dataclass(frozen=True)
class DoublyRobustTuning(ShrinkageTuning):
    """DR with its clipping threshold λ (ŵ = min(w, λ)) chosen on the data."""

    name: ClassVar[str] = "dr-tuned"
    family: ClassVar[type[ShrinkageEstimator]] = DoublyRobust


@dataclass(frozen=True)
class SwitchDoublyRobustTuning(ShrinkageTuning):
    """Switch-DR (Wang et al., ICML 2017) with its switching threshold λ chosen on the data."""

    name: ClassVar[str] = "switch-dr-tuned"
    family: ClassVar[type[ShrinkageEstimator]] = SwitchDoublyRobust
    lambdas: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, np.inf)


@dataclass(frozen=True)
class DoublyRobustWithShrinkageTuning(ShrinkageTuning):
    """DR-OS (Su et al., ICML 2020) with its shrinkage λ chosen on the data."""

    name: ClassVar[str] = "dr-os-tuned"
    family: ClassVar[type[ShrinkageEstimator]] = DoublyRobustWithShrinkage
    descending: ClassVar[bool] = False
    lambdas: tuple[float, ...] = (1.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 5000.0, 10000.0, np.inf)
