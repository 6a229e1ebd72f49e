"""Whether the stages can learn from the accepted interactions at all.

Rows can each be valid while the table as a whole gives the stages nothing to work with: no
positive outcome to learn what leads to one, or, under a randomized test policy, no logged rows
to train on or too few randomized rows to validate and test on. Each is a table-level :class:`Failure`, so the
validation fails with a report that says which, rather than a stage crashing later.
"""

from __future__ import annotations

import pandas as pd

from recause.tasks.data.schema import DatasetMeta
from recause.validations.results import Failure

CHECK = "learnable"


def learnability_failures(interactions: pd.DataFrame, meta: DatasetMeta, min_randomized_rows: int) -> list[Failure]:
    """Table-level failures of the accepted ``interactions`` (coerced types); none for an empty table,
    whose emptiness other checks report. ``min_randomized_rows``: the fewest rows of the randomized
    policy a randomized split needs (validation.min_randomized_rows)."""
    if interactions.empty:
        return []
    out: list[Failure] = []
    if "outcome" in interactions.columns:
        outcome = interactions["outcome"].dropna()
        if not (outcome >= meta.positive_threshold).any():
            seen = f"outcomes from {outcome.min():g} to {outcome.max():g}" if len(outcome) else "no outcomes"
            out.append(Failure("interactions", "outcome", CHECK, "table",
                               f"no positive outcome: every accepted outcome is below positive_threshold "
                               f"{meta.positive_threshold:g}, so the stages have no positive to learn from",
                               observed=seen))
    policy = meta.randomized_policy
    if policy is not None and "policy" in interactions.columns:
        randomized = (interactions["policy"].astype("string").str.strip() == policy).fillna(False)
        if randomized.all():
            out.append(Failure("interactions", "policy", CHECK, "table",
                               f"every accepted row has policy {policy!r}, the randomized policy, which the split "
                               "keeps for testing: nothing is left to train on",
                               observed=f"{len(randomized)} rows"))
        elif randomized.sum() < min_randomized_rows:
            out.append(Failure("interactions", "policy", CHECK, "table",
                               f"the randomized split needs at least {min_randomized_rows} accepted rows of policy "
                               f"{policy!r} to validate on some and test on the rest "
                               "(validation.min_randomized_rows)", observed=f"{int(randomized.sum())} rows"))
    return out
