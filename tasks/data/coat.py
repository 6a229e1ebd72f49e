"""Coat shopping (Schnabel et al., ICML 2016): self-selected (MNAR) train ratings and ratings on
randomly assigned items (MCAR test), with the authors' propensities and one-hot features.

290 users × 300 coats; each user rated 24 self-chosen coats and 16 coats drawn uniformly at
random, on a 1-5 scale. The layout is that of the authors' ``coat.zip``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from recause.tasks.data.io import concat_tables, nat_timestamps, read_delimited, require_dir
from recause.tasks.data.schema import PROVENANCE, SOURCE_FILE, SOURCE_ROW, Dataset, DatasetError, DenseScores, rating_study_meta

EXPECTED = (
    "train.ascii and test.ascii (n_users × n_items space-separated ratings, 0 = unobserved), "
    "propensities.ascii (same shape, floats) and user_item_features/ with user_features.ascii, "
    "item_features.ascii (one-hot) and user_features_map.txt, item_features_map.txt (column names)"
)


def load_coat(folder: Path) -> Dataset:
    """Read the Coat dataset from ``folder``.

    Returns
    -------
    Dataset
        ``interactions``: one row per rated cell, 6,960 ``"self-selected"`` (train) then 4,640
        ``"random"`` (test) rows; ``user_id``/``item_id`` = 0-based row/column (int64),
        ``timestamp`` NaT, ``exposed`` True, ``outcome`` rating in [1, 5], ``policy``,
        ``propensity`` (given for train; for test, the user's number of random coats / n_items,
        16/300); provenance = the user's line in the file.
        ``items`` (300): ``item_id, title, text, categories`` + 33 one-hot columns.
        ``users`` (290): ``user_id, profile_text`` + 14 one-hot columns.
        ``logging_scores``: the given ``(n_users, n_items)`` propensity matrix.
    """
    folder = require_dir(Path(folder), "Coat", EXPECTED)
    src = folder.name
    train = _matrix(folder / "train.ascii", f"{src}/train.ascii")
    test = _matrix(folder / "test.ascii", f"{src}/test.ascii")
    propensity = _values(_matrix(folder / "propensities.ascii", f"{src}/propensities.ascii"))
    shape = _values(train).shape  # (n_users, n_items)
    for name, other in (("test.ascii", _values(test)), ("propensities.ascii", propensity)):
        if other.shape != shape:
            raise DatasetError(f"Coat: {folder / name} has shape {other.shape}, expected {shape} like train.ascii.")
    per_user = (np.nan_to_num(_values(test)) != 0).sum(axis=1)  # (n_users,) random coats per user: 16
    random_propensity = np.repeat(per_user[:, None] / shape[1], shape[1], axis=1)  # uniform draw
    interactions = concat_tables([
        _ratings(train, "self-selected", propensity),
        _ratings(test, "random", random_propensity),
    ])
    features = folder / "user_item_features"
    items = _describe_items(*_one_hot(features, "item", src))
    users = _describe_users(*_one_hot(features, "user", src))
    meta = rating_study_meta(
        "coat",
        sources={
            "interactions": f"{folder / 'train.ascii'}, {folder / 'test.ascii'}",
            "items": str(features / "item_features.ascii"),
            "users": str(features / "user_features.ascii"),
        },
        notes=(
            f"Test ratings are on coats drawn uniformly at random ({_counts(per_user)} per user of "
            f"{shape[1]}; propensity = that share); the same pair can appear in both splits.",
            "Train propensities are the authors' learned estimates (logistic regression on user × "
            "item covariates), not probabilities logged by a policy.",
            "Coat has no timestamps (all NaT); relevance for ranking is rating >= 4.",
        ),
    )
    logging = DenseScores(user_ids=np.arange(shape[0]), item_ids=np.arange(shape[1]), values=propensity)
    return Dataset(interactions=interactions, items=items, users=users, meta=meta, logging_scores=logging)


def _counts(per_user: np.ndarray) -> str:
    low, high = (int(per_user.min()), int(per_user.max())) if len(per_user) else (0, 0)
    return str(low) if low == high else f"{low}-{high}"


def _matrix(path: Path, source: str) -> pd.DataFrame:
    return read_delimited(path, sep=r"\s+", header=None, source=source,
                          expected="a whitespace-separated n_users × n_items matrix, one user per line")


def _values(frame: pd.DataFrame) -> np.ndarray:
    """The numeric matrix of a frame read by :func:`_matrix`, without provenance."""
    raw = frame.drop(columns=list(PROVENANCE))
    if all(pd.api.types.is_numeric_dtype(t) for t in raw.dtypes):
        return raw.to_numpy(dtype=np.float64)
    values = raw.apply(pd.to_numeric, errors="coerce")
    bad = values.isna() & raw.notna()
    if bad.to_numpy().any():
        row = int(bad.any(axis=1).to_numpy().argmax())
        raise DatasetError(f"Coat: {frame[SOURCE_FILE].iloc[row]} line {frame[SOURCE_ROW].iloc[row]} holds a "
                           "value that is not a number; the file must be a whitespace-separated numeric matrix.")
    return values.to_numpy(dtype=np.float64)


def _ratings(frame: pd.DataFrame, policy: str, propensity: np.ndarray) -> pd.DataFrame:
    """One row per observed (non-zero) cell of a rating matrix, in row-major order."""
    values = _values(frame)
    users, items = np.nonzero(np.nan_to_num(values))
    return pd.DataFrame({
        "user_id": users.astype(np.int64),
        "item_id": items.astype(np.int64),
        "timestamp": nat_timestamps(len(users)),
        "exposed": np.ones(len(users), dtype=bool),
        "outcome": values[users, items],
        "policy": policy,
        "propensity": propensity[users, items],
        SOURCE_FILE: frame[SOURCE_FILE].to_numpy()[users],
        SOURCE_ROW: frame[SOURCE_ROW].to_numpy()[users],
    })


def safe_name(name: str) -> str:
    """``"jackettype:bomber"`` -> ``"jackettype_bomber"``; ``"age:over 60"`` -> ``"age_over_60"``."""
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


def _one_hot(features: Path, kind: str, src: str) -> tuple[pd.DataFrame, list[str]]:
    """``{kind}_id`` + one-hot columns named from ``{kind}_features_map.txt``, with provenance,
    and the original feature names (``"jackettype:bomber"``) in column order."""
    names_file = read_delimited(features / f"{kind}_features_map.txt", sep="\t", header=None, names=["name"],
                                source=f"{src}/user_item_features/{kind}_features_map.txt",
                                expected="one feature name per line, e.g. jackettype:bomber")
    names = [str(n).strip() for n in names_file["name"]]
    raw = read_delimited(features / f"{kind}_features.ascii", sep=r"\s+", header=None,
                         source=f"{src}/user_item_features/{kind}_features.ascii",
                         expected=f"a whitespace-separated one-hot matrix, one {kind} per line")
    onehot = _values(raw)
    if onehot.shape[1] != len(names):
        raise DatasetError(f"Coat: {kind}_features.ascii has {onehot.shape[1]} columns but "
                           f"{kind}_features_map.txt names {len(names)}; they must match.")
    out = pd.DataFrame(onehot.astype(np.int64), columns=[safe_name(n) for n in names])
    out.insert(0, f"{kind}_id", np.arange(len(out), dtype=np.int64))
    out[SOURCE_FILE] = raw[SOURCE_FILE].array  # stays categorical
    out[SOURCE_ROW] = raw[SOURCE_ROW].to_numpy()
    return out, names


def _active(frame: pd.DataFrame, features: list[str], group: str) -> list[str]:
    """Per row, the value of the first active one-hot column of ``group`` ("" when none is)."""
    names = [n for n in features if n.split(":", 1)[0] == group]
    values = frame[[safe_name(n) for n in names]].to_numpy()
    labels = [n.split(":", 1)[1] for n in names]
    return [labels[int(row.argmax())] if row.any() else "" for row in values]


_NOUNS = {"parkas": "parka", "vests": "vest", "shells": "shell jacket", "pea": "pea coat",
          "trench": "trench coat", "rain": "rain jacket", "other": "jacket"}
_COLOURS = {"multi": "multicoloured", "other": ""}


def _describe_items(items: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Add ``title``, ``text`` and ``categories`` built from the one-hot features."""
    groups = ("gender", "jackettype", "color", "onfrontpage")
    rows = zip(*(_active(items, names, g) for g in groups))
    titles, texts = [], []
    for gender, kind, colour, front in rows:
        owner = f"{gender.capitalize()}'s" if gender else ""
        noun = _NOUNS.get(kind) or (f"{kind} jacket" if kind else "coat")
        title = " ".join(w for w in (owner, _COLOURS.get(colour, colour), noun) if w)
        shown = {"yes": "featured on the shop's front page", "no": "not on the front page"}.get(front, "")
        hue = {"other": "an unlisted colour", "": ""}.get(colour, f"colour {_COLOURS.get(colour, colour)}")
        detail = ", ".join(p for p in (f"jacket type {kind}" if kind else "", hue, shown) if p)
        titles.append(title[:1].upper() + title[1:])
        texts.append(f"{titles[-1]}. A coat for {gender or 'anyone'}: {detail}.")
    onehot = items[[safe_name(n) for n in names]].to_numpy().astype(bool)
    categories = ["|".join(n for n, on in zip(names, row) if on) for row in onehot]
    out = items.copy()
    out.insert(1, "title", titles)
    out.insert(2, "text", texts)
    out.insert(3, "categories", categories)
    return out


_PEOPLE = {"men": "man", "women": "woman"}
_INTEREST = {"very": "very interested in fashion", "moderately": "moderately interested in fashion",
             "not at all": "not at all interested in fashion"}


def _describe_users(users: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Add ``profile_text``, e.g. "A woman aged 20-30 living in a suburban area, very interested in fashion." """
    texts = []
    rows = zip(*(_active(users, names, g) for g in ("gender", "age", "location", "fashioninterest")))
    for gender, age, location, interest in rows:
        text = f"A {_PEOPLE.get(gender, 'person')}"
        text += f" aged {age}" if age else ""
        text += f" living in {'an' if location[:1] in 'aeiou' else 'a'} {location} area" if location else ""
        text += f", {_INTEREST.get(interest, interest + ' interested in fashion')}" if interest else ""
        texts.append(text + ".")
    out = users.copy()
    out.insert(1, "profile_text", texts)
    return out
