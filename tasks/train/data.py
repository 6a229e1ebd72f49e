"""From a :class:`~recause.tasks.data.split.Split` to the causal recommender's tensors, and validation metrics.

What each kind of row becomes (:class:`recause.models.gnn.batches.InteractionData`):

- every positive row (outcome ≥ the dataset's threshold, exposed or not) is an implicit positive;
- every exposed row is a labelled exposed row, with its 0-based slot when the log has positions,
  ``1 / (rows of the same pair)`` so a pair logged several times counts once, and its logged
  *pair* propensity P(pair exposed): the given propensity where rows have no position (a rated
  pair, e.g. Coat), or :math:`1-(1-\\pi)^{n_u}` for slate logs, whose propensity π is per slot and
  user u has :math:`n_u` logged slots in this part;
- an unexposed positive row (an organic find) is an outcome of the unexposed arm, kept only when
  ``meta.has_unexposed_outcomes``;
- ``retention``: the share of each user's rows that fell into this part (per-user splits thin a
  user's log at random: P(an event of the log is in train) = that share); 1 for the training part
  of a randomized split.

Validation metrics use :mod:`recause.models.metrics` exactly as the harness does (:mod:`recause.tasks.evaluate`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from recause.models.gnn.batches import ExposedRows, InteractionData
from recause.models.metrics import RankingAccumulator, auc, grouped_ndcg, mask_seen, qini_weights, rank_positions, top_k_items
from recause.tasks.data.schema import DatasetMeta
from recause.tasks.data.exposure import exposed_rows, inverse_propensity, shown_pairs
from recause.tasks.data.split import Split

ScoreFn = Callable[[np.ndarray, str], np.ndarray]


def retention(split: Split, part: str) -> np.ndarray:
    """(n_users,) share of each user's rows in ``part`` (train / val / test)."""
    if split.kind == "randomized":
        return np.ones(split.n_users)
    counts = {p: np.bincount(getattr(split, p)["user"].to_numpy(), minlength=split.n_users) for p in ("train", "val", "test")}
    total = counts["train"] + counts["val"] + counts["test"]
    return np.where(total > 0, counts[part] / np.maximum(total, 1), 0.0)


def has_labelled_exposure(frame: pd.DataFrame) -> bool:
    """Whether exposed rows carry both outcomes (clicks and non-clicks, high and low ratings)."""
    exposed = frame.loc[exposed_rows(frame), "positive"]
    return bool(exposed.any() and not exposed.all())


def interaction_data(frame: pd.DataFrame, split: Split, meta: DatasetMeta, share: np.ndarray, *, slots: bool = True) -> InteractionData:
    """The tensors of one part (``frame`` = split.train or split.val) with per-user ``share``."""
    user = frame["user"].to_numpy(np.int64)
    item = frame["item"].to_numpy(np.int64)
    positive = frame["positive"].to_numpy(bool)
    exposed = exposed_rows(frame)
    ex_rows = None
    n_slots = 0
    if exposed.any():
        eu, ei = user[exposed], item[exposed]
        slot = np.full(len(eu), -1, dtype=np.int64)
        has_position = slots and "position" in frame.columns and frame.loc[exposed, "position"].notna().all()
        if has_position:
            slot = frame.loc[exposed, "position"].to_numpy(np.int64) - 1
            n_slots = int(slot.max()) + 1
        codes = eu * split.n_items + ei
        _, inverse, counts = np.unique(codes, return_inverse=True, return_counts=True)
        logged = np.full(len(eu), np.nan)
        if "propensity" in frame.columns:
            pi = frame.loc[exposed, "propensity"].to_numpy(np.float64)
            if has_position:
                slots_of_user = np.bincount(eu, minlength=split.n_users)[eu]
                logged = -np.expm1(slots_of_user * np.log1p(-np.clip(pi, 0.0, 1.0 - 1e-12)))
            else:
                logged = pi
        ex_rows = ExposedRows(
            user=_long(eu), item=_long(ei), label=torch.as_tensor(positive[exposed], dtype=torch.float32),
            slot=_long(slot), pair_weight=torch.as_tensor(1.0 / counts[inverse], dtype=torch.float32),
            logged_propensity=torch.as_tensor(np.array(logged, dtype=np.float32)),
        )
    organic = positive & ~exposed if meta.has_unexposed_outcomes else np.zeros(len(frame), dtype=bool)
    return InteractionData(
        n_users=split.n_users, n_items=split.n_items, retention=torch.as_tensor(share, dtype=torch.float32),
        positive_user=_long(user[positive]), positive_item=_long(item[positive]), exposed=ex_rows,
        organic_user=_long(user[organic]) if organic.any() else None,
        organic_item=_long(item[organic]) if organic.any() else None, n_slots=n_slots,
    )


def graph_pairs(frame: pd.DataFrame, edges: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(users, items) of the graph's edges: ``"positives"`` or ``"all"`` training rows."""
    rows = frame if edges == "all" else frame[frame["positive"]]
    return _long(rows["user"].to_numpy(np.int64)), _long(rows["item"].to_numpy(np.int64))


def text_matrix(user_vectors: np.ndarray, item_vectors: np.ndarray) -> torch.Tensor:
    """(n_users + n_items, d) node text in node order (users, then items)."""
    return torch.as_tensor(np.concatenate([user_vectors, item_vectors]), dtype=torch.float32)


# ---------------------------------------------------------------------------------------------- validation
def ranking_validator(split: Split, k: int = 20, head: str = "exposed", user_batch: int = 2048) -> Callable[[ScoreFn], dict[str, float]]:
    """Full-ranking Recall/NDCG@k on validation positives, train positives excluded (the harness's rule)."""
    seen = split.train[split.train["positive"]]
    target = split.val[split.val["positive"]][["user", "item"]].drop_duplicates()
    seen_codes = seen["user"].to_numpy() * split.n_items + seen["item"].to_numpy()
    target = target[~np.isin(target["user"].to_numpy() * split.n_items + target["item"].to_numpy(), seen_codes)]
    s_u, s_i = _sorted(seen["user"].to_numpy(), seen["item"].to_numpy())
    t_u, t_i = _sorted(target["user"].to_numpy(), target["item"].to_numpy())
    users = np.unique(t_u)
    length = min(k, split.n_items)  # a catalogue smaller than k: the whole catalogue, still named @k

    def validate(score: ScoreFn) -> dict[str, float]:
        if users.size == 0:
            return {}
        acc = RankingAccumulator([length])
        for start in range(0, len(users), user_batch):
            block = users[start : start + user_batch]
            rows, cols = _in_block(s_u, s_i, block)
            top = top_k_items(mask_seen(score(block, head), rows, cols), length)
            acc.add(top, *_in_block(t_u, t_i, block))
        result = acc.result()
        return {f"val/ndcg_at_{k}": result[f"ndcg_at_{length}"], f"val/recall_at_{k}": result[f"recall_at_{length}"]}

    return validate


def debias_validator(split: Split, k: int = 5, head: str = "exposed") -> Callable[[ScoreFn], dict[str, float]]:
    """AUC and per-user NDCG@k on the (randomly exposed) validation rows, as the harness scores test."""
    user = split.val["user"].to_numpy()
    item = split.val["item"].to_numpy()
    labels = split.val["positive"].to_numpy(np.int64)
    users, inverse = np.unique(user, return_inverse=True)

    def validate(score: ScoreFn) -> dict[str, float]:
        if len(user) == 0 or labels.sum() in (0, len(labels)):
            return {}
        s = score(users, head)[inverse, item]
        return {"val/auc": auc(s, labels), f"val/ndcg_at_{k}": grouped_ndcg(s, labels.astype(np.float64), user, k)}

    return validate


class UpliftCriterion:
    r"""The uplift ranking's Qini area estimated on the validation log (no ground truth needed).

    Called with a score function, it returns ``val/auuc_ipw`` (the full catalogue's Qini area; with
    ``depths`` also ``val/auuc_ipw_at_D``): :func:`recause.models.metrics.qini_ipw` per validation user, averaged;
    :meth:`per_user` gives the users' values (model selection bootstraps over them). The
    pseudo-outcomes of the positive validation rows:

    - a positive impression j of (u, i): :math:`+1/(n_u\pi_j)` with the logged per-slot propensity
      :math:`\pi_j` and the user's :math:`n_u` validation slots (slate logs; :math:`1/\pi_j` for a
      pair log) — its expectation over the log is :math:`p_0 + \bar\kappa\tau`;
    - an organic find of a pair never shown in any part: :math:`-1/(r_u(1-\hat g))` with :math:`r_u`
      the user's share of the log in validation and :math:`\hat g` an exposure probability (the
      scored model's propensity head when ``propensity_head``, or one given; else 0) — its
      expectation is :math:`p_0`.

    Their difference is :math:`\bar\kappa\,\tau` in expectation: an unbiased (up to ĝ) estimate of
    the area of ranking by τ̂ = f1 − f0, in units of κ̄ (the same for every model, so it ranks them).
    Nothing of the outcome heads enters the weights, so it does not favour the model it scores.
    ``max_weight`` caps the impressions' inverse propensities (clipped IPS: less variance, some bias).
    """

    def __init__(self, split: Split, propensity_head: bool, depths: tuple[int | None, ...] = (None,), user_batch: int = 512,
                 max_weight: float | None = None):
        self.n_items, self.propensity_head, self.depths, self.user_batch = split.n_items, propensity_head, depths, user_batch
        val = split.val
        exposed = exposed_rows(val)
        positive = val["positive"].to_numpy(bool)
        self.user, self.item = val["user"].to_numpy(np.int64), val["item"].to_numpy(np.int64)
        hit = exposed & positive
        self.weight = np.zeros(len(val))
        self.usable = criterion_usable(split)
        if self.usable:
            self.weight[hit] = inverse_propensity(val, split.n_users)[hit]
            if max_weight is not None:  # clipped inverse propensities: less variance, some bias
                self.weight = np.minimum(self.weight, max_weight)
        shown = shown_pairs((split.train, split.val, split.test))
        shown_codes = np.unique(shown["user"].to_numpy(np.int64) * split.n_items + shown["item"].to_numpy(np.int64))
        self.organic = ~exposed & positive & ~np.isin(self.user * split.n_items + self.item, shown_codes)
        self.share = np.clip(retention(split, "val"), 1e-12, 1.0)
        rows = np.flatnonzero(hit | self.organic)
        self.order = rows[np.argsort(self.user[rows], kind="stable")]
        self.users = np.unique(self.user)
        self._last: dict[int | None, np.ndarray] | None = None

    def per_user(self, score: ScoreFn, propensity: Callable[[np.ndarray], np.ndarray] | None = None) -> dict[int | None, np.ndarray]:
        """Per depth, (n_val_users,) each validation user's Qini estimate; ``propensity`` (users ->
        (B, n_items)) replaces the scored model's own ĝ (to compare models on one nuisance)."""
        out = {d: np.zeros(len(self.users)) for d in self.depths}
        if not self.usable:
            return out
        for start, block, these, at, tau in self._blocks(score):
            ranks = rank_positions(tau)[at, self.item[these]]
            psi = self._pseudo_outcomes(score, propensity, block, these, at)
            for d in self.depths:
                out[d][start : start + len(block)] = np.bincount(at, weights=psi * qini_weights(ranks, self.n_items, d),
                                                                 minlength=len(block))
        return out

    def calibration(self, score: ScoreFn, examination: float, level: float | None = 0.95) -> UpliftCalibration | str:
        r"""The least-squares affine map of τ̂ onto τ, :math:`a + b\hat\tau`, fitted on the validation log.

        Over every (validation user, item) pair, :math:`\Gamma = \psi/\bar\kappa` (the summed pseudo-outcomes
        of the pair's positive rows, zero for most pairs) has expectation τ, so the regression of Γ on τ̂
        estimates :math:`b = \mathrm{Cov}(\tau, \hat\tau)/\mathrm{Var}(\hat\tau)` and
        :math:`a = \bar\tau - b\,\bar{\hat\tau}`, the affine predictor of τ with the least mean squared
        error (PEHE); b > 0 keeps every user's uplift ranking. ``examination``: κ̄, the mean probability that
        a logged slot is examined (1 for logs without slots). Returns why not, as a string, when the
        criterion is unusable, τ̂ is constant, the estimated slope is not positive, or — with ``level`` —
        the slope's bootstrap interval over validation users (:func:`slope_interval`) holds 1 or holds 0: the
        heads' f1 − f0 is already a difference of probabilities, and the pseudo-outcomes are noisy enough (a few
        clicks on rarely shown items weigh thousands) that a map the log cannot tell from the identity
        would mostly add noise; and a slope the log cannot tell from 0 would flatten τ̂ toward its mean on no
        evidence (at confounding 2 on the tuning world such maps, slopes 0.09–0.26, raised PEHE from 0.035 to
        0.040–0.047). ``level`` None fits the map whatever its interval.
        """
        if not self.usable:
            return "the validation log cannot score uplift (no positive impression with its propensity)"
        sums = np.zeros((len(self.users), 5))  # per validation user: pairs, Σ τ̂, Σ τ̂², Σ Γ, Σ Γ τ̂
        for start, block, these, at, tau in self._blocks(score):
            tau = tau.astype(np.float64)
            psi = self._pseudo_outcomes(score, None, block, these, at) / examination
            rows = slice(start, start + len(block))
            sums[rows, 0], sums[rows, 1], sums[rows, 2] = tau.shape[1], tau.sum(axis=1), np.square(tau).sum(axis=1)
            sums[rows, 3] = np.bincount(at, weights=psi, minlength=len(block))
            sums[rows, 4] = np.bincount(at, weights=psi * tau[at, self.item[these]], minlength=len(block))
        fit = affine_calibration(*sums.sum(axis=0))
        if isinstance(fit, str) or level is None:
            return fit
        low, high = slope_interval(sums, level)
        if low <= 1.0 <= high:
            return (f"the validation log does not tell the uplift estimate's slope from 1 (b = {fit.slope:.3g}, "
                    f"{level:.0%} bootstrap CI {low:.3g} to {high:.3g} over {len(sums)} users): left as trained")
        if low <= 0.0:
            return (f"the validation log does not tell the uplift estimate's slope from 0 (b = {fit.slope:.3g}, "
                    f"{level:.0%} bootstrap CI {low:.3g} to {high:.3g} over {len(sums)} users; a map would flatten "
                    f"the estimate toward its mean): left as trained")
        return UpliftCalibration(fit.intercept, fit.slope, low, high)

    def _blocks(self, score: ScoreFn):
        """Per block of validation users: its start, users, positive rows (``these``), their rows in the
        block (``at``) and τ̂ = f1 − f0 (B, n_items)."""
        order = self.order
        for start in range(0, len(self.users), self.user_batch):
            block = self.users[start : start + self.user_batch]
            lo, hi = np.searchsorted(self.user[order], [block[0], block[-1] + 1])
            these = order[lo:hi]
            yield start, block, these, np.searchsorted(block, self.user[these]), score(block, "exposed") - score(block, "unexposed")

    def _pseudo_outcomes(self, score: ScoreFn, propensity: Callable[[np.ndarray], np.ndarray] | None,
                         block: np.ndarray, these: np.ndarray, at: np.ndarray) -> np.ndarray:
        """ψ of the rows ``these``: +1/(n_u π) for a positive impression, −1/(r_u(1−ĝ)) for an organic find."""
        psi = self.weight[these].copy()
        found = self.organic[these]
        if found.any():
            g = 0.0
            if propensity is not None:
                g = propensity(block)[at[found], self.item[these][found]]
            elif self.propensity_head:
                g = score(block, "propensity")[at[found], self.item[these][found]]
            psi[found] = -1.0 / (self.share[self.user[these][found]] * np.clip(1.0 - g, 1e-3, 1.0))
        return psi

    def __call__(self, score: ScoreFn) -> dict[str, float]:
        """The validation metrics; the users' values stay for :meth:`take_last` (the epoch choice reads them)."""
        if not self.usable:
            return {}
        self._last = self.per_user(score)
        return {metric_name(d): float(v.mean()) for d, v in self._last.items()}

    def take_last(self) -> dict[int | None, np.ndarray] | None:
        """The per-user values of the last call (once; None if there was none since), so a validation
        check scores the users once for its metric and for :class:`~recause.tasks.train.callbacks.EpochChoice`."""
        last, self._last = self._last, None
        return last


@dataclass(frozen=True)
class UpliftCalibration:
    """τ̃ = ``intercept`` + ``slope`` · τ̂ (:meth:`UpliftCriterion.calibration`); ``slope_low``, ``slope_high``:
    the slope's bootstrap interval (NaN when not computed)."""

    intercept: float
    slope: float
    slope_low: float = float("nan")
    slope_high: float = float("nan")

    def __call__(self, tau_hat: np.ndarray) -> np.ndarray:
        """(…) calibrated uplift, in ``tau_hat``'s dtype."""
        return (self.intercept + self.slope * tau_hat).astype(tau_hat.dtype, copy=False)


def affine_calibration(n: float, sum_t: float, sum_tt: float, sum_g: float, sum_gt: float) -> UpliftCalibration | str:
    """Least squares of Γ on τ̂ from the sums over ``n`` pairs of τ̂, τ̂², Γ and Γτ̂; why not, as a string,
    when τ̂ does not vary or the slope is not positive (it would reverse or flatten the rankings)."""
    mean_t, mean_g = sum_t / n, sum_g / n
    variance = sum_tt / n - mean_t**2
    if not variance > 1e-18:
        return "the uplift estimate does not vary over the validation pairs"
    slope = (sum_gt / n - mean_g * mean_t) / variance
    if not slope > 0:
        return f"the validation log gives the uplift estimate a slope of {slope:.3g} (not positive): left as trained"
    return UpliftCalibration(float(mean_g - slope * mean_t), float(slope))


def slope_interval(sums: np.ndarray, level: float = 0.95, draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the calibration slope over validation users.

    ``sums`` (n_users, 5): each user's pairs, Σ τ̂, Σ τ̂², Σ Γ and Σ Γτ̂; a draw resamples users with
    replacement (their multiplicities times the sums) and refits the least squares of
    :func:`affine_calibration`. Draws whose τ̂ does not vary are dropped.
    """
    rng = np.random.default_rng(seed)
    users = len(sums)
    chunk = max(1, min(draws, 10_000_000 // max(users, 1)))  # at most ~80 MB of multiplicities at a time
    n, t, tt, g, gt = np.concatenate([rng.multinomial(users, np.full(users, 1.0 / users), size=min(chunk, draws - done))
                                      .astype(np.float64) @ sums for done in range(0, draws, chunk)]).T
    variance = tt / n - (t / n) ** 2
    ok = variance > 1e-18
    slopes = (gt[ok] / n[ok] - (g[ok] / n[ok]) * (t[ok] / n[ok])) / variance[ok]
    tail = 50.0 * (1.0 - level)
    low, high = np.percentile(slopes, [tail, 100.0 - tail])
    return float(low), float(high)


def criterion_usable(split: Split) -> bool:
    """Whether :class:`UpliftCriterion` can score on ``split``: positive validation impressions, and
    every validation impression with its logged propensity."""
    val = split.val
    shown = exposed_rows(val)
    hit = shown & val["positive"].to_numpy(bool)
    return bool(hit.any()) and "propensity" in val.columns and not val.loc[shown, "propensity"].isna().any()


def metric_name(depth: int | None) -> str:
    """``val/auuc_ipw`` (full catalogue) or ``val/auuc_ipw_at_<depth>``."""
    return "val/auuc_ipw" if depth is None else f"val/auuc_ipw_at_{depth}"


def combined(*validators: Callable[[ScoreFn], dict[str, float]]) -> Callable[[ScoreFn], dict[str, float]]:
    """One validator returning every given validator's metrics."""
    return lambda score: {k: v for validate in validators for k, v in validate(score).items()}


def _sorted(u: np.ndarray, i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(u, kind="stable")
    return u[order], i[order]


def _in_block(u_sorted: np.ndarray, items: np.ndarray, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.searchsorted(u_sorted, block[0]), np.searchsorted(u_sorted, block[-1], side="right")
    u, i = u_sorted[lo:hi], items[lo:hi]
    keep = np.isin(u, block)
    return np.searchsorted(block, u[keep]), i[keep]


def _long(values: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(values, dtype=np.int64))  # a copy: pandas 3 hands out read-only arrays
