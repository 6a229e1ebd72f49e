"""Reference policies for the evaluation harness: built from the training split and the data's
known facts, never from the evaluation data. The content baseline ranks by text-embedding
similarity between the user's vector (their text and training history) and each item's.

A baseline the data cannot support is skipped with a reason (the run report shows it): the
logging policy needs known logging scores; the oracles need the synthetic world's ground truth.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from recause.models.policies.scores import FunctionPolicy, Policy, PopularityPolicy, RandomPolicy
from recause.tasks.config import Section
from recause.tasks.data.schema import Dataset
from recause.tasks.data.split import Split
from recause.tasks.evaluate import PolicySet
from recause.tasks.features.build import TextFeatures

Baseline = Literal["random", "popularity", "logging", "content", "oracle_relevance", "oracle_uplift"]
ORACLES = frozenset({"oracle_relevance", "oracle_uplift"})


class BaselinesConfig(Section):
    """Which reference policies the harness scores."""

    policies: list[Baseline] = Field(
        ["random", "popularity", "logging", "content", "oracle_relevance", "oracle_uplift"],
        description="Reference policies to evaluate; ones the data cannot support (logging without "
        "known logging scores, content without text, oracles without ground truth) are skipped and said so.",
    )


def build_baselines(
    split: Split, dataset: Dataset, config: BaselinesConfig, seed: int, features: TextFeatures | None = None
) -> PolicySet:
    """Build the requested baselines on ``split``'s index (training data only); prefix ``baseline``.

    ``content`` scores ⟨user vector, item vector⟩ from the text-feature stage.
    """
    policies: dict[str, Policy] = {}
    skipped: dict[str, str] = {}
    item_ids = split.items.ids
    for name in config.policies:
        if name == "random":
            policies[name] = RandomPolicy(split.n_items, seed)
        elif name == "popularity":
            train = split.train[split.train["positive"]]
            policies[name] = PopularityPolicy(np.bincount(train["item"], minlength=split.n_items))
        elif name == "logging":
            scorer = dataset.logging_scores
            if scorer is None:
                skipped[name] = f"{dataset.meta.name} does not say how its logging policy scored items"
                continue
            policies[name] = FunctionPolicy(name, lambda users, s=scorer: s.score(split.users.ids[users], item_ids))
        elif name == "content":
            if features is None:
                skipped[name] = f"{dataset.meta.name} has no text features (no item text, or the stage is off)"
                continue
            users_vec, items_vec = features.user_vectors, features.item_vectors
            policies[name] = FunctionPolicy(name, lambda users: users_vec[users] @ items_vec.T)
        elif name in ORACLES:
            world = dataset.world
            if world is None:
                skipped[name] = f"{dataset.meta.name} has no ground truth (oracles need the synthetic world)"
                continue
            world_users = split.users.ids.astype(np.int64)
            world_items = item_ids.astype(np.int64)
            truth = world.p_outcome_if_exposed if name == "oracle_relevance" else world.uplift
            policies[name] = FunctionPolicy(name, lambda users, f=truth: f(world_users[users], world_items))
    return PolicySet("baseline", policies, skipped, ORACLES & set(policies))
