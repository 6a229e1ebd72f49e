"""Splits: RecBole's per-user ratio rule, randomized test splits, seeded, nothing lost."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recause.tasks.data.schema import Dataset, DatasetMeta
from recause.tasks.data.split import SplitConfig, split_dataset


def dataset(rows_per_user: dict[int, int], randomized: dict[int, int] | None = None) -> Dataset:
    users, items, policy = [], [], []
    for user, n in rows_per_user.items():
        users += [user] * n
        items += list(range(n))
        policy += ["logged"] * n
    for user, n in (randomized or {}).items():
        users += [user] * n
        items += list(range(100, 100 + n))
        policy += ["random"] * n
    inter = pd.DataFrame({"user_id": users, "item_id": items, "timestamp": pd.NaT, "exposed": True,
                          "outcome": np.ones(len(users)), "policy": policy})
    meta = DatasetMeta("toy", "binary", (0.0, 1.0), 1.0, False, "random" if randomized else None, False, ("user_id", "item_id"))
    all_items = sorted(set(items))
    return Dataset(inter, pd.DataFrame({"item_id": all_items}), pd.DataFrame({"user_id": sorted(set(users))}), meta)


@pytest.mark.parametrize(("n", "expected"), [(10, (8, 1, 1)), (20, (16, 2, 2)), (3, (1, 1, 1)), (2, (1, 0, 1)), (1, (1, 0, 0)), (15, (13, 1, 1))])
def test_per_user_counts_follow_recbole(n: int, expected: tuple[int, int, int]) -> None:
    # RecBole: int(0.1 n) rows each for val/test; a share below one row becomes one row (test first)
    # while training keeps more than one row
    split = split_dataset(dataset({0: n}), SplitConfig(), seed=0)
    assert (len(split.train), len(split.val), len(split.test)) == expected
    assert split.kind == "per_user"


def test_per_user_split_is_seeded_and_loses_nothing() -> None:
    data = dataset({0: 10, 1: 7, 2: 31})
    a, b, c = (split_dataset(data, SplitConfig(), seed=s) for s in (1, 1, 2))
    pd.testing.assert_frame_equal(a.test, b.test)
    assert not a.test["item"].equals(c.test["item"])
    parts = pd.concat([a.train, a.val, a.test])
    assert len(parts) == 48 and not parts.duplicated(["user", "item"]).any()
    assert set(a.train["user"]) == {0, 1, 2}


def test_randomized_split_trains_on_logged_rows_and_tests_on_random_ones() -> None:
    split = split_dataset(dataset({0: 5, 1: 5}, randomized={0: 10, 1: 10}), SplitConfig(randomized_val_fraction=0.1), seed=0)
    assert split.kind == "randomized"
    assert (split.train["policy"] == "logged").all() and len(split.train) == 10
    assert (split.val["policy"] == "random").all() and len(split.val) == 2
    assert (split.test["policy"] == "random").all() and len(split.test) == 18


def test_indices_and_positives() -> None:
    data = dataset({5: 4, 9: 4})
    split = split_dataset(data, SplitConfig(), seed=0)
    assert list(split.users.ids) == [5, 9] and split.n_items == 4
    frame = pd.concat([split.train, split.val, split.test])
    pairs = sorted(zip(split.users.ids[frame["user"]], split.items.ids[frame["item"]]))
    assert pairs == sorted(zip(data.interactions["user_id"], data.interactions["item_id"]))
    assert frame["positive"].all()


def test_parts_drop_raw_ids_and_provenance_and_hold_policy_as_categories() -> None:
    data = dataset({0: 5, 1: 5}, randomized={0: 10, 1: 10})
    rows = data.interactions.assign(_source_file=pd.Categorical(["f"] * 30), _source_row=np.arange(2, 32))
    rows.loc[0, "policy"] = pd.NA  # a row no policy logged
    split = split_dataset(Dataset(rows, data.items, data.users, data.meta), SplitConfig(), seed=0)
    for part in (split.train, split.val, split.test):
        assert not {"user_id", "item_id", "_source_file", "_source_row"} & set(part.columns)
        assert isinstance(part["policy"].dtype, pd.CategoricalDtype)
    logged = (split.train["policy"] == "logged").fillna(False).to_numpy(dtype=bool)
    assert logged.sum() == 9 and split.train["policy"].isna().sum() == 1


@pytest.mark.parametrize("n_users", [1, 7, 70_000])  # 70,000: the high 16 bits of the users are used
def test_the_grouped_shuffle_is_lexsort(n_users: int) -> None:
    from recause.tasks.data.split import _grouped_shuffle

    rng = np.random.default_rng(n_users)
    user = rng.integers(0, n_users, 20_000)
    key = rng.random(20_000)
    key[::7] = key[0]  # ties keep the rows' order, as lexsort's do
    key[1::5] = 0.5 + rng.random(len(key[1::5])) * 2.0**-20  # the same top 16 bits, different below
    np.testing.assert_array_equal(_grouped_shuffle(user, key), np.lexsort((key, user)))


@pytest.mark.parametrize("grouped", [True, False])
@pytest.mark.parametrize("block", [1, 8, 1 << 16])  # 1, 8: users with more rows than a run (a run holds whole users)
def test_the_per_user_shuffle_is_lexsort(grouped: bool, block: int) -> None:
    from recause.tasks.data.split import _per_user_shuffle

    rng = np.random.default_rng(block)
    user = rng.integers(3, 40, 2_000)
    user = np.sort(user) if grouped else user
    key = rng.random(2_000)
    key[::9] = key[0]  # ties across and within runs
    np.testing.assert_array_equal(_per_user_shuffle(user, key, block=block), np.lexsort((key, user)))
