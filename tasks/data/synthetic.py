"""The ``synthetic`` dataset: a :class:`~recause.models.world.scm.SyntheticWorld` turned into the three tables.

Besides the tables, the dataset carries the world itself (``Dataset.world``) so evaluation can
score every estimate against ground truth, and the logging policy's exact scores π0(i|u).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recause.models.world.scm import SyntheticWorld, WorldConfig
from recause.tasks.data.schema import Dataset, DatasetMeta, with_provenance


@dataclass(frozen=True)
class WorldLoggingScores:
    """π0(i|u) of the world's logging policy, by id (ids are the world's indices)."""

    world: SyntheticWorld

    def score(self, user_ids: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
        return self.world.logging_policy(np.asarray(user_ids, dtype=np.int64))[:, np.asarray(item_ids, dtype=np.int64)]


def load_synthetic(config: WorldConfig, seed: int) -> Dataset:
    """Create the world for ``config`` (seeded) and simulate its logs.

    Sizes: ``config.n_users`` users, ``config.n_items`` items, about
    ``n_users × mean_sessions × slate_size`` impressions plus organic finds.
    """
    world = SyntheticWorld.create(config, seed)
    source = f"synthetic(seed={world.seed})"
    meta = DatasetMeta(
        name="synthetic",
        outcome_kind="binary",
        outcome_range=(0.0, 1.0),
        positive_threshold=1.0,
        has_unexposed_outcomes=True,
        randomized_policy=None,
        has_timestamps=True,
        key_columns=("user_id", "item_id", "timestamp"),
        sources={"interactions": source, "items": source, "users": source},
        notes=(
            "Synthetic world: ground truth p0, p1 and uplift are known for every pair; "
            "organic finds (exposed=False) identify P(Y=1 | do(E=0)).",
        ),
    )
    return Dataset(
        interactions=with_provenance(world.simulate_logs(), f"{source}/interactions"),
        items=with_provenance(world.items_table(), f"{source}/items"),
        users=with_provenance(world.users_table(), f"{source}/users"),
        meta=meta,
        logging_scores=WorldLoggingScores(world),
        world=world,
    )
