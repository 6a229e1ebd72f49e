r"""Losses of the causal recommender, as pure functions of per-row tensors.

Notation: a *pair* is (user u, item i); the population is all :math:`N = n_{users} n_{items}`
pairs; :math:`O_{ui} \in \{0,1\}` says the pair was exposed (shown, or rated in a self-selected
log) in training; :math:`p_{ui} = P(O_{ui}=1 \mid u, i)` is its propensity; :math:`\ell` is the
binary cross-entropy of a prediction against a label. Estimands and assumptions are stated on
each function; all of them need

- **consistency**: the outcome observed under exposure is the potential outcome :math:`Y(1)`;
- **positivity**: :math:`p_{ui} > 0` wherever the loss is evaluated (clipping trades bias for
  variance where it fails in practice);
- **no unmeasured confounding** given the pair's representation (here, the graph state of u and
  i): :math:`O \perp Y(1), Y(0) \mid h_u, h_i`.

Minibatch estimators: rows of the observed set are drawn uniformly from it, "all pairs" terms
from uniformly drawn pairs; ``observed_share`` = |observed rows| / N rescales the observed part
so the sum estimates the population mean (self-normalised variants need no rescaling).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

_EPS = 1e-7


def bpr_loss(positive: Tensor, negative: Tensor) -> Tensor:
    r"""Bayesian personalised ranking (Rendle et al., UAI 2009): :math:`-\overline{\log\sigma(s_{ui} - s_{uj})}`.

    ``positive`` (B,) scores of observed pairs, ``negative`` (B,) or (B, k) of sampled items for
    the same users. Estimand: a ranking of items by P(observed | u, i) — associational, no causal claim.
    """
    if negative.dim() == 2:
        positive = positive.unsqueeze(1)
    return -F.logsigmoid(positive - negative).mean()


def bce_prob(prob: Tensor, label: Tensor) -> Tensor:
    """Row-wise binary cross-entropy of probabilities (clamped to [ε, 1-ε]); (B,) -> (B,)."""
    prob = prob.clamp(_EPS, 1.0 - _EPS)
    return -(label * prob.log() + (1.0 - label) * torch.log1p(-prob))


def inverse_propensity_weights(propensity: Tensor, clip: float) -> Tensor:
    """1 / max(p, clip): (B,) -> (B,). ``clip`` in [0, 1) bounds the weights by 1/clip."""
    if not 0.0 <= clip < 1.0:
        raise ValueError(f"clip must lie in [0, 1), got {clip}")
    return 1.0 / propensity.clamp_min(max(clip, _EPS))


def ips_loss(
    row_loss: Tensor,
    propensity: Tensor,
    *,
    clip: float = 0.0,
    self_normalise: bool = False,
    observed_share: float = 1.0,
    row_weight: Tensor | None = None,
) -> Tensor:
    r"""Inverse-propensity-scored risk (Schnabel et al., ICML 2016).

    .. math::
        \hat R_{IPS} = \frac{1}{N}\sum_{(u,i):\,O_{ui}=1} \frac{\ell_{ui}}{p_{ui}}
        \qquad
        \hat R_{SNIPS} = \frac{\sum_{O=1} \ell_{ui}/p_{ui}}{\sum_{O=1} 1/p_{ui}}

    Estimand: the mean loss over *all* pairs, :math:`\frac1N\sum_{u,i}\ell(Y_{ui}(1), \hat y_{ui})`,
    as if every pair had been exposed. Unbiased with the true propensities under the three
    assumptions above; SNIPS is consistent and bounded.

    Parameters
    ----------
    row_loss : (B,) loss of observed rows.
    propensity : (B,) p of each row's pair.
    clip : lower bound on p.
    self_normalise : SNIPS instead of IPS.
    observed_share : |observed rows| / N (IPS only): the batch mean times it estimates the sum / N.
    row_weight : (B,) optional multiplier of each row's weight, e.g. 1/(rows of its pair) when a
        pair is logged several times, so each pair counts once.
    """
    w = inverse_propensity_weights(propensity, clip)
    if row_weight is not None:
        w = w * row_weight
    if self_normalise:
        return (w * row_loss).sum() / w.sum()
    return observed_share * (w * row_loss).mean()


def dr_loss(
    observed_prob: Tensor,
    observed_label: Tensor,
    observed_propensity: Tensor,
    observed_imputed: Tensor,
    pair_prob: Tensor,
    pair_imputed: Tensor,
    *,
    clip: float = 0.0,
    self_normalise: bool = False,
    observed_share: float = 1.0,
    row_weight: Tensor | None = None,
) -> Tensor:
    r"""Doubly robust risk with an imputation model (Wang et al., ICML 2019, "DR-JL").

    .. math::
        \hat R_{DR} = \frac1N \sum_{u,i}\Big[\ell(m_{ui}, \hat y_{ui})
            + \frac{O_{ui}}{p_{ui}}\big(\ell(Y_{ui}, \hat y_{ui}) - \ell(m_{ui}, \hat y_{ui})\big)\Big]

    where :math:`m_{ui}` is the imputed probability of a positive outcome and ℓ the
    cross-entropy. Estimand: as :func:`ips_loss`; unbiased if *either* the propensities or the
    imputation are correct. The first sum is estimated on uniformly drawn pairs, the correction
    on observed rows (times ``observed_share``, or self-normalised by :math:`\sum 1/p`).

    Parameters
    ----------
    observed_prob, observed_label, observed_propensity, observed_imputed : (B,) observed rows:
        predicted probability, label, propensity, imputed probability.
    pair_prob, pair_imputed : (B',) uniformly drawn pairs.
    The imputations are treated as constants (no gradient flows into the imputation model).
    """
    direct = bce_prob(pair_prob, pair_imputed.detach()).mean()
    correction = bce_prob(observed_prob, observed_label) - bce_prob(observed_prob, observed_imputed.detach())
    return direct + ips_loss(
        correction, observed_propensity, clip=clip, self_normalise=self_normalise,
        observed_share=observed_share, row_weight=row_weight,
    )


def population_nll(positive_log_p: Tensor, pair_log_q: Tensor, pair_negative: Tensor, positive_share: float) -> Tensor:
    r"""Negative log-likelihood per pair of a binary label over the whole population, by sampling.

    .. math::
        \frac1N\sum_{u,i} -\big[z_{ui}\log p_{ui} + (1-z_{ui})\log(1-p_{ui})\big]
        \approx s\,\overline{-\log p}^{\,\text{positives}} + \overline{-(1-z)\log(1-p)}^{\,\text{uniform pairs}}

    with :math:`s` = (number of positive pairs) / N. Used for the exposure label (propensity) and
    the organic outcome among unexposed pairs, whose negatives are every other pair.

    Parameters
    ----------
    positive_log_p : (B,) log p at pairs drawn uniformly from the positives.
    pair_log_q : (B',) log(1 - p) at pairs drawn uniformly from all pairs.
    pair_negative : (B',) 1 where that drawn pair counts as a negative, 0 where it is a positive
        (already counted) or outside the population (then it contributes nothing).
    positive_share : s.
    """
    return -positive_share * positive_log_p.mean() - (pair_negative * pair_log_q).mean()


def cloglog_log_probs(log_intensity: Tensor, exposure: Tensor | float = 1.0) -> tuple[Tensor, Tensor]:
    r"""(log p, log(1-p)) for :math:`p = 1 - \exp(-r\lambda)`, :math:`\lambda = e^{x}`.

    The complementary log-log link of an exposure process with intensity λ observed over a share
    r of the log: a pair drawn into K·S independent slots with probability π each is exposed with
    :math:`1-(1-\pi)^{KS} \approx 1-e^{-KS\pi}`.
    """
    rate = torch.as_tensor(exposure, dtype=log_intensity.dtype, device=log_intensity.device) * log_intensity.exp()
    return torch.log((-torch.expm1(-rate)).clamp_min(_EPS)), -rate


def logged_intensity_loss(log_intensity: Tensor, logged: Tensor, exposure: Tensor | float = 1.0,
                          row_weight: Tensor | None = None) -> Tensor:
    r"""Squared error of the exposure model's log-intensity against the one the log's propensities imply.

    Where the logging policy recorded its propensity, an exposed pair's logged probability of exposure
    :math:`g = 1 - (1-\pi)^{n}` (π per slot, n slots) fixes the intensity of :func:`cloglog_log_probs`
    exactly: :math:`r\,e^{x^*} = -\log(1-g)`, so :math:`x^* = \log(-\log(1-g)) - \log r`. The loss is

    .. math:: \frac1B \sum_j w_j\,(x_j - x^*_j)^2

    over the batch's B exposed rows, those without a known propensity (NaN) contributing 0. A plain
    mean over rows, like every other term, so that under DDP the mean of the shards' losses is the
    whole batch's (a ratio of weighted sums would not split). The binary exposure label tells
    the model *that* a pair was shown; the logged propensity says *how likely* it was — a real number on
    every impression, the logging policy's knowledge of the user distilled into the exposure model,
    which then generalises it to the pairs never shown. Estimand: the logging policy's
    :math:`\log \lambda(u,i)`, associational (no causal claim of its own).

    ``log_intensity``, ``logged``, ``row_weight``: (B,); ``exposure`` r: (B,) or a scalar (the user's share
    of the log); ``row_weight`` e.g. 1/(rows of the pair), so each pair counts once. Returns a scalar (0 when no row
    has a logged propensity).
    """
    known = torch.isfinite(logged) & (logged > 0)
    weight = known.to(log_intensity.dtype) * (1.0 if row_weight is None else row_weight)
    rate = -torch.log1p(-logged.clamp(_EPS, 1.0 - _EPS))
    r = torch.as_tensor(exposure, dtype=log_intensity.dtype, device=log_intensity.device).clamp_min(_EPS)
    target = torch.where(known, torch.log(rate.clamp_min(_EPS)) - torch.log(r), torch.zeros_like(rate))
    return (weight * (log_intensity - target) ** 2).mean()


def thinned_log_probs(logit: Tensor, retention: Tensor | float = 1.0) -> tuple[Tensor, Tensor]:
    """(log p, log(1-p)) for p = r·σ(x): an event of probability σ(x) kept in the data with probability r."""
    r = torch.as_tensor(retention, dtype=logit.dtype, device=logit.device)
    log_p = torch.log(r.clamp_min(_EPS)) + F.logsigmoid(logit)
    return log_p, torch.log1p(-(r * torch.sigmoid(logit)).clamp_max(1.0 - _EPS))


def examined_probability(p_unexposed: Tensor, p_exposed: Tensor, examination: Tensor) -> Tensor:
    r"""P(Y=1 | shown in a slot examined with probability κ) = :math:`p_0 + \kappa\,(p_1 - p_0)`.

    The examination hypothesis with an organic baseline: an unexamined recommendation acts as
    no exposure. With :math:`p_0 = 0` it is the position-based click model :math:`\kappa\,p_1`.
    """
    return p_unexposed + examination * (p_exposed - p_unexposed)


def targeted_regularisation(
    outcome: Tensor, predicted: Tensor, treated: Tensor, propensity: Tensor, epsilon: Tensor, weight: Tensor | None = None, clip: float = 0.01
) -> Tensor:
    r"""DragonNet's targeted regularisation (Shi, Blei and Veitch, NeurIPS 2019).

    .. math::
        \tilde Q = Q(T, x) + \varepsilon\Big(\frac{T}{g(x)} - \frac{1-T}{1-g(x)}\Big),\qquad
        \gamma\;\overline{(Y - \tilde Q)^2}

    with a learned scalar ε. At a stationary point in ε the plug-in estimate satisfies the
    efficient-influence-curve equation of the average treatment effect, which is what makes the
    plug-in ATE doubly robust. ``weight`` (B,) makes the mean a population mean when rows are
    drawn from several strata; g is clipped to [clip, 1-clip].
    """
    g = propensity.clamp(clip, 1.0 - clip)
    q_tilde = predicted + epsilon * (treated / g - (1.0 - treated) / (1.0 - g))
    sq = (outcome - q_tilde) ** 2
    if weight is None:
        return sq.mean()
    return (weight * sq).sum() / weight.sum()
