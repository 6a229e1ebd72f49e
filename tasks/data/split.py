"""Train / validation / test splits over integer-indexed interactions.

Two protocols, chosen by what the data support:

``per_user``
    Each user's rows are shuffled (seeded) and cut 8:1:1 the way RecBole's ``RS: [0.8,0.1,0.1]``
    with ``group_by: user`` cuts them: validation and test get ``int(0.1 n)`` rows each, raised to
    one while the user keeps more than one training row. Used by MovieLens and the synthetic world.
``randomized``
    Rows of the uniformly random policy (``meta.randomized_policy``) are the test set, with a
    seeded share held out as validation; every other row trains. Used by Coat, Yahoo! R3 and
    Open Bandit: train on biased logs, evaluate where exposure was random.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from recause.tasks.config import Section

from recause.tasks.data.schema import SOURCE_FILE, SOURCE_ROW, Dataset, IdIndex

SplitKind = Literal["per_user", "randomized"]
DROPPED = ("user_id", "item_id", SOURCE_FILE, SOURCE_ROW)
"""Interaction columns the parts do not copy: the raw ids (the indices replace them) and the provenance.
At 5.1 M rows they were a quarter of the parts' bytes (25 of ~100 a row), which every later stage holds."""


class SplitConfig(Section):
    """Per-user ratios of the per-user protocol and the validation share of a randomized test split."""

    val_fraction: float = Field(0.1, gt=0.0, lt=0.5, description="Per-user share of rows for validation.")
    test_fraction: float = Field(0.1, gt=0.0, lt=0.5, description="Per-user share of rows for test.")
    randomized_val_fraction: float = Field(
        0.1, gt=0.0, lt=0.5, description="Share of a randomized test split (Coat, Open Bandit) held out as validation."
    )


@dataclass(frozen=True)
class Split:
    """Interactions with integer ``user``/``item`` columns (indices into ``users``/``items``).

    ``train``, ``val``, ``test`` keep the validated interactions' columns but the raw ids (``user_id``,
    ``item_id``: ``users.ids[user]`` and ``items.ids[item]`` give them back) and the provenance
    (``_source_file``, ``_source_row``: only validation's errors name file lines), hold ``policy`` as
    a categorical, and add a boolean ``positive`` (outcome ≥ the dataset's positive threshold). Rows
    keep the interactions' order within each part.
    """

    kind: SplitKind
    users: IdIndex
    items: IdIndex
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    seed: int

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def sizes(self) -> dict[str, int | str]:
        return {
            "split/kind": self.kind,
            "split/n_train": len(self.train),
            "split/n_val": len(self.val),
            "split/n_test": len(self.test),
            "split/n_test_positives": int(self.test["positive"].sum()),
        }


def split_dataset(dataset: Dataset, config: SplitConfig, seed: int) -> Split:
    """Index the (validated) dataset and split it by the protocol its metadata calls for."""
    users = IdIndex.of(dataset.users["user_id"])
    items = IdIndex.of(dataset.items["item_id"])
    rows = dataset.interactions
    frame = rows.drop(columns=[c for c in DROPPED if c in rows.columns]).assign(  # lazy (copy-on-write)
        user=users.positions(rows["user_id"]).astype(np.int64),
        item=items.positions(rows["item_id"]).astype(np.int64),
        positive=(rows["outcome"] >= dataset.meta.positive_threshold).to_numpy(dtype=bool),
    )
    if "policy" in frame.columns:  # a few names over millions of rows: 1-byte codes, not strings, in the parts
        frame["policy"] = frame["policy"].astype("category")
    rng = np.random.default_rng([seed, 7])
    if dataset.meta.randomized_policy is not None:
        randomized = (frame["policy"] == dataset.meta.randomized_policy).fillna(False).to_numpy(dtype=bool)
        part = _randomized_parts(randomized, config.randomized_val_fraction, rng)
        kind: SplitKind = "randomized"
    else:
        part = _per_user_parts(frame["user"].to_numpy(), config.val_fraction, config.test_fraction, rng)
        kind = "per_user"
    train, val, test = (frame[part == p].reset_index(drop=True) for p in range(3))
    return Split(kind, users, items, train, val, test, seed)


def _per_user_parts(user: np.ndarray, val_fraction: float, test_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Part (0 train, 1 val, 2 test) of each row; RecBole's per-user ratio split, vectorised."""
    order = _per_user_shuffle(user, rng.random(len(user)))  # rows grouped by user, shuffled within
    counts = np.bincount(user)
    n_val = _ratio_count(counts, val_fraction)  # per user
    n_test = _ratio_count(counts, test_fraction)
    # RecBole: a part whose share is below one row gets one, test first, while train keeps > 1 row
    bump_test = (n_test == 0) & (counts - n_val - n_test > 1)
    n_test = n_test + bump_test
    bump_val = (n_val == 0) & (counts - n_val - n_test > 1)
    n_val = n_val + bump_val
    # in ``order`` user u's rows fill positions [start_u, start_u + counts_u): train first, then val, then test
    start = np.cumsum(counts) - counts
    position = np.arange(len(order))
    val_from = np.repeat(start + counts - n_val - n_test, counts)
    test_from = np.repeat(start + counts - n_test, counts)
    part = np.empty(len(user), dtype=np.int8)
    part[order] = (position >= val_from).astype(np.int8) + (position >= test_from)
    return part


def _per_user_shuffle(user: np.ndarray, key: np.ndarray, block: int = 1 << 16) -> np.ndarray:
    """``np.lexsort((key, user))``. Where the rows already come grouped by user (``user`` non-decreasing,
    as the synthetic world's are, sorted by user and time), the order is :func:`_grouped_shuffle`'s on runs
    of about ``block`` rows cut at user boundaries, each of which fits in cache: at 5.1 M rows (the 16x
    world) 0.08 s against 0.21 s for one pass over all rows, at 0.32 M (default) 5 ms either way."""
    n = len(user)
    if n <= block or not bool((user[1:] >= user[:-1]).all()):
        return _grouped_shuffle(user, key)
    cuts = np.searchsorted(user, user[block::block], side="left")  # each cut at the first row of a user
    bounds = np.unique(np.concatenate(([0], cuts, [n])))
    order = np.empty(n, dtype=np.int64)
    for start, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        run = user[start:stop]
        order[start:stop] = _grouped_shuffle(run - run[0], key[start:stop]) + start
    return order


def _grouped_shuffle(user: np.ndarray, key: np.ndarray) -> np.ndarray:
    """``np.lexsort((key, user))`` (rows by user, within a user by ``key``) for ``0 <= user < 2**32`` and
    ``0 <= key < 1``, without a comparison sort: stable 16-bit radix passes by the key's top 16 bits and
    by user, then the rows whose user and top bits tie ordered by the whole key (~0.2 % of the rows at
    ~100 rows a user). Every pass is linear in the rows, and gathers from 16- or 32-bit copies of the
    users. At 5.1 M rows (the 16x world) 0.27 s, against 1.2-1.6 s for a sort of the keys followed by
    the radix passes by user, and lexsort's 1.9 s."""
    in_range = len(user) > 0 and int(user.min()) >= 0 and int(user.max()) < 2**32
    if not (in_range and key.min() >= 0.0 and key.max() < 1.0):
        return np.lexsort((key, user))
    wide = int(user.max()) >= 2**16
    narrow = user.astype(np.uint32 if wide else np.uint16)
    top = (key * 65536.0).astype(np.uint16)  # floor(key * 2^16): ordering by it never contradicts key's
    order = np.argsort(top, kind="stable")
    order = order[np.argsort((narrow[order] & 0xFFFF).astype(np.uint16), kind="stable")]
    if wide:
        order = order[np.argsort((narrow[order] >> 16).astype(np.uint16), kind="stable")]
    grouped_user, grouped_top = narrow[order], top[order]
    tie = (grouped_user[1:] == grouped_user[:-1]) & (grouped_top[1:] == grouped_top[:-1])  # row i ties i+1
    if tie.any():
        in_run = np.zeros(len(order), dtype=bool)
        in_run[:-1] |= tie
        in_run[1:] |= tie
        at = np.flatnonzero(in_run)
        run = np.cumsum(np.concatenate(([True], ~tie[at[1:] - 1])))  # a run of tied rows, numbered
        rows = order[at]  # in row order within a run (the passes are stable), as lexsort breaks ties
        order[at] = rows[np.lexsort((key[rows], run))]
    return order


def _ratio_count(n: np.ndarray, fraction: float) -> np.ndarray:
    return np.floor(n * fraction + 1e-9).astype(np.int64)


def _randomized_parts(randomized: np.ndarray, val_fraction: float, rng: np.random.Generator) -> np.ndarray:
    part = np.zeros(len(randomized), dtype=np.int8)
    idx = np.flatnonzero(randomized)
    n_val = int(round(len(idx) * val_fraction))
    chosen = rng.permutation(idx)
    part[chosen[:n_val]] = 1
    part[chosen[n_val:]] = 2
    return part
