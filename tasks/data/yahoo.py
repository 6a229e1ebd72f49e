"""Yahoo! R3 (Webscope "ydata-ymusic-rating-study-v1_0"): song ratings chosen by users (MNAR
train) and ratings of songs assigned at random (MCAR test).

The full release has 311,704 train ratings by 15,400 users on 1,000 songs, and 54,000 test
ratings by 5,400 of those users, 10 random songs each. Its terms forbid redistribution, so no
copy ships with the project: point the loader at a copy obtained from Yahoo! Webscope.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recause.tasks.data.io import concat_tables, ids_table, nat_timestamps, read_delimited, require_dir, typed
from recause.tasks.data.schema import SOURCE_FILE, SOURCE_ROW, Dataset, rating_study_meta

TRAIN_FILE = "ydata-ymusic-rating-study-v1_0-train.txt"
TEST_FILE = "ydata-ymusic-rating-study-v1_0-test.txt"
SPLITS = ((TRAIN_FILE, "user-selected"), (TEST_FILE, "random"))
LAYOUT = "tab-separated user \\t song \\t rating lines (1-based ids, ratings 1-5, no header)"


def load_yahoo_r3(folder: Path) -> Dataset:
    """Read Yahoo! R3 from ``folder`` holding the release's train and test files.

    Returns
    -------
    Dataset
        ``interactions``: train rows (``policy="user-selected"``) then test rows
        (``policy="random"``); ``user_id``/``item_id`` as in the files (1-based, int64),
        ``timestamp`` NaT, ``exposed`` True, ``outcome`` rating (float64) in [1, 5].
        ``items``/``users``: the ids seen in either file (no text or features), each pointing
        at the line where the id first appears.
    """
    folder = require_dir(Path(folder), "Yahoo! R3", f"{TRAIN_FILE} and {TEST_FILE}, each {LAYOUT}")
    logs = []
    for name, policy in SPLITS:
        raw = read_delimited(folder / name, sep="\t", header=None, names=["user", "song", "rating"],
                             source=f"{folder.name}/{name}", expected=LAYOUT)
        logs.append(pd.DataFrame({
            "user_id": typed(raw["user"], "int64"),
            "item_id": typed(raw["song"], "int64"),
            "timestamp": nat_timestamps(len(raw)),
            "exposed": np.ones(len(raw), dtype=bool),
            "outcome": typed(raw["rating"], "float64"),
            "policy": policy,
            SOURCE_FILE: raw[SOURCE_FILE],
            SOURCE_ROW: raw[SOURCE_ROW],
        }))
    interactions = concat_tables(logs)
    meta = rating_study_meta(
        "yahoo-r3",
        sources={
            "interactions": f"{folder / TRAIN_FILE}, {folder / TEST_FILE}",
            "items": "song ids of the interaction files",
            "users": "user ids of the interaction files",
        },
        notes=(
            "Test ratings are on 10 songs per user drawn uniformly at random from the 1,000 "
            "(probability 0.01); train ratings are on songs the users chose.",
            "Yahoo! R3 has no timestamps (all NaT) and no song or user text; ids are 1-based as "
            "in the release.",
        ),
    )
    return Dataset(
        interactions=interactions,
        items=ids_table(interactions, "item_id"),
        users=ids_table(interactions, "user_id"),
        meta=meta,
    )
