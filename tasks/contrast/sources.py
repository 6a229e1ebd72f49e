"""What interventions are built from, aligned to a split: scored policies, the logging policy,
popularity, text embeddings and a Thompson-sampling prior — and the facts the data hold about them.

Pure: everything comes from the split, the validated dataset (the Open Bandit loader puts the
Bernoulli-TS prior on :attr:`~recause.tasks.data.schema.Dataset.bts_prior`) and the policies
the earlier stages built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recause.tasks.data.schema import Dataset, DatasetMeta
from recause.tasks.data.split import Split
from recause.tasks.evaluate import PolicySet
from recause.tasks.features.build import TextFeatures

Scores = Callable[[np.ndarray], np.ndarray]  # users (B,) -> (B, n_items)


@dataclass(frozen=True)
class PolicySources:
    """What interventions can be built from (all aligned to the split's user/item indices).

    ``scores``: policy name -> users -> (B, n_items) scores; ``skipped``: name -> why it is not
    available; ``logging``: users -> the logging policy's propensity-like scores;
    ``log_popularity`` (n_items,) log(1 + training engagements); ``item_vectors`` (n_items, d)
    text embeddings; ``bts_prior`` (alpha, beta), each (n_items,); ``n_slots`` slate positions.
    """

    n_items: int
    n_slots: int
    scores: dict[str, Scores]
    skipped: dict[str, str]
    logging: Scores | None
    log_popularity: np.ndarray
    item_vectors: np.ndarray | None = None
    bts_prior: tuple[np.ndarray, np.ndarray] | None = None
    seed: int = 0


def training_log_popularity(split: Split) -> np.ndarray:
    """(n_items,) log(1 + positive training rows) of each item."""
    train = split.train[split.train["positive"]]
    return np.log1p(np.bincount(train["item"], minlength=split.n_items).astype(np.float64))


def slate_positions(split: Split) -> int:
    """Slots per logged slate: the largest position in the log, 1 when the log has none."""
    if "position" not in split.train.columns:
        return 1
    positions = pd.concat([split.train["position"], split.val["position"], split.test["position"]])
    return int(positions.max()) if positions.notna().any() else 1


def policy_sources(
    split: Split, dataset: Dataset, policy_sets: Sequence[PolicySet], features: TextFeatures | None, seed: int
) -> PolicySources:
    """Everything interventions are built from, for ``split``, from the stages' policy sets."""
    logging = None
    if dataset.logging_scores is not None:
        scorer, user_ids, item_ids = dataset.logging_scores, split.users.ids, split.items.ids
        logging = lambda users: scorer.score(user_ids[users], item_ids)  # noqa: E731
    return PolicySources(
        n_items=split.n_items,
        n_slots=slate_positions(split),
        scores={name: policy.scores for s in policy_sets for name, policy in s.policies.items()},
        skipped={name: reason for s in policy_sets for name, reason in s.skipped.items()},
        logging=logging,
        log_popularity=training_log_popularity(split),
        item_vectors=features.item_vectors if features is not None else None,
        bts_prior=dataset.bts_prior.aligned(split.items.ids) if dataset.bts_prior is not None else None,
        seed=seed,
    )


def on_policy_values(dataset: Dataset, policies: Sequence[str]) -> dict[str, float]:
    """Policy name -> its on-policy value where the data hold that policy's own log.

    A policy that logged part of the data (Open Bandit's ``bts`` rows) has a measured value: the
    share of positive outcomes among its logged rows (randomized rows excluded).
    """
    frame = dataset.interactions
    if "policy" not in frame.columns:
        return {}
    out = {}
    for name in dict.fromkeys(policies):
        if name == dataset.meta.randomized_policy:
            continue
        rows = frame.loc[(frame["policy"] == name).fillna(False).to_numpy(dtype=bool), "outcome"]
        if len(rows):
            out[name] = float((rows >= dataset.meta.positive_threshold).mean())
    return out


def outcome_label(meta: DatasetMeta) -> str:
    """What the value of a policy counts, in words: "click rate" or "share of outcomes >= 4"."""
    return "click rate" if meta.outcome_kind == "binary" else f"share of outcomes >= {meta.positive_threshold:g}"
