r"""Evaluation metrics for recommenders: top-k ranking, AUC, grouped NDCG, causal precision, exposure.

Everything here is pure numpy on arrays the caller has already built: no I/O, no frames.

- Top-k accuracy (:func:`top_k_items`, :func:`ranking_metrics`, :class:`RankingAccumulator`):
  Recall, Precision, Hit, MRR and NDCG at k with binary gains, as RecBole defines them, averaged
  over users that have at least one held-out positive.
- :func:`auc`: global ROC AUC by the Mann–Whitney rank formula, ties counted one half.
- :func:`grouped_ndcg`: NDCG@k of each user over that user's own candidate items (the
  randomized-test protocol, e.g. Yahoo! R3 / Coat), with binary or graded gains.
- :func:`causal_precision`: CP@k, the mean true uplift of the recommended items (Sato et al. 2019).
- :func:`gini`, :func:`coverage`, :func:`exposure_counts`: beyond-accuracy exposure summaries.

Ranks are 1-based in the formulas: the discount of rank r is :math:`1/\log_2(r+1)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

METRIC_NAMES = ("recall", "precision", "hit", "mrr", "ndcg")


def _discounts(k: int) -> np.ndarray:
    """(k,) DCG discounts 1/log2(r+1) for ranks r = 1..k."""
    return 1.0 / np.log2(np.arange(2, k + 2))


def _check_no_nan(name: str, x: np.ndarray) -> None:
    if np.issubdtype(x.dtype, np.floating) and np.isnan(x).any():
        raise ValueError(f"{name} contains NaN at index {np.argwhere(np.isnan(x))[0].tolist()}")


def _as_index_array(name: str, x: np.ndarray, ndim: int) -> np.ndarray:
    """``x`` as an integer array of ``ndim`` dimensions with no negative entry."""
    x = np.asarray(x)
    if x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {x.shape}")
    if x.size and not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"{name} must hold integer indices, got dtype {x.dtype}")
    if x.size and x.min() < 0:
        raise ValueError(f"{name} must be non-negative, found {x.min()}")
    return x.astype(np.int64, copy=False)


def mask_seen(scores: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """A copy of ``scores`` with the (row, col) pairs set to -inf, so top-k never returns them.

    Parameters
    ----------
    scores : (n_users, n_items) float
    rows, cols : (n_pairs,) int
        The pairs to exclude (e.g. the training interactions of the users in ``scores``).

    Returns
    -------
    (n_users, n_items) float, a new array; ``scores`` is not modified.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D (n_users, n_items), got shape {scores.shape}")
    rows = _as_index_array("rows", rows, 1)
    cols = _as_index_array("cols", cols, 1)
    if rows.shape != cols.shape:
        raise ValueError(f"rows and cols must have the same length, got {rows.shape[0]} and {cols.shape[0]}")
    if rows.size and rows.max() >= scores.shape[0]:
        raise ValueError(f"rows must be < n_users={scores.shape[0]}, found {rows.max()}")
    if cols.size and cols.max() >= scores.shape[1]:
        raise ValueError(f"cols must be < n_items={scores.shape[1]}, found {cols.max()}")
    dtype = scores.dtype if np.issubdtype(scores.dtype, np.floating) else np.float64
    out = scores.astype(dtype, copy=True)
    out[rows, cols] = -np.inf
    return out


def top_k_items(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of each user's k highest-scoring items, best first; ties go to the lower item index.

    Uses ``argpartition`` (linear in n_items) and sorts only the k candidates. A row whose k-th
    score is tied with an item left outside the candidates is re-ranked by a full stable sort,
    so the result is deterministic whatever ``argpartition`` picked.

    Parameters
    ----------
    scores : (n_users, n_items) float
        No NaN; excluded items set to -inf (see :func:`mask_seen`).
    k : int
        1 <= k <= n_items.

    Returns
    -------
    (n_users, k) int64 item indices.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D (n_users, n_items), got shape {scores.shape}")
    n_items = scores.shape[1]
    if not 1 <= k <= n_items:
        raise ValueError(f"k must be in [1, n_items={n_items}], got {k}")
    _check_no_nan("scores", scores)
    if not np.issubdtype(scores.dtype, np.floating):
        scores = scores.astype(np.float64)
    neg = -scores  # ascending order of neg = descending score
    cand = np.argpartition(neg, k - 1, axis=1)[:, :k]  # (n_users, k), unordered
    cand_neg = np.take_along_axis(neg, cand, axis=1)
    order = np.lexsort((cand, cand_neg), axis=1)  # by score, then by item index
    top = np.take_along_axis(cand, order, axis=1)
    # A tie at the boundary: more items share the k-th score than the candidates hold.
    kth = np.take_along_axis(cand_neg, order[:, -1:], axis=1)  # (n_users, 1)
    ambiguous = (neg == kth).sum(axis=1) > (cand_neg == kth).sum(axis=1)
    if ambiguous.any():
        top[ambiguous] = np.argsort(neg[ambiguous], axis=1, kind="stable")[:, :k]
    return top.astype(np.int64, copy=False)


@dataclass
class RankingAccumulator:
    """Sums of per-user top-k metrics over blocks of users; :meth:`result` averages them.

    For a user u with held-out positives T_u (|T_u| >= 1) and hits h_r = 1[top item at rank r in T_u]:

    - Recall@k = Σ_{r<=k} h_r / |T_u|;   Precision@k = Σ_{r<=k} h_r / k;   Hit@k = 1[Σ_{r<=k} h_r > 0]
    - MRR@k = 1 / (rank of the first hit) if it is <= k, else 0
    - NDCG@k = Σ_{r<=k} h_r / log2(r+1)  /  Σ_{r<=min(|T_u|,k)} 1 / log2(r+1)

    Users without a positive are left out of every mean (and of ``n_users_evaluated``).

    Parameters
    ----------
    ks : sequence of int
        The cut-offs, each >= 1; blocks must hold at least max(ks) ranked items per user.
    keep_per_user : bool
        Also keep each evaluated user's value of every metric, in the order added
        (:meth:`per_user`: e.g. for a paired bootstrap over users).
    """

    ks: Sequence[int]
    keep_per_user: bool = False
    n_users_evaluated: int = field(default=0, init=False)
    _sums: dict[str, float] = field(default_factory=dict, init=False, repr=False)
    _values: dict[str, list[np.ndarray]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.ks = tuple(int(k) for k in self.ks)
        if not self.ks or min(self.ks) < 1:
            raise ValueError(f"ks must be a non-empty sequence of cut-offs >= 1, got {self.ks}")
        self._sums = {f"{m}_at_{k}": 0.0 for k in self.ks for m in METRIC_NAMES}

    def add(self, top: np.ndarray, target_rows: np.ndarray, target_cols: np.ndarray) -> None:
        """Add one block of users.

        Parameters
        ----------
        top : (n_block, K) int
            Ranked item indices, best first, distinct within a row, K >= max(ks).
        target_rows : (n_targets,) int
            Row of each held-out positive in ``top`` (relative to the block), in [0, n_block).
        target_cols : (n_targets,) int
            Its item index. Repeated (row, item) pairs count once.
        """
        top = _as_index_array("top", top, 2)
        rows = _as_index_array("target_rows", target_rows, 1)
        cols = _as_index_array("target_cols", target_cols, 1)
        n_block, width = top.shape
        if width < max(self.ks):
            raise ValueError(f"top has {width} columns, fewer than max(ks)={max(self.ks)}")
        if rows.shape != cols.shape:
            raise ValueError(
                f"target_rows and target_cols must have the same length, got {rows.shape[0]} and {cols.shape[0]}"
            )
        if rows.size and rows.max() >= n_block:
            raise ValueError(f"target_rows must be < n_block={n_block} (rows of top), found {rows.max()}")
        if width > 1 and (np.diff(np.sort(top, axis=1), axis=1) == 0).any():
            raise ValueError("top repeats an item within a row; each row must rank distinct items")

        stride = max(int(top.max(initial=0)), int(cols.max(initial=0))) + 1
        target_codes = np.unique(rows * stride + cols)  # (row, item) pairs, duplicates once
        n_targets = np.bincount(target_codes // stride, minlength=n_block)  # (n_block,)
        evaluated = n_targets > 0
        hits = np.isin(np.arange(n_block)[:, None] * stride + top, target_codes)[evaluated]  # (n_eval, K)
        n_targets = n_targets[evaluated]
        self.n_users_evaluated += int(evaluated.sum())

        for k in self.ks:
            h = hits[:, :k]
            n_hits = h.sum(axis=1)
            any_hit = n_hits > 0
            first = np.argmax(h, axis=1)  # 0-based rank of the first hit (0 when none)
            disc = _discounts(k)
            ideal = np.cumsum(disc)[np.minimum(n_targets, k) - 1]
            values = {f"recall_at_{k}": n_hits / n_targets, f"precision_at_{k}": n_hits / k,
                      f"hit_at_{k}": any_hit.astype(np.float64), f"mrr_at_{k}": any_hit / (first + 1),
                      f"ndcg_at_{k}": (h @ disc) / ideal}
            for name, per_user in values.items():
                self._sums[name] += float(per_user.sum())
                if self.keep_per_user:
                    self._values.setdefault(name, []).append(per_user)

    def per_user(self, name: str) -> np.ndarray:
        """(n_users_evaluated,) float: each evaluated user's ``name`` (e.g. ``ndcg_at_20``), in the order added;
        needs ``keep_per_user``."""
        if not self.keep_per_user:
            raise ValueError("per-user values were not kept: make the accumulator with keep_per_user=True")
        if name not in self._sums:
            raise ValueError(f"unknown metric {name!r}; kept: {sorted(self._sums)}")
        parts = self._values.get(name, [])
        return np.concatenate(parts) if parts else np.empty(0)

    def result(self) -> dict[str, float]:
        """Means over evaluated users: ``{metric}_at_{k}`` for each k, and ``n_users_evaluated``."""
        if self.n_users_evaluated == 0:
            raise ValueError("no user with a held-out positive was added; the metrics are undefined")
        out: dict[str, float] = {name: s / self.n_users_evaluated for name, s in self._sums.items()}
        out["n_users_evaluated"] = self.n_users_evaluated
        return out


def ranking_metrics(
    top: np.ndarray, target_rows: np.ndarray, target_cols: np.ndarray, ks: Sequence[int]
) -> dict[str, float]:
    """Recall, Precision, Hit, MRR and NDCG at each k in ``ks`` in one block.

    See :class:`RankingAccumulator` for the definitions and the argument shapes.
    """
    acc = RankingAccumulator(ks)
    acc.add(top, target_rows, target_cols)
    return acc.result()


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    r"""Global ROC AUC: P(score of a random positive > score of a random negative), ties count 1/2.

    Mann–Whitney: :math:`\mathrm{AUC} = (R_+ - n_+(n_+ + 1)/2) / (n_+ n_-)` with :math:`R_+` the sum
    of the positives' ranks among all scores, tied scores sharing their average rank.

    Parameters
    ----------
    scores : (n,) float, no NaN
    labels : (n,) in {0, 1} (bool or numeric), both classes present

    Returns
    -------
    float in [0, 1].
    """
    scores, labels = np.asarray(scores), np.asarray(labels)
    if scores.ndim != 1 or scores.shape != labels.shape:
        raise ValueError(f"scores and labels must be 1-D of the same length, got {scores.shape} and {labels.shape}")
    _check_no_nan("scores", scores)
    _check_no_nan("labels", labels)
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(f"labels must be 0 or 1, found {np.unique(labels[~np.isin(labels, (0, 1))])[:5].tolist()}")
    positive = labels.astype(bool)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"labels must hold both classes, got {n_pos} positives and {n_neg} negatives")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    first_rank = np.cumsum(counts) - counts + 1  # 1-based rank of each distinct score's first copy
    mean_rank = first_rank + (counts - 1) / 2.0
    rank_sum = mean_rank[inverse][positive].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _per_group_dcg(key: np.ndarray, gains: np.ndarray, groups: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """DCG@k of each group, items ranked by ascending ``key`` then by position; and the group labels."""
    order = np.lexsort((np.arange(key.size), key, groups))
    labels, first, inverse = np.unique(groups[order], return_index=True, return_inverse=True)
    rank = np.arange(key.size) - first[inverse]  # 0-based rank within the group
    weight = np.where(rank < k, 1.0 / np.log2(rank + 2.0), 0.0)
    return np.bincount(inverse, weights=gains[order] * weight, minlength=labels.size), labels


def grouped_ndcg(scores: np.ndarray, relevance: np.ndarray, groups: np.ndarray, k: int) -> float:
    r"""Mean NDCG@k of each group (user) over that group's own candidate items.

    For group g, rank its items by descending score; :math:`\mathrm{DCG@k} = \sum_{r \le k}
    \mathrm{gain}_r / \log_2(r + 1)` and IDCG@k is the same sum with the items ranked by descending
    relevance. Items with equal scores keep their order in the input (a stable sort), so a model
    that scores everything alike gets the NDCG of the given order. Groups with no positive gain
    have IDCG = 0 and are left out of the mean.

    Parameters
    ----------
    scores : (n,) float, no NaN
    relevance : (n,) float >= 0
        The gain of each item, used as given: binary {0, 1} or graded (e.g. ratings).
    groups : (n,) int
        The group (user) of each item; need not be sorted or contiguous.
    k : int >= 1

    Returns
    -------
    float in [0, 1].
    """
    scores, relevance, groups = np.asarray(scores), np.asarray(relevance, dtype=np.float64), np.asarray(groups)
    if scores.ndim != 1 or not scores.shape == relevance.shape == groups.shape:
        raise ValueError(
            f"scores, relevance and groups must be 1-D of the same length, "
            f"got {scores.shape}, {relevance.shape} and {groups.shape}"
        )
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    _check_no_nan("scores", scores)
    _check_no_nan("relevance", relevance)
    if relevance.size and relevance.min() < 0:
        raise ValueError(f"relevance must be >= 0, found {relevance.min()}")
    dcg, _ = _per_group_dcg(-scores.astype(np.float64), relevance, groups, k)
    idcg, _ = _per_group_dcg(-relevance, relevance, groups, k)
    valid = idcg > 0
    if not valid.any():
        raise ValueError("no group has an item with positive relevance; NDCG is undefined")
    return float((dcg[valid] / idcg[valid]).mean())


def causal_precision(true_uplift_of_top: np.ndarray) -> float:
    r"""CP@k: the mean true uplift of the recommended items (Sato et al., RecSys 2019).

    :math:`\mathrm{CP@k} = \frac{1}{|U|} \sum_u \frac{1}{k} \sum_{i \in \mathrm{top}_k(u)} \tau_{ui}`,
    with :math:`\tau_{ui} = P(Y=1 \mid do(E=1)) - P(Y=1 \mid do(E=0))` the individual treatment
    effect of recommending i to u. It needs the true τ, so it is computable only in a simulated
    world (or estimated elsewhere). Gather it with ``np.take_along_axis(tau, top, axis=1)``.

    Parameters
    ----------
    true_uplift_of_top : (n_users, k) float
        τ of each user's top-k items.

    Returns
    -------
    float, in the units of τ (a difference of probabilities, in [-1, 1]).
    """
    tau = np.asarray(true_uplift_of_top, dtype=np.float64)
    if tau.ndim != 2 or tau.size == 0:
        raise ValueError(f"true_uplift_of_top must be a non-empty 2-D (n_users, k) array, got shape {tau.shape}")
    _check_no_nan("true_uplift_of_top", tau)
    return float(tau.mean(axis=1).mean())


def rank_positions(scores: np.ndarray) -> np.ndarray:
    """(n, I) int: 1-based rank of each item in its row when sorted by descending score (ties by index)."""
    scores = np.asarray(scores)
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, scores.shape[1] + 1)[None, :].repeat(scores.shape[0], 0), axis=1)
    return ranks


def qini_weights(ranks: np.ndarray, n_items: int, depth: int | None = None) -> np.ndarray:
    r"""Weight of an item at 1-based ``ranks`` in a user's Qini area to ``depth`` D (None = the catalogue I).

    With :math:`G(k) = \sum_{r_j \le k} \tau_j` the cumulative uplift of the top k, the area above
    random targeting is :math:`\frac1D \sum_{k=1}^D G(k) - \frac{D+1}{2}\bar\tau =
    \sum_j \tau_j\, w_D(r_j)` with :math:`w_D(r) = \frac{\max(0, D-r+1)}{D} - \frac{D+1}{2I}`:
    linear in the τ's, so an unbiased estimate of each τ (an inverse-propensity pseudo-outcome)
    gives an unbiased estimate of the area (:func:`qini_ipw`).
    """
    d = n_items if depth is None else min(int(depth), n_items)
    if d < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    r = np.asarray(ranks, dtype=np.float64)
    return np.maximum(0.0, d - r + 1.0) / d - (d + 1.0) / (2.0 * n_items)


def qini_area(scores: np.ndarray, tau: np.ndarray, depth: int | None = None) -> float:
    r"""Sum over users of the Qini area of ranking by ``scores`` against the true uplift ``tau``.

    :math:`Q_D = \sum_u \sum_i \tau_{ui}\, w_D(r_{ui})` (:func:`qini_weights`), ``scores`` and
    ``tau`` (n_users, n_items). Summed (not averaged) so blocks of users add up; the normalised
    AUUC of a model is ``qini_area(tau_hat, tau) / qini_area(tau, tau)``: 1 for the oracle's
    ranking, 0 for random targeting, negative when it ranks harmful items first.
    """
    scores, tau = np.asarray(scores, dtype=np.float64), np.asarray(tau, dtype=np.float64)
    if scores.shape != tau.shape or scores.ndim != 2:
        raise ValueError(f"scores and tau must be (n_users, n_items) of one shape, got {scores.shape} and {tau.shape}")
    _check_no_nan("scores", scores)
    _check_no_nan("tau", tau)
    return float((tau * qini_weights(rank_positions(scores), scores.shape[1], depth)).sum())


def ipw_pseudo_outcomes(exposed: np.ndarray, propensity: np.ndarray) -> np.ndarray:
    r"""(n,) :math:`\psi = \frac{E}{g} - \frac{1-E}{1-g}` of pairs with Y = 1 (zero where Y = 0), exposed
    with probability g: :math:`E[Y\psi] = \tau` for each pair."""
    exposed = np.asarray(exposed, dtype=bool)
    g = np.asarray(propensity, dtype=np.float64)
    if exposed.shape != g.shape:
        raise ValueError(f"exposed and propensity must align, got {exposed.shape} and {g.shape}")
    if g.size and (np.isnan(g).any() or g.min() <= 0 or g.max() >= 1):
        raise ValueError("propensities must lie in (0, 1)")
    return np.where(exposed, 1.0 / g, -1.0 / (1.0 - g))


def qini_ipw(ranks: np.ndarray, pseudo_outcomes: np.ndarray, n_items: int, depth: int | None = None) -> float:
    r"""Inverse-propensity estimate of :func:`qini_area` from the *positive* held-out pairs alone.

    An unbiased pseudo-outcome :math:`\psi` of each pair's τ (:func:`ipw_pseudo_outcomes`, or
    per-impression weights :math:`1/(n_u\pi_j)` in a slate log) is zero where Y = 0, so the area's
    estimate :math:`\sum \psi\, w_D(r)` needs only the pairs with an outcome: their ``ranks``
    (1-based, in their user's ranking of all ``n_items``) and ``pseudo_outcomes``, both (n_pairs,).
    No outcome model enters, so it cannot favour the model whose ranking it scores.
    """
    psi = np.asarray(pseudo_outcomes, dtype=np.float64)
    if np.shape(ranks) != psi.shape:
        raise ValueError(f"ranks and pseudo_outcomes must align, got {np.shape(ranks)} and {psi.shape}")
    _check_no_nan("pseudo_outcomes", psi)
    return float((psi * qini_weights(ranks, n_items, depth)).sum())


def exposure_counts(top: np.ndarray, n_items: int) -> np.ndarray:
    """(n_items,) int: how many top lists each item appears in."""
    top = _as_index_array("top", top, 2)
    if top.size and top.max() >= n_items:
        raise ValueError(f"top holds item {top.max()}, outside the catalogue of n_items={n_items}")
    return np.bincount(top.ravel(), minlength=n_items)


def coverage(top: np.ndarray, n_items: int) -> float:
    """Share of the catalogue that appears in at least one top list, in [0, 1].

    Parameters
    ----------
    top : (n_users, k) int
    n_items : int >= 1
    """
    if n_items < 1:
        raise ValueError(f"n_items must be >= 1, got {n_items}")
    return float((exposure_counts(top, n_items) > 0).mean())


def gini(counts: np.ndarray) -> float:
    r"""Gini coefficient of exposure: 0 when every item is shown equally, (n-1)/n when one item takes all.

    With counts sorted ascending :math:`x_1 \le \dots \le x_n`:
    :math:`G = \sum_i (2i - n - 1)\, x_i / (n \sum_i x_i)`.

    Parameters
    ----------
    counts : (n_items,) float or int >= 0, not all zero
        E.g. :func:`exposure_counts` of the top lists.
    """
    x = np.asarray(counts, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"counts must be a non-empty 1-D array, got shape {x.shape}")
    _check_no_nan("counts", x)
    if x.min() < 0:
        raise ValueError(f"counts must be >= 0, found {x.min()}")
    if x.sum() == 0:
        raise ValueError("counts are all zero; the Gini coefficient is undefined")
    x = np.sort(x)
    n = x.size
    i = np.arange(1, n + 1)
    return float(((2 * i - n - 1) * x).sum() / (n * x.sum()))
