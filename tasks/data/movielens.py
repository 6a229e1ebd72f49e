"""MovieLens-100K (GroupLens) in either public layout: GroupLens ``u.*`` files or RecBole atomic files.

100,000 ratings (1-5) by 943 users on 1,682 movies, with unix timestamps, titles, genres and
user demographics. There is no exposure log: every row is a pair the user chose to rate.
"""

from __future__ import annotations

import csv
import importlib.metadata
from pathlib import Path

import numpy as np
import pandas as pd

from recause.tasks.data.io import read_delimited, require_columns, require_dir, typed, unix_seconds_to_utc
from recause.tasks.data.schema import SOURCE_FILE, SOURCE_ROW, Dataset, DatasetError, DatasetMeta

GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)  # the 19 genre flags of u.item, in file order
EXPECTED = (
    "either the GroupLens files u.data (user \\t item \\t rating \\t unix_ts), u.item "
    "(id|title|release date|video date|IMDb URL|19 genre flags, latin-1) and u.user "
    "(id|age|gender|occupation|zip), or RecBole atomic files ml-100k.inter, ml-100k.item and "
    "ml-100k.user (tab-separated, typed header on line 1)"
)
_RECBOLE_INTER = "recbole/dataset_example/ml-100k/ml-100k.inter"
_NO_QUOTES = {"quoting": csv.QUOTE_NONE}  # a '"' inside a title must not open a quoted field


def load_movielens(path: Path | None = None) -> Dataset:
    """Read MovieLens-100K from a folder in GroupLens or RecBole layout.

    Parameters
    ----------
    path : the folder (or a file inside it). ``None`` reads the copy that the ``recbole==1.2.1``
        wheel installs under ``recbole/dataset_example/ml-100k/``.

    Returns
    -------
    Dataset
        ``interactions`` (100,000 rows): ``user_id, item_id`` int64, ``timestamp``
        datetime64[ns, UTC], ``exposed`` (all True), ``outcome`` float64 rating in [1, 5].
        ``items`` (1,682): ``item_id, title, text, categories`` (genres joined by ``|``).
        ``users`` (943): ``user_id, age, gender, occupation, zip_code, profile_text``.
    """
    folder = _recbole_folder() if path is None else Path(path)
    if folder.is_file():
        folder = folder.parent
    require_dir(folder, "MovieLens-100K", EXPECTED)
    inters = sorted(folder.glob("*.inter"))
    if (folder / "u.data").is_file():
        layout, files = "GroupLens", (folder / "u.data", folder / "u.item", folder / "u.user")
        inter, items, users = _read_grouplens(folder)
    elif len(inters) == 1:
        layout, files = "RecBole", tuple(inters[0].with_suffix(f".{ext}") for ext in ("inter", "item", "user"))
        inter, items, users = _read_recbole(inters[0])
    else:
        found = ", ".join(p.name for p in inters) or "neither u.data nor a *.inter file"
        raise DatasetError(f"MovieLens-100K: {folder} holds {found}; expected {EXPECTED}.")
    meta = DatasetMeta(
        name="movielens-100k",
        outcome_kind="rating",
        outcome_range=(1.0, 5.0),
        positive_threshold=1.0,
        has_unexposed_outcomes=False,
        randomized_policy=None,
        has_timestamps=True,
        key_columns=("user_id", "item_id"),
        sources={"interactions": str(files[0]), "items": str(files[1]), "users": str(files[2])},
        notes=(
            f"Read the {layout} layout from {folder}.",
            "Every rating counts as a positive (positive_threshold 1.0), as in the common top-K "
            "protocol (RecBole: random 8:1:1 split per user, full ranking, Recall/NDCG@10 and @20).",
            "ML-100K has no exposure log (every row is a pair the user chose to rate), so "
            "P(Y | do(E=0)) and hence uplift are not identifiable from it.",
        ),
    )
    return Dataset(interactions=inter, items=items, users=users, meta=meta)


def _recbole_folder() -> Path:
    """The ml-100k folder inside the installed ``recbole`` wheel."""
    hint = ("install the wheel that ships it with `pip install --no-deps recbole==1.2.1`, "
            "or set data.movielens_path to a folder with the GroupLens or RecBole files")
    try:
        files = importlib.metadata.files("recbole") or []
    except importlib.metadata.PackageNotFoundError:
        raise DatasetError(f"MovieLens-100K: no path given and recbole is not installed; {hint}.") from None
    for file in files:
        if str(file).replace("\\", "/") == _RECBOLE_INTER:
            return Path(file.locate()).parent
    raise DatasetError(f"MovieLens-100K: the installed recbole has no {_RECBOLE_INTER}; {hint}.")


def _read_grouplens(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    src = folder.name
    data = read_delimited(folder / "u.data", sep="\t", header=None, source=f"{src}/u.data",
                          names=["user_id", "item_id", "rating", "timestamp"])
    raw_items = read_delimited(folder / "u.item", sep="|", header=None, encoding="latin-1",
                               source=f"{src}/u.item", dtype={"release_date": str},
                               names=["item_id", "title", "release_date", "video_date", "imdb_url", *GENRES],
                               **_NO_QUOTES)
    flags = raw_items[list(GENRES[1:])].fillna(0).astype(bool).to_numpy()
    genres = [[g for g, on in zip(GENRES[1:], row) if on] for row in flags]
    items = _items(raw_items, raw_items["title"].fillna("unknown").astype(str).tolist(), genres)
    users = read_delimited(folder / "u.user", sep="|", header=None, source=f"{src}/u.user",
                           names=["user_id", "age", "gender", "occupation", "zip_code"],
                           dtype={"zip_code": str}, **_NO_QUOTES)
    return _interactions(data), items, _users(users)


def _read_recbole(inter_path: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    folder, stem, src = inter_path.parent, inter_path.stem, inter_path.parent.name

    def atomic(ext: str, columns: tuple[str, ...], **kw: object) -> pd.DataFrame:
        path = folder / f"{stem}.{ext}"
        frame = read_delimited(path, sep="\t", header=0, source=f"{src}/{stem}.{ext}",
                               expected=f"a RecBole atomic .{ext} file (tab-separated, typed header)",
                               **_NO_QUOTES, **kw)
        return require_columns(frame.rename(columns=lambda c: str(c).split(":", 1)[0]), columns, path)

    data = atomic("inter", ("user_id", "item_id", "rating", "timestamp"))
    raw_items = atomic("item", ("item_id", "movie_title", "release_year", "class"), dtype={"release_year:token": str})
    titles = [
        ("unknown" if t == "unkonwn" else t) + (f" ({y})" if y.isdigit() and len(y) == 4 else "")
        for t, y in zip(raw_items["movie_title"].fillna("unknown").astype(str),
                        raw_items["release_year"].fillna("").astype(str))
    ]  # GroupLens style "Toy Story (1995)"; RecBole spells the missing title "unkonwn"
    genres = [[g for g in str(c).split() if g != "unknown"] for c in raw_items["class"].fillna("")]
    users = atomic("user", ("user_id", "age", "gender", "occupation", "zip_code"), dtype={"zip_code:token": str})
    return _interactions(data), _items(raw_items, titles, genres), _users(users)


def _interactions(raw: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "user_id": typed(raw["user_id"], "int64"),
        "item_id": typed(raw["item_id"], "int64"),
        "timestamp": unix_seconds_to_utc(raw["timestamp"]),
        "exposed": np.ones(len(raw), dtype=bool),
        "outcome": typed(raw["rating"], "float64"),
        SOURCE_FILE: raw[SOURCE_FILE],
        SOURCE_ROW: raw[SOURCE_ROW],
    })


def _items(raw: pd.DataFrame, titles: list[str], genres: list[list[str]]) -> pd.DataFrame:
    text = [f"{t}. Genres: {', '.join(g)}." if g else f"{t}." for t, g in zip(titles, genres)]
    return pd.DataFrame({
        "item_id": typed(raw["item_id"], "int64"),
        "title": titles,
        "text": text,
        "categories": ["|".join(g) for g in genres],
        SOURCE_FILE: raw[SOURCE_FILE],
        SOURCE_ROW: raw[SOURCE_ROW],
    })


_OCCUPATION_PHRASE = {
    "none": "with no occupation",
    "other": "with an unlisted occupation",
    "retired": "who is retired",
    "student": "who is a student",
    "entertainment": "working in entertainment",
    "healthcare": "working in healthcare",
    "marketing": "working in marketing",
}


def _profile(age: object, gender: object, occupation: object) -> str:
    minor = pd.notna(age) and str(age).isdigit() and int(str(age)) < 18
    person = {"M": "boy" if minor else "man", "F": "girl" if minor else "woman"}.get(str(gender).upper(), "person")
    job = str(occupation)
    phrase = _OCCUPATION_PHRASE.get(job) or f"working as {'an' if job[:1] in 'aeiou' else 'a'} {job}"
    return f"A {age}-year-old {person} {phrase}." if pd.notna(age) else f"A {person} {phrase}."


def _users(raw: pd.DataFrame) -> pd.DataFrame:
    profile = [_profile(a, g, o) for a, g, o in zip(raw["age"], raw["gender"], raw["occupation"])]
    return pd.DataFrame({
        "user_id": typed(raw["user_id"], "int64"),
        "age": raw["age"],
        "gender": raw["gender"],
        "occupation": raw["occupation"],
        "zip_code": raw["zip_code"],
        "profile_text": profile,
        SOURCE_FILE: raw[SOURCE_FILE],
        SOURCE_ROW: raw[SOURCE_ROW],
    })
