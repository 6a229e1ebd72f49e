"""What the causal GNN says, checked and shown: ground-truth errors and the causal effect map.

- :func:`truth_check` / :func:`truth_metrics` (synthetic world only): PEHE and ATE error of the uplift, propensity MAE and
  calibration error against the world's exact P(E=1 | u, i), over every user–item pair; the
  calibration table and a τ̂-vs-τ sample for the report.
- :func:`causal_effect_map`: mean τ̂ per user segment × item topic — where recommending changes
  behaviour and where users would have found the items anyway. Pure: returns a DataFrame
  (:func:`recause.flows.artifacts.write_effect_map` draws it).
- :func:`train_report`: the stage's metrics beyond training itself — the effect map's range and,
  on the synthetic world, the errors of the causal model and the T-learner against the truth.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recause.models.world.scm import SEGMENTS, SyntheticWorld
from recause.tasks.data.schema import Dataset
from recause.tasks.data.split import Split
from recause.tasks.features.build import TextFeatures
from recause.tasks.train.fit import ModelSet

Scores = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class TruthCheck:
    """The causal model against the synthetic world's truth: the flat metrics (:func:`truth_metrics`),
    the propensity calibration table (:func:`calibration_table`; None without a propensity head) and a
    uniform sample of user–item pairs with ``tau_hat`` and ``tau`` (None when uplift is not identified)."""

    metrics: dict[str, float]
    calibration: pd.DataFrame | None
    uplift_sample: pd.DataFrame | None


def truth_check(
    world: SyntheticWorld, split: Split, uplift: Scores | None = None, propensity: Scores | None = None,
    *, user_batch: int = 512, bins: int = 10, sample: int = 4000, seed: int = 0,
) -> TruthCheck:
    r"""Errors of estimated uplift and propensity against the world, over all n_users × n_items pairs.

    - ``causal/pehe`` = :math:`\sqrt{\overline{(\hat\tau - \tau)^2}}` (precision in estimating
      heterogeneous effects, Hill 2011), ``causal/ate_abs_error`` = :math:`|\bar{\hat\tau} - \bar\tau|`;
    - ``propensity/mae`` = :math:`\overline{|\hat g - g|}` with g the world's exposure
      probability over the logging period, and ``propensity/calibration_error`` = the expected
      calibration error :math:`\sum_b \frac{n_b}{N}|\bar{\hat g}_b - \bar g_b|` over ``bins``
      equal-count bins of :math:`\hat g` (against the true probabilities, not sampled labels).

    ``uplift`` / ``propensity``: score functions of split user indices -> (n, n_items). ``sample``
    pairs (drawn uniformly with ``seed``) keep their τ̂ and τ for the estimated-vs-true plot.
    """
    world_users = split.users.ids.astype(np.int64)
    world_items = split.items.ids.astype(np.int64)
    sq = err_sum = tau_hat_sum = tau_sum = 0.0
    g_hat_all, g_all, kept = [], [], []
    n_pairs = split.n_users * split.n_items
    chosen = np.sort(np.random.default_rng([seed, 29]).choice(n_pairs, size=min(sample, n_pairs), replace=False))
    n = 0
    for start in range(0, split.n_users, user_batch):
        block = np.arange(start, min(start + user_batch, split.n_users))
        if uplift is not None:
            tau = world.uplift(world_users[block], world_items)
            tau_hat = uplift(block)
            sq += float(((tau_hat - tau) ** 2).sum())
            tau_hat_sum += float(tau_hat.sum())
            tau_sum += float(tau.sum())
            lo, hi = np.searchsorted(chosen, [start * split.n_items, (block[-1] + 1) * split.n_items])
            flat = chosen[lo:hi] - start * split.n_items
            kept.append(pd.DataFrame({"user": block[flat // split.n_items], "item": flat % split.n_items,
                                      "tau_hat": tau_hat.ravel()[flat], "tau": tau.ravel()[flat]}))
        if propensity is not None:
            g_hat = propensity(block)
            g = world.exposure_propensity(world_users[block], world_items)
            err_sum += float(np.abs(g_hat - g).sum())
            g_hat_all.append(g_hat.ravel().astype(np.float32))
            g_all.append(g.ravel().astype(np.float32))
        n += len(block) * split.n_items
    out: dict[str, float] = {}
    calibration = uplift_sample = None
    if uplift is not None:
        out |= {"causal/pehe": float(np.sqrt(sq / n)), "causal/ate": tau_hat_sum / n, "causal/ate_true": tau_sum / n,
                "causal/ate_abs_error": abs(tau_hat_sum - tau_sum) / n}
        uplift_sample = pd.concat(kept, ignore_index=True)
    if propensity is not None:
        predicted, truth = np.concatenate(g_hat_all), np.concatenate(g_all)
        out["propensity/mae"] = err_sum / n
        out["propensity/calibration_error"] = calibration_error(predicted, truth, bins)
        calibration = calibration_table(predicted, truth, bins)
    return TruthCheck(out, calibration, uplift_sample)


def truth_metrics(world: SyntheticWorld, split: Split, uplift: Scores | None = None, propensity: Scores | None = None,
                  *, user_batch: int = 512, bins: int = 10) -> dict[str, float]:
    """The flat metrics of :func:`truth_check` alone."""
    return truth_check(world, split, uplift, propensity, user_batch=user_batch, bins=bins, sample=0).metrics


def calibration_table(predicted: np.ndarray, truth: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """One row per equal-count bin of ``predicted``: its ``pairs``, mean ``predicted`` and mean ``true``
    probability — the reliability diagram behind :func:`calibration_error`."""
    order = np.argsort(predicted, kind="stable")
    rows = [{"bin": b, "pairs": len(chunk), "predicted": float(predicted[chunk].mean()), "true": float(truth[chunk].mean())}
            for b, chunk in enumerate(np.array_split(order, bins)) if len(chunk)]
    return pd.DataFrame(rows)


def calibration_error(predicted: np.ndarray, truth: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over equal-count bins of ``predicted``; both (n,) probabilities."""
    if predicted.shape != truth.shape or predicted.ndim != 1:
        raise ValueError(f"predicted and truth must be aligned 1-D arrays, got {predicted.shape} and {truth.shape}")
    order = np.argsort(predicted, kind="stable")
    total = 0.0
    for chunk in np.array_split(order, bins):
        if len(chunk):
            total += len(chunk) * abs(float(predicted[chunk].mean()) - float(truth[chunk].mean()))
    return total / len(predicted)


def user_segments(users: pd.DataFrame, split: Split) -> tuple[np.ndarray, list[str]]:
    """(n_users,) segment codes in split order and their names.

    The users table's ``segment`` column when it has one (the synthetic world's light / regular /
    heavy); otherwise tertiles of training activity (rows per user), named the same way.
    """
    if "segment" in users.columns:
        aligned = users.set_index("user_id").loc[split.users.ids, "segment"]
        cat = pd.Categorical(aligned)
        return cat.codes.astype(np.int64), [str(c) for c in cat.categories]
    activity = np.bincount(split.train["user"].to_numpy(), minlength=split.n_users).astype(np.float64)
    cuts = np.quantile(activity, [1 / 3, 2 / 3])
    return np.searchsorted(cuts, activity, side="right").astype(np.int64), list(SEGMENTS)


def causal_effect_map(
    uplift: Scores, user_segment: np.ndarray, item_topic: np.ndarray,
    segment_names: Sequence[str] | None = None, topic_names: Sequence[str] | None = None, *, user_batch: int = 1024,
) -> pd.DataFrame:
    """Mean τ̂ per user segment (rows) × item topic (columns).

    Parameters
    ----------
    uplift : score function, user indices -> (n, n_items) τ̂.
    user_segment : (n_users,) int codes >= 0.
    item_topic : (n_items,) int codes; items with a negative code (no topic) are left out.
    segment_names, topic_names : labels of the codes (default: the codes).

    Returns
    -------
    DataFrame indexed by segment with one column per topic; a cell with no pairs is NaN.
    """
    user_segment, item_topic = np.asarray(user_segment), np.asarray(item_topic)
    n_seg = int(user_segment.max()) + 1 if len(user_segment) else 0
    n_top = int(item_topic.max()) + 1 if (item_topic >= 0).any() else 0
    onehot = np.zeros((len(item_topic), n_top))
    keep = item_topic >= 0
    onehot[np.flatnonzero(keep), item_topic[keep]] = 1.0
    sums = np.zeros((n_seg, n_top))
    for start in range(0, len(user_segment), user_batch):
        block = np.arange(start, min(start + user_batch, len(user_segment)))
        per_topic = uplift(block) @ onehot  # (b, n_top)
        np.add.at(sums, user_segment[block], per_topic)
    pairs = np.bincount(user_segment, minlength=n_seg)[:, None] * onehot.sum(axis=0)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(pairs > 0, sums / np.maximum(pairs, 1), np.nan)
    index = list(segment_names) if segment_names is not None else list(range(n_seg))
    columns = list(topic_names) if topic_names is not None else list(range(n_top))
    frame = pd.DataFrame(mean, index=pd.Index(index, name="segment"), columns=pd.Index(columns, name="topic"))
    return frame


def topic_names(features: TextFeatures | None, n_topics: int) -> list[str] | None:
    """Labels of topics ``0 .. n_topics-1`` from the text-feature stage (None without features)."""
    if features is None or "label" not in features.topics.columns:
        return None
    labels = dict(zip(features.topics["topic"], features.topics["label"]))
    return [str(labels.get(t, t)) for t in range(n_topics)]


@dataclass(frozen=True)
class TrainReport:
    """What the train stage reports beyond the fits: flat metrics, the causal effect map
    (segments × topics, None where uplift is not identifiable), each model's training curves
    (one row per model × epoch) and, on the synthetic world, the check against the truth."""

    metrics: dict[str, float | str | bool]
    effect_map: pd.DataFrame | None
    curves: pd.DataFrame | None = None
    truth: TruthCheck | None = None


def train_report(models: ModelSet, split: Split, dataset: Dataset, features: TextFeatures | None) -> TrainReport:
    """The fitted models' summary, the effect map where uplift is identified, and (synthetic world)
    PEHE, ATE and propensity errors against the truth — the T-learner's PEHE beside the causal model's."""
    metrics = models.summary()
    causal = models.causal
    frame = None
    if causal is not None and causal.identifiable:
        topics = features.item_topics if features is not None else np.zeros(split.n_items, dtype=np.int64)
        segments, segment_names = user_segments(dataset.users, split)
        frame = causal_effect_map(causal.uplift, segments, topics, segment_names, topic_names(features, int(topics.max()) + 1))
        metrics["causal/effect_map_max"] = float(np.nanmax(frame.to_numpy()))
        metrics["causal/effect_map_min"] = float(np.nanmin(frame.to_numpy()))
    truth = None
    if causal is not None and dataset.world is not None:
        propensity = causal.propensity if "propensity" in causal.plan.heads else None
        truth = truth_check(dataset.world, split, causal.uplift if causal.identifiable else None, propensity)
        metrics |= truth.metrics
        t_learner = models.models.get("gnn_t_learner")
        if t_learner is not None:
            metrics["causal/pehe_t_learner"] = truth_metrics(dataset.world, split, t_learner.uplift)["causal/pehe"]
    rows = [{"model": name, **row} for name, model in models.models.items() for row in model.curves]
    return TrainReport(metrics, frame, pd.DataFrame(rows) if rows else None, truth)
