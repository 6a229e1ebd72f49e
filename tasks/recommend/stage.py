"""The ``recommend`` stage's entry: choose the strategy the data support, build the lists, and on the
synthetic world score them against the truth.

Pure: the earlier stages' outputs in, a :class:`Recommendations` out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import sparse

from recause.tasks.contrast.config import ContrastConfig
from recause.tasks.contrast.sources import policy_sources
from recause.tasks.data.schema import Dataset
from recause.tasks.data.split import Split
from recause.tasks.evaluate import PolicySet
from recause.tasks.features.build import TextFeatures
from recause.tasks.recommend.config import RecommendConfig
from recause.tasks.recommend.intervals import coverage, item_uplift_intervals
from recause.tasks.recommend.lists import (Candidates, Chosen, ItemNotes, already_has, best_intervention, candidates,
                                          recommend)
from recause.tasks.train.data import retention
from recause.tasks.train.fit import ModelSet


@dataclass(frozen=True)
class Servable:
    """Everything that answers for any user later without the training stack: each split user's
    candidates under the chosen strategy (the best ``recommend.candidates`` items with their scores
    and τ̂ where identified), what each user has, the item notes and the items' popularity (for users
    the model does not know). Its size is users × candidates, not users × items."""

    candidates: Candidates
    user_ids: np.ndarray  # (n_users,)
    has: sparse.csr_matrix  # (n_users, n_items) bool
    notes: ItemNotes
    popularity: np.ndarray  # (n_items,) positive training rows per item
    chosen: Chosen
    config: RecommendConfig
    seed: int


@dataclass(frozen=True)
class Recommendations:
    """The lists (one row per user × rank), the stage's metrics, and what a served model needs."""

    lists: pd.DataFrame
    metrics: dict[str, float | str]
    servable: Servable | None = None


def choose(config: RecommendConfig, models: ModelSet | None, policy_sets: Sequence[PolicySet], split: Split,
           dataset: Dataset, features: TextFeatures | None, contrast: ContrastConfig | None,
           contrast_metrics: Mapping[str, object], seed: int) -> Chosen:
    """The scores of ``config.strategy`` or, where the data cannot support it, of the next one down
    (best_intervention → uplift → relevance → the popularity baseline), with the reason."""
    reasons: list[str] = []
    if config.strategy == "best_intervention":
        specs = {s.name: s for s in (contrast.interventions if contrast else ()) if not s.is_feature_edit}
        candidates = [n for n, s in specs.items() if not str(s.deploys).startswith("oracle")]
        name, why = best_intervention(contrast_metrics, candidates) if contrast_metrics else (None, "the contrast stage did not run")
        if name is not None:
            built = specs[name].build(policy_sources(split, dataset, policy_sets, features, seed))
            if not isinstance(built, str):
                return Chosen("best_intervention", lambda users: built(users, np.zeros(len(users), np.int64)), name)
            why = built
        reasons.append(f"best_intervention: {why}")
    causal = models.chosen if models is not None else None
    if config.strategy in ("best_intervention", "uplift"):
        if causal is not None and causal.identifiable:
            return Chosen("uplift", causal.uplift, "uplift", "; ".join(reasons) or None)
        reasons.append("uplift: " + (models.identification.reason if models is not None else "the causal GNN was not trained"))
    if causal is not None:
        return Chosen("relevance", causal.relevance, "relevance", "; ".join(reasons) or None)
    reasons.append("relevance: the causal GNN was not trained")
    popularity = next((s.policies["popularity"] for s in policy_sets if "popularity" in s.policies), None)
    if popularity is None:
        raise ValueError("no policy to recommend with: neither the causal GNN nor the popularity baseline ran")
    return Chosen("relevance", popularity.scores, "popularity", "; ".join(reasons))


def run_recommend(config: RecommendConfig, split: Split, dataset: Dataset, models: ModelSet | None,
                  policy_sets: Sequence[PolicySet], features: TextFeatures | None, contrast: ContrastConfig | None,
                  contrast_metrics: Mapping[str, object], seed: int) -> Recommendations:
    """Top-``config.k`` per split user without what they already have; metrics name the strategy used,
    why it fell back, and (synthetic world) the lists' true value and caused engagement per slot."""
    chosen = choose(config, models, policy_sets, split, dataset, features, contrast, contrast_metrics, seed)
    users = np.arange(split.n_users)
    exclude = already_has([split.train, split.val, split.test], split.n_users, split.n_items)
    notes = _notes(split, dataset, features)
    causal = models.chosen if models is not None else None
    uplift = causal.uplift if causal is not None and causal.identifiable else None
    kept = candidates(chosen.scores, users, exclude, config.candidates, uplift)
    intervals = None
    if uplift is not None:
        exposure = causal if "propensity" in causal.plan.heads else models.causal  # the T-learner has no exposure head
        intervals = item_uplift_intervals(split, uplift, causal.p_outcome_if_not_exposed, exposure.propensity,
                                          causal.examination(), retention(split, "train"))
        notes = replace(notes, item_uplift=np.column_stack([intervals.estimate, intervals.low, intervals.high]))
    lists = recommend(kept, users, split.users.ids, exclude, notes, config, seed, chosen.strategy, chosen.label)
    metrics: dict[str, float | str] = {
        "recommend/strategy": chosen.label, "recommend/k": float(config.k), "recommend/n_users": float(lists["user_id"].nunique()),
        "recommend/exploration_share": float(lists["exploration"].mean()) if len(lists) else 0.0,
        "recommend/catalogue_coverage": float(lists["item_id"].nunique() / max(split.n_items, 1)),
    }
    if chosen.fallback:
        metrics["recommend/fallback"] = chosen.fallback
    if intervals is not None:
        metrics["recommend/item_uplift_ci_median_width"] = float(np.median(intervals.high - intervals.low))
    if dataset.world is not None:
        metrics |= _truth(dataset, split, lists, config.k)
        if intervals is not None:
            metrics["recommend/item_uplift_ci_coverage"] = coverage(intervals, _true_item_uplift(dataset, split))
    popularity = np.bincount(split.train.loc[split.train["positive"], "item"], minlength=split.n_items).astype(np.float64)
    servable = Servable(kept, split.users.ids, exclude, notes, popularity, chosen, config, seed)
    return Recommendations(lists, metrics, servable)


def _true_item_uplift(dataset: Dataset, split: Split, block: int = 512) -> np.ndarray:
    """(n_items,) the world's mean uplift of each item over the split's users."""
    users, items = split.users.ids.astype(np.int64), split.items.ids.astype(np.int64)
    total = sum(dataset.world.uplift(users[s : s + block], items).sum(axis=0) for s in range(0, len(users), block))
    return np.asarray(total, dtype=np.float64) / len(users)


def _notes(split: Split, dataset: Dataset, features: TextFeatures | None) -> ItemNotes:
    items = dataset.items.set_index("item_id").reindex(split.items.ids)
    titles = items["title"].fillna("").astype(str).tolist() if "title" in items.columns else None
    if features is None:
        return ItemNotes(split.items.ids, titles)
    labels = dict(zip(features.topics["topic"], features.topics["label"])) if "label" in features.topics else {}
    topics = [str(labels.get(int(t), "")) if t >= 0 else "" for t in features.item_topics]
    return ItemNotes(split.items.ids, titles, topics, features.item_keywords)


def _truth(dataset: Dataset, split: Split, lists: pd.DataFrame, k: int) -> dict[str, float]:
    """The world's exact value of the lists per slot (session-weighted, as policy values are) and the
    part of it the recommendations cause; users with fewer than ``k`` items left are not scored."""
    full = lists.groupby("user_id")["item_id"].count()
    users = full.index[full == k]
    if not len(users):
        return {}
    frame = lists[lists["user_id"].isin(users)].sort_values(["user_id", "rank"])
    slates = frame["item_id"].to_numpy(np.int64).reshape(len(users), k)
    world_users = np.asarray(users, dtype=np.int64)
    value, caused = dataset.world.slate_values(world_users, slates)
    weights = dataset.world.session_weights(world_users)
    return {"recommend/true_value": float(weights @ value), "recommend/true_caused": float(weights @ caused)}
