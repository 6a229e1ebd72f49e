"""Open Bandit Dataset (Saito et al., NeurIPS 2021 D&B): ZOZOTOWN impressions logged by a
uniform-random policy and by Bernoulli Thompson sampling, with true propensities.

Layout (as in ``zr-obp``'s ``obd/`` folder and the full release)::

    folder/random/{campaign}/{campaign}.csv[.gz]   folder/random/{campaign}/item_context.csv
    folder/bts/{campaign}/{campaign}.csv[.gz]      folder/bts/{campaign}/item_context.csv
    folder/prior_bts.yaml                          (optional: the Bernoulli-TS policy's Beta prior)

Each log row is one impression: ``item_id`` shown in slot ``position`` (1-3), ``click``,
``propensity_score``, four hashed ``user_feature_*`` and 80 ``user-item_affinity_*`` columns;
the CSVs carry an unnamed leading index column.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from recause.tasks.data.io import (
    concat_tables, find_file, ids_table, iso_to_utc, read_delimited, require_columns, require_dir, typed,
)
from recause.tasks.data.schema import SOURCE_FILE, SOURCE_ROW, BetaPrior, Dataset, DatasetError, DatasetMeta, DenseScores

POLICIES = ("random", "bts")
PRIOR_FILE = "prior_bts.yaml"
USER_FEATURES = tuple(f"user_feature_{k}" for k in range(4))
EXPECTED = (
    "random/{c}/{c}.csv (or .csv.gz), bts/{c}/{c}.csv and an item_context.csv in random/{c}/ or "
    "bts/{c}/, for campaign {c} in all, men, women"
)


def load_open_bandit(folder: Path, campaign: str = "all") -> Dataset:
    """Read both logs of one Open Bandit campaign from ``folder``.

    Parameters
    ----------
    folder : the ``open-bandit`` folder holding ``random/`` and ``bts/``.
    campaign : ``"all"``, ``"men"`` or ``"women"`` (the sub-folder and file name).

    Returns
    -------
    Dataset
        ``interactions``: the random log then the bts log (10,000 rows each in the small
        sample); ``policy`` ("random"/"bts"), ``user_id`` (12-hex-digit str from the user
        features), ``item_id`` int64, ``timestamp`` UTC, ``exposed`` True, ``outcome`` click
        (float64), ``position`` int64 in 1..3, ``propensity`` = P(item at position | logging
        policy), and ``affinity_0..79`` (``meta.context_columns``).
        ``items``: ``item_id, item_feature_0..3``. ``users``: ``user_id, user_feature_0..3``.
        ``logging_scores``: ``(n_users, n_items)``, each item's mean propensity in the bts log.
    """
    folder = require_dir(Path(folder), "Open Bandit", EXPECTED.format(c=campaign))
    logs = [_read_log(folder, policy, campaign) for policy in POLICIES]
    interactions = concat_tables([log.drop(columns=list(USER_FEATURES)) for log in logs])
    users = ids_table(concat_tables(logs), "user_id", extra=USER_FEATURES)
    item_file = _item_context(folder, campaign)
    raw_items = require_columns(read_delimited(item_file, sep=",", header=0, index_col=0, source=_source(folder, item_file)),
                                ("item_id",), item_file)
    items = raw_items.assign(item_id=typed(raw_items["item_id"], "int64"))
    context = tuple(c for c in interactions.columns if c.startswith("affinity_"))
    bts = interactions[interactions["policy"] == "bts"]
    mean_propensity = bts.groupby("item_id")["propensity"].mean()
    item_ids = items["item_id"].to_numpy()
    row = mean_propensity.reindex(item_ids, fill_value=0.0).to_numpy(dtype=np.float64)
    logging = DenseScores(
        user_ids=users["user_id"].to_numpy(),
        item_ids=item_ids,
        values=np.tile(row, (len(users), 1)),  # (n_users, n_items)
    )
    meta = DatasetMeta(
        name="open-bandit",
        outcome_kind="binary",
        outcome_range=(0.0, 1.0),
        positive_threshold=1.0,
        has_unexposed_outcomes=False,
        randomized_policy="random",
        has_timestamps=True,
        key_columns=("policy", "timestamp", "position"),
        context_columns=context,
        sources={
            "interactions": ", ".join(str(find_file(folder / p / campaign, f"{campaign}.csv")) for p in POLICIES),
            "items": str(item_file),
            "users": "user_feature_0..3 of the interaction logs",
        },
        notes=(
            f"Campaign {campaign!r}; the random log is the uniform-random policy, the bts log "
            "Bernoulli Thompson sampling (ZOZOTOWN A/B test).",
            "Open Bandit has no text: item and user features are hashed categories (item_feature_0 "
            "is numeric), so text encoders have nothing to read.",
            "The data have no user ids: user_id hashes the four user features, so users with equal "
            "features share an id.",
            f"Items come from {_source(folder, item_file)}; each log folder ships its own "
            "item_context.csv (in the public sample the bts copy hashes the same categories to "
            "different strings).",
            "logging_scores approximate the Bernoulli-TS policy by each item's mean logged "
            "propensity in the bts log, the same for every user (0 for items it never showed).",
        ),
    )
    return Dataset(interactions=interactions, items=items, users=users, meta=meta, logging_scores=logging,
                   bts_prior=read_bts_prior(folder / PRIOR_FILE, campaign))


def read_bts_prior(path: Path, campaign: str) -> BetaPrior | None:
    """The Bernoulli-TS policy's Beta prior for ``campaign`` from ``prior_bts.yaml`` (``{campaign:
    {alpha: [...], beta: [...]}}``, one value per item id 0..n-1, as Open Bandit Pipeline ships it);
    None when the file is absent. A file that is there but malformed is a :class:`DatasetError`."""
    if not path.is_file():
        return None
    import yaml

    try:
        prior = (yaml.safe_load(path.read_text()) or {})[campaign]
        alpha, beta = np.asarray(prior["alpha"], dtype=np.float64), np.asarray(prior["beta"], dtype=np.float64)
        return BetaPrior(np.arange(len(alpha), dtype=np.int64), alpha, beta)
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as error:
        raise DatasetError(f"{path}: expected {{{campaign}: {{alpha: [...], beta: [...]}}}} with one positive value per "
                           f"item id, could not read it ({type(error).__name__}: {error})") from error


def _source(folder: Path, path: Path) -> str:
    return f"{folder.name}/{path.relative_to(folder).as_posix()}"


def _item_context(folder: Path, campaign: str) -> Path:
    """``item_context.csv`` from the random folder, else the bts folder."""
    for policy in POLICIES:
        path = folder / policy / campaign / "item_context.csv"
        if path.is_file():
            return path
    return find_file(folder / POLICIES[0] / campaign, "item_context.csv",
                     expected="item_id, item_feature_0..3 for every item of the campaign")


def _read_log(folder: Path, policy: str, campaign: str) -> pd.DataFrame:
    """One policy's log as interaction rows, keeping ``user_feature_*`` for the users table."""
    path = find_file(folder / policy / campaign, f"{campaign}.csv", expected=f"the {policy} policy's log")
    raw = read_delimited(path, sep=",", header=0, index_col=0, source=_source(folder, path))
    require_columns(raw, ("item_id", "timestamp", "click", "position", "propensity_score", *USER_FEATURES), path)
    affinity = [c for c in raw.columns if str(c).startswith("user-item_affinity_")]
    out = pd.DataFrame({
        "user_id": user_ids(raw[list(USER_FEATURES)]),
        "item_id": typed(raw["item_id"], "int64"),
        "timestamp": iso_to_utc(raw["timestamp"]),
        "exposed": np.ones(len(raw), dtype=bool),
        "outcome": typed(raw["click"], "float64"),
        "position": typed(raw["position"], "int64"),
        "propensity": typed(raw["propensity_score"], "float64"),
        "policy": policy,
    })
    out = pd.concat([out, raw[affinity].rename(columns=lambda c: c.replace("user-item_", "")),
                     raw[list(USER_FEATURES)]], axis=1)
    out[SOURCE_FILE] = raw[SOURCE_FILE]
    out[SOURCE_ROW] = raw[SOURCE_ROW]
    return out


def user_ids(features: pd.DataFrame) -> pd.Series:
    """A stable short id per row of hashed user features: the first 12 hex digits of
    ``sha1("f0|f1|f2|f3")``. Equal features give equal ids in every file and run."""
    columns = [features[c].astype(str) for c in features.columns]
    joined = columns[0].str.cat(columns[1:], sep="|")
    digest = {key: hashlib.sha1(key.encode("utf-8")).hexdigest()[:12] for key in pd.unique(joined)}
    return joined.map(digest)
