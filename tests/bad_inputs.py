"""A corpus of bad inputs, each built from tiny frames into a folder, with the answer it must get.

Every case writes a ``dir:`` dataset (or nothing, for command-line cases) under a folder and returns
the ``recause`` arguments that exercise it; :data:`CASES` says which exit code the command must give
and which words (file, column, line, or setting) its message must contain. The contract they check
(``flows/cli.py``): 1 = the data failed validation and a report was written; 2 = a usage or
configuration error; 3 = the dataset cannot be read or its metadata contradicts it; never a traceback.

``tests/test_bad_inputs.py`` runs every case. To look at the files yourself::

    python -m tests.bad_inputs OUT_DIR      # writes OUT_DIR/<case>/ and OUT_DIR/cases.tsv
"""

from __future__ import annotations

import gzip
import os
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

# The clean dataset every data case breaks one thing in: 3 users, 4 items, 6 interactions.
# Row i of a CSV is on line i + 2 (the header is line 1); row i of a parquet file is "line" i + 1.
TIMES = ["2026-01-01T10:00:00Z", "2026-01-01T10:01:00Z", "2026-01-02T09:00:00Z",
         "2026-01-02T09:05:00Z", "2026-01-03T12:00:00Z", "2026-01-03T12:30:00Z"]


def interactions() -> pd.DataFrame:
    """``(6, 7)``: row 3 (line 5) is an organic find (unexposed, positive, no propensity or slot)."""
    return pd.DataFrame({
        "user_id": [1, 1, 2, 2, 3, 3],
        "item_id": [10, 11, 10, 12, 11, 12],
        "timestamp": TIMES,
        "exposed": [True, True, True, False, True, True],
        "outcome": [1.0, 0.0, 0.0, 1.0, 1.0, 0.0],
        "propensity": [0.5, 0.25, 0.5, None, 0.125, 0.75],
        "position": pd.array([1, 2, 1, None, 1, 2], dtype="Int64"),
    })


def items() -> pd.DataFrame:
    return pd.DataFrame({"item_id": [10, 11, 12, 13],
                         "title": ["red running shoes", "tax law textbook", "crimson jogging sneakers", "unused item"]})


def users() -> pd.DataFrame:
    return pd.DataFrame({"user_id": [1, 2, 3], "profile_text": ["runner", "lawyer", "jogger"]})


def csv_text(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


def edit_line(text: str, line: int, new: str) -> str:
    """``text`` with its 1-based ``line`` replaced by ``new``."""
    lines = text.splitlines()
    lines[line - 1] = new
    return "\n".join(lines) + "\n"


def with_cell(frame: pd.DataFrame, row: int, column: str, value: object) -> pd.DataFrame:
    """A copy of ``frame`` (as object columns, so any value fits) with one cell replaced."""
    out = frame.astype({column: object})
    out.loc[row, column] = value
    return out


# --- writing a dataset folder ---------------------------------------------------------------

def data_dir(case: Path) -> Path:
    folder = case / "data"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_tables(case: Path, *, inter: pd.DataFrame | str | bytes | None = None, fmt: str = "csv",
                 item_table: pd.DataFrame | str | bytes | None = None, meta: str | None = None) -> Path:
    """Write interactions (``fmt``: csv, csv.gz or parquet), items.csv, users.csv and ``meta``."""
    folder = data_dir(case)
    write_table(folder / f"interactions.{fmt}", interactions() if inter is None else inter)
    write_table(folder / "items.csv", items() if item_table is None else item_table)
    write_table(folder / "users.csv", users())
    if meta is not None:
        (folder / "meta.yaml").write_text(meta)
    return folder


def write_table(path: Path, table: pd.DataFrame | str | bytes) -> None:
    """A frame as csv/csv.gz/parquet by ``path``'s suffix; text or bytes written as they are."""
    if isinstance(table, pd.DataFrame):
        if path.suffix == ".parquet":
            table.to_parquet(path, index=False)
            return
        table = csv_text(table)
    raw = table.encode() if isinstance(table, str) else table
    path.write_bytes(gzip.compress(raw, mtime=0) if path.name.endswith(".gz") and isinstance(table, str) else raw)


def validate(case: Path) -> list[str]:
    """``recause validate`` on the case's dataset (no Data Docs: the corpus stays fast)."""
    return ["validate", "--dataset", f"dir:{case / 'data'}", "--output-dir", str(case / "out"),
            "--set", "validation.data_docs=false"]


def data_case(**tables) -> Callable[[Path], list[str]]:
    def build(case: Path) -> list[str]:
        write_tables(case, **tables)
        return validate(case)
    return build


def linked_case(make_target: Callable[[Path], Path | str], name: str = "interactions.csv") -> Callable[[Path], list[str]]:
    """The other tables as usual, and ``name`` a symbolic link to what ``make_target`` returns."""
    def build(case: Path) -> list[str]:
        folder = data_dir(case)
        write_table(folder / "items.csv", items())
        write_table(folder / "users.csv", users())
        (folder / name).symlink_to(make_target(case))
        return validate(case)
    return build


def meta_case(meta: str | bytes, inter: pd.DataFrame | None = None) -> Callable[[Path], list[str]]:
    def build(case: Path) -> list[str]:
        folder = write_tables(case, inter=inter)
        (folder / "meta.yaml").write_bytes(meta.encode() if isinstance(meta, str) else meta)
        return validate(case)
    return build


def config_case(*argv: str) -> Callable[[Path], list[str]]:
    return lambda case: ["config", *argv]


# --- the individual breakages ---------------------------------------------------------------

def parquet_items_with_bad_utf8(case: Path) -> list[str]:
    folder = write_tables(case)
    (folder / "items.csv").unlink()
    titles = pa.array([b"red running shoes", b"tax l\xe4w textbook", b"crimson jogging sneakers", b"unused"], pa.binary())
    pq.write_table(pa.table({"item_id": pa.array([10, 11, 12, 13]), "title": titles}), folder / "items.parquet")
    return validate(case)


def parquet_timestamp_year_9999(case: Path) -> list[str]:
    import datetime

    table = pa.Table.from_pandas(interactions().drop(columns="timestamp"), preserve_index=False)
    stamps = [datetime.datetime(9999, 12, 31, tzinfo=datetime.timezone.utc)] + [pd.Timestamp(t).to_pydatetime() for t in TIMES[1:]]
    return write_parquet_interactions(case, table.append_column("timestamp", pa.array(stamps, pa.timestamp("us", tz="UTC"))))


def parquet_with_duplicate_columns(case: Path) -> list[str]:
    table = pa.Table.from_pandas(interactions(), preserve_index=False)
    return write_parquet_interactions(case, table.append_column("outcome", pa.array([0.0] * table.num_rows)))


def parquet_list_outcome(case: Path) -> list[str]:
    return write_parquet_interactions(case, parquet_column("outcome", pa.array([[1], [0], [0], [1], [1], [0]])))


def parquet_column(column: str, values: pa.Array) -> pa.Table:
    """The base interactions as an arrow table with ``column`` replaced by ``values``."""
    table = pa.Table.from_pandas(interactions(), preserve_index=False)
    return table.set_column(table.schema.get_field_index(column), column, values)


def write_parquet_interactions(case: Path, table: pa.Table) -> list[str]:
    folder = write_tables(case)
    (folder / "interactions.csv").unlink()
    pq.write_table(table, folder / "interactions.parquet")
    return validate(case)


def parquet_bytes(case: Path, cut: Callable[[bytes], bytes]) -> list[str]:
    folder = write_tables(case)
    (folder / "interactions.csv").unlink()
    path = folder / "interactions.parquet"
    interactions().to_parquet(path, index=False)
    path.write_bytes(cut(path.read_bytes()))
    return validate(case)


def both_csv_and_parquet(case: Path) -> list[str]:
    folder = write_tables(case)
    interactions().to_parquet(folder / "interactions.parquet", index=False)
    return validate(case)


def unreadable_file(case: Path) -> list[str]:
    folder = write_tables(case)
    (folder / "interactions.csv").chmod(0)
    return validate(case)


def named_pipe(case: Path) -> list[str]:
    """A FIFO where the file should be: opening it would wait for a writer forever."""
    folder = write_tables(case)
    (folder / "interactions.csv").unlink()
    os.mkfifo(folder / "interactions.csv")
    return validate(case)


def folder_named_like_a_file(case: Path) -> list[str]:
    folder = data_dir(case)
    (folder / "interactions.csv").mkdir()
    write_table(folder / "items.csv", items())
    return validate(case)


def meta_yaml_not_a_file(make: Callable[[Path], None]) -> Callable[[Path], list[str]]:
    def build(case: Path) -> list[str]:
        folder = write_tables(case)
        make(folder / "meta.yaml")
        return validate(case)
    return build


def dataset_is_a_file(case: Path) -> list[str]:
    case.mkdir(parents=True, exist_ok=True)
    (case / "data").write_text(csv_text(interactions()))
    return validate(case)


def missing_dataset(case: Path) -> list[str]:
    return validate(case)


def link_loop(case: Path) -> list[str]:
    folder = write_tables(case)
    (folder / "interactions.csv").unlink()
    (folder / "interactions.csv").symlink_to(folder / "loop.csv")
    (folder / "loop.csv").symlink_to(folder / "interactions.csv")
    return validate(case)


def coat_with_a_long_row(case: Path) -> list[str]:
    """A 2 × 3 Coat release whose train matrix has a row of 4 ratings."""
    folder, features = data_dir(case) / "coat", data_dir(case) / "coat" / "user_item_features"
    features.mkdir(parents=True)
    (folder / "train.ascii").write_text("5 0 0\n0 1 4 2\n")
    (folder / "test.ascii").write_text("0 0 3\n2 0 0\n")
    (folder / "propensities.ascii").write_text("0.5 0.1 0.2\n0.3 0.4 0.6\n")
    (features / "user_features.ascii").write_text("1 0\n0 1\n")
    (features / "user_features_map.txt").write_text("gender:men\ngender:women")
    (features / "item_features.ascii").write_text("1 0\n0 1\n1 0\n")
    (features / "item_features_map.txt").write_text("gender:men\ngender:women")
    return ["validate", "--dataset", "coat", "--set", f"data.root={case / 'data'}", "--output-dir", str(case / "out")]


def open_bandit_without_clicks(case: Path) -> list[str]:
    """Open Bandit logs whose CSVs lack the ``click`` column."""
    log = pd.DataFrame({"timestamp": TIMES[:2], "item_id": [0, 1], "position": [1, 2], "propensity_score": [0.5, 0.5],
                        **{f"user_feature_{k}": ["a", "b"] for k in range(4)}})
    for policy in ("random", "bts"):
        folder = data_dir(case) / "open-bandit" / policy / "all"
        folder.mkdir(parents=True)
        log.to_csv(folder / "all.csv")
        pd.DataFrame({"item_id": [0, 1], "item_feature_0": [0.1, 0.2]}).to_csv(folder / "item_context.csv")
    return ["validate", "--dataset", "open-bandit", "--set", f"data.root={case / 'data'}", "--output-dir", str(case / "out")]


def binary_bytes() -> bytes:
    """A file that is no text at all: PNG magic, NULs and seeded noise."""
    return b"\x89PNG\r\n\x1a\n" + bytes(16) + np.random.default_rng(0).integers(0, 256, 512, dtype=np.uint8).tobytes()


def prose_file(case: Path) -> Path:
    path = case / "notes.txt"
    path.write_text("Meeting notes, Tuesday.\nWe talked about recommendations; nothing was decided, again.\n")
    return path


def binary_file(case: Path) -> Path:
    path = case / "photo.png"
    path.write_bytes(binary_bytes())
    return path


def csv_file(case: Path) -> Path:
    path = case / "plain.csv"
    path.write_text(csv_text(interactions()))
    return path


def a_folder(case: Path) -> Path:
    path = case / "somewhere"
    path.mkdir()
    return path


ALIAS_BOMB = "\n".join(
    ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    + [f"{chr(98 + k)}: &{chr(98 + k)} [{', '.join([f'*{chr(97 + k)}'] * 10)}]" for k in range(8)]
    + ["key_columns: *i"]
)  # key_columns would be 10^9 strings if expanded; safe_load shares them, and no message may expand them
HEADER = csv_text(interactions()).splitlines()[0]
CSV = csv_text(interactions())
all_randomized = interactions().assign(policy="random")


@dataclass(frozen=True)
class Case:
    """One bad input: how to build it, the exit code it must get and the words its message must hold."""

    name: str
    area: str  # csv, gzip, parquet, meta, data, link, cli
    build: Callable[[Path], list[str]]
    exit_code: int
    names: tuple[str, ...]
    needs_non_root: bool = False


CASES: tuple[Case, ...] = (
    # controls: the base dataset in each format passes, so each breakage below is what fails
    Case("clean csv", "csv", data_case(), 0, ("passed",)),
    Case("clean csv.gz", "gzip", data_case(inter=CSV, fmt="csv.gz"), 0, ("passed",)),
    Case("clean parquet", "parquet", data_case(fmt="parquet"), 0, ("passed",)),
    # CSV
    Case("csv row with an extra field", "csv", data_case(inter=edit_line(CSV, 4, CSV.splitlines()[3] + ",surplus")),
         3, ("interactions.csv", "line 4", "8 fields", "header names 7")),
    Case("csv row with missing fields", "csv", data_case(inter=edit_line(CSV, 3, "1,11,2026-01-01T10:01:00Z,true")),
         1, ("interactions.csv line 3", "'outcome'")),
    Case("csv unterminated quote", "csv", data_case(inter=edit_line(CSV, 5, '"2,12,2026-01-02T09:05:00Z,false,1.0,,')),
         3, ("interactions.csv", "line 5", "quote")),
    Case("csv empty file", "csv", data_case(inter=b""), 1, ("interactions.csv", "at least 1 row")),
    Case("csv header only", "csv", data_case(inter=HEADER + "\n"), 1, ("interactions.csv", "at least 1 row")),
    Case("csv blank lines only", "csv", data_case(inter="\n  \n\n"), 1, ("interactions.csv", "at least 1 row")),
    Case("csv missing outcome column", "csv", data_case(inter=interactions().drop(columns="outcome")),
         1, ("interactions.csv", "column 'outcome' must exist")),
    Case("csv duplicated column name", "csv", data_case(inter=CSV.replace("position", "outcome", 1)),
         3, ("interactions.csv", "'outcome'", "columns 5 and 7")),
    Case("csv UTF-16", "csv", data_case(inter=CSV.encode("utf-16")), 3, ("interactions.csv", "UTF-16")),
    Case("csv UTF-8 with BOM", "csv", data_case(inter="\ufeff" + CSV), 0, ("passed",)),
    Case("csv Latin-1 text", "csv", data_case(item_table=csv_text(items()).replace("tax law", "tax l\xe4w").encode("latin-1")),
         1, ("items.csv line 3", "'title'", "UTF-8")),
    Case("csv NUL byte", "csv", data_case(inter=edit_line(CSV, 5, CSV.splitlines()[4].replace("12", "1\x002", 1))),
         3, ("interactions.csv", "line 5", "NUL")),
    Case("csv binary garbage", "csv", data_case(inter=binary_bytes()), 3, ("interactions.csv", "NUL")),
    Case("csv semicolon-separated", "csv", data_case(inter=CSV.replace(",", ";")),
         1, ("interactions.csv", "column 'user_id' must exist")),
    Case("csv CRLF line endings", "csv", data_case(inter=CSV.replace("\n", "\r\n")), 0, ("passed",)),
    Case("csv timestamp year 9999", "csv", data_case(inter=with_cell(interactions(), 1, "timestamp", "9999-12-31T23:59:59Z")),
         1, ("interactions.csv line 3", "'timestamp'", "1677")),
    Case("csv timestamp year 1", "csv", data_case(inter=with_cell(interactions(), 2, "timestamp", "0001-01-01T00:00:00Z")),
         1, ("interactions.csv line 4", "'timestamp'")),
    Case("csv Unix seconds 1e20", "csv", data_case(inter=interactions().assign(timestamp=[1.7e9, 1.7e9 + 60, 1e20, 1.7e9 + 120, 1.7e9 + 180, 1.7e9 + 240])),
         1, ("interactions.csv line 4", "'timestamp'")),
    Case("csv position inf", "csv", data_case(inter=with_cell(interactions(), 0, "position", "inf")),
         1, ("interactions.csv line 2", "'position'")),
    Case("csv position 1e30", "csv", data_case(inter=with_cell(interactions(), 4, "position", "1e30")),
         1, ("interactions.csv line 6", "'position'")),
    Case("csv outcome inf", "csv", data_case(inter=with_cell(interactions(), 1, "outcome", "inf")),
         1, ("interactions.csv line 3", "'outcome'")),
    Case("csv outcome 1e308", "csv", data_case(inter=with_cell(interactions(), 5, "outcome", "1e308")),
         1, ("interactions.csv line 7", "'outcome'")),
    Case("csv negative propensity", "csv", data_case(inter=with_cell(interactions(), 2, "propensity", "-0.5")),
         1, ("interactions.csv line 4", "'propensity'")),
    Case("csv 30-digit ids", "csv", data_case(inter=CSV.replace("\n3,", "\n123456789012345678901234567890,")),
         1, ("interactions.csv lines 6, 7", "'user_id'", "123456789012345678901234567890")),
    Case("csv one-megabyte title", "csv", data_case(item_table=with_cell(items(), 3, "title", "x" * 1_000_000)), 0, ("passed",)),
    # gzip
    Case("csv.gz not gzip", "gzip", data_case(inter=b"user_id,item_id\n1,2\n", fmt="csv.gz"),
         3, ("interactions.csv.gz", "gzip")),
    Case("csv.gz truncated", "gzip", data_case(inter=gzip.compress(CSV.encode() * 200, mtime=0)[:300], fmt="csv.gz"),
         3, ("interactions.csv.gz", "ended")),
    Case("csv.gz empty file", "gzip", data_case(inter=b"", fmt="csv.gz"), 1, ("interactions.csv.gz", "at least 1 row")),
    Case("csv.gz bad row", "gzip", data_case(inter=csv_text(with_cell(interactions(), 3, "outcome", "abc")), fmt="csv.gz"),
         1, ("interactions.csv.gz line 5", "'outcome'")),
    Case("csv.gz extra field", "gzip", data_case(inter=edit_line(CSV, 6, CSV.splitlines()[5] + ",x"), fmt="csv.gz"),
         3, ("interactions.csv.gz", "line 6")),
    # parquet
    Case("parquet corrupt bytes", "parquet", lambda case: parquet_bytes(case, lambda raw: binary_bytes()),
         3, ("interactions.parquet", "parquet")),
    Case("parquet truncated", "parquet", lambda case: parquet_bytes(case, lambda raw: raw[: len(raw) // 2]),
         3, ("interactions.parquet", "parquet")),
    Case("parquet empty file", "parquet", lambda case: parquet_bytes(case, lambda raw: b""), 3, ("interactions.parquet", "0 bytes")),
    Case("parquet zero rows", "parquet", data_case(inter=interactions().iloc[:0], fmt="parquet"),
         1, ("interactions.parquet", "at least 1 row")),
    Case("parquet invalid UTF-8 in a binary column", "parquet", parquet_items_with_bad_utf8,
         1, ("items.parquet line 2", "'title'", "UTF-8")),
    Case("parquet timestamp year 9999", "parquet", parquet_timestamp_year_9999,
         1, ("interactions.parquet line 1", "'timestamp'")),
    Case("parquet position inf", "parquet", data_case(inter=interactions().assign(position=[1.0, np.inf, 1.0, None, 1.0, 2.0]),
                                                      fmt="parquet"),
         1, ("interactions.parquet line 2", "'position'")),
    Case("parquet outcomes all null", "parquet",
         lambda case: write_parquet_interactions(case, parquet_column("outcome", pa.nulls(6, pa.float64()))),
         1, ("interactions.parquet lines 1, 2, 3, 4, 5, 6", "'outcome' must not be missing")),
    Case("parquet uint64 ids beyond int64", "parquet",
         lambda case: write_parquet_interactions(case, parquet_column("item_id", pa.array([2**64 - 1] * 6, pa.uint64()))),
         1, ("interactions.parquet lines 1, 2", "'item_id'", "18446744073709551615")),
    Case("parquet duplicated column name", "parquet", parquet_with_duplicate_columns, 3, ("interactions.parquet", "'outcome'")),
    Case("parquet list in a number column", "parquet", parquet_list_outcome, 1, ("interactions.parquet line", "'outcome'")),
    Case("csv and parquet side by side", "parquet", both_csv_and_parquet, 3, ("interactions.csv", "interactions.parquet")),
    # meta.yaml: unreadable or hostile
    Case("meta.yaml syntax error", "meta", meta_case("outcome_kind: [binary\n"), 3, ("meta.yaml", "line 2")),
    Case("meta.yaml !!python/object", "meta", meta_case("outcome_kind: !!python/object/apply:os.system ['echo pwned']\n"),
         3, ("meta.yaml", "python/object")),
    Case("meta.yaml alias bomb", "meta", meta_case(ALIAS_BOMB), 3, ("meta.yaml", "100,000 values")),
    Case("meta.yaml nested 3,000 deep", "meta", meta_case("key_columns: " + "[" * 3_000 + "]" * 3_000 + "\n"),
         3, ("meta.yaml", "nested")),
    Case("meta.yaml unknown key", "meta", meta_case("colour: blue\n"), 3, ("meta.yaml", "'colour'")),
    Case("meta.yaml a list, not a mapping", "meta", meta_case("- binary\n- rating\n"), 3, ("meta.yaml", "list")),
    Case("meta.yaml UTF-16", "meta", meta_case("outcome_kind: binary\n".encode("utf-16")), 3, ("meta.yaml", "UTF-8")),
    Case("meta.yaml threshold NaN", "meta", meta_case("positive_threshold: .nan\n"), 3, ("meta.yaml", "positive_threshold", "finite")),
    Case("meta.yaml threshold inf", "meta", meta_case("positive_threshold: .inf\n"), 3, ("meta.yaml", "positive_threshold", "finite")),
    Case("meta.yaml threshold of 400 digits", "meta", meta_case("positive_threshold: 1" + "0" * 400 + "\n"),
         3, ("meta.yaml", "positive_threshold", "finite")),
    Case("meta.yaml threshold a boolean", "meta", meta_case("positive_threshold: true\n"), 3, ("meta.yaml", "positive_threshold")),
    Case("meta.yaml outcome_range NaN", "meta", meta_case("outcome_range: [0, .nan]\n"), 3, ("meta.yaml", "outcome_range", "finite")),
    Case("meta.yaml threshold outside range", "meta", meta_case("positive_threshold: 2\n"),
         3, ("meta.yaml", "positive_threshold", "outcome_range")),
    # meta.yaml contradicting the data
    Case("meta.yaml key column missing", "meta", meta_case("key_columns: [user_id, session_id]\n"),
         3, ("meta.yaml", "key_columns", "'session_id'", "interactions.csv")),
    Case("meta.yaml key columns empty", "meta", meta_case("key_columns: []\n"), 3, ("meta.yaml", "key_columns")),
    Case("meta.yaml key column twice", "meta", meta_case("key_columns: [user_id, item_id, user_id]\n"),
         3, ("meta.yaml", "key_columns", "'user_id'")),
    Case("meta.yaml context column missing", "meta", meta_case("context_columns: [affinity_0]\n"),
         3, ("meta.yaml", "context_columns", "'affinity_0'")),
    Case("meta.yaml randomized policy without policy column", "meta", meta_case("randomized_policy: random\n"),
         3, ("meta.yaml", "randomized_policy", "'policy'", "interactions.csv")),
    Case("meta.yaml randomized policy absent from the data", "meta",
         meta_case("randomized_policy: uniform\n", inter=interactions().assign(policy=["random", "random", "logged", "logged", "random", "logged"])),
         3, ("meta.yaml", "randomized_policy", "'uniform'", "'logged'")),
    Case("meta.yaml unexposed outcomes without unexposed rows", "meta",
         meta_case("has_unexposed_outcomes: true\n", inter=interactions().assign(exposed=True, propensity=0.5, position=1)),
         3, ("meta.yaml", "has_unexposed_outcomes", "'exposed'")),
    # data the stages cannot learn from (validation: exit 1, report written)
    Case("all outcomes zero", "data", data_case(inter=interactions().assign(outcome=0.0)),
         1, ("interactions", "'outcome'", "no positive")),
    Case("every row randomized", "data", meta_case("randomized_policy: random\n", inter=all_randomized),
         1, ("interactions", "'policy'", "train")),
    Case("four randomized rows", "data",
         meta_case("randomized_policy: random\n", inter=interactions().assign(policy=["random"] * 4 + ["logged"] * 2)),
         1, ("interactions", "'policy'", "at least 10", "found: 4 rows")),
    Case("a single user", "data", data_case(inter=interactions().assign(user_id=1)), 1, ("'user_id'", "at least 2 distinct")),
    # the public releases' own layouts
    Case("coat matrix row too long", "csv", coat_with_a_long_row, 3, ("train.ascii", "line 2", "4 fields")),
    Case("open bandit log without click", "csv", open_bandit_without_clicks, 3, ("all.csv", "'click'")),
    # links and the file system
    Case("link to a prose file", "link", linked_case(prose_file), 1, ("interactions.csv", "column 'user_id' must exist")),
    Case("link to a binary file", "link", linked_case(binary_file), 3, ("interactions.csv", "NUL")),
    Case("csv.gz link to a plain csv", "link", linked_case(csv_file, "interactions.csv.gz"), 3, ("interactions.csv.gz", "gzip")),
    Case("parquet link to a csv", "link", linked_case(csv_file, "interactions.parquet"), 3, ("interactions.parquet", "parquet")),
    Case("dangling link", "link", linked_case(lambda case: case / "gone.csv"), 3, ("interactions.csv", "gone.csv")),
    Case("link to /dev/zero", "link", linked_case(lambda case: "/dev/zero"), 3, ("interactions.csv", "/dev/zero", "regular file")),
    Case("link to a folder", "link", linked_case(a_folder), 3, ("interactions.csv", "regular file")),
    Case("link loop", "link", link_loop, 3, ("interactions.csv", "link")),
    Case("named pipe as interactions.csv", "link", named_pipe, 3, ("interactions.csv", "regular file")),
    Case("folder named interactions.csv", "link", folder_named_like_a_file, 3, ("interactions.csv", "regular file")),
    Case("unreadable file", "link", unreadable_file, 3, ("interactions.csv", "ermission"), needs_non_root=True),
    Case("meta.yaml a folder", "link", meta_yaml_not_a_file(lambda path: path.mkdir()), 3, ("meta.yaml", "regular file")),
    Case("meta.yaml link to /dev/zero", "link", meta_yaml_not_a_file(lambda path: path.symlink_to("/dev/zero")),
         3, ("meta.yaml", "/dev/zero")),
    Case("dataset path is a file", "link", dataset_is_a_file, 3, ("data", "not a folder")),
    Case("dataset folder missing", "link", missing_dataset, 3, ("data", "does not exist")),
    # the command line
    Case("--set YAML syntax error", "cli", config_case("--set", "world.n_users=[1"), 2, ("world.n_users", "YAML")),
    Case("--set !!python/object", "cli", config_case("--set", "world.n_users=!!python/object/apply:os.system [echo]"),
         2, ("world.n_users", "python/object")),
    Case("--set nested 3,000 deep", "cli", config_case("--set", "world.n_users=" + "[" * 3_000 + "]" * 3_000),
         2, ("world.n_users", "nested")),
    Case("--set alias bomb", "cli", config_case("--set", "world.n_users=" + ALIAS_BOMB.replace("\n", ", ").join("{}")),
         2, ("world.n_users",)),
    Case("--set without =", "cli", config_case("--set", "world.n_users"), 2, ("world.n_users", "key=value")),
    Case("--set unknown setting", "cli", config_case("--set", "world.colour=blue"), 2, ("world.colour",)),
    Case("--set wrong type", "cli", config_case("--set", "world.n_users=many"), 2, ("world.n_users", "many")),
    Case("--set into a value", "cli", config_case("--preset", "smoke", "--set", "world.n_users.x=1"), 2, ("world.n_users.x", "not a section")),
    Case("--output-dir inside a file", "cli",
         lambda case: [*data_case()(case)[:3], "--output-dir", "/dev/null/out"], 2, ("/dev/null/out", "--output-dir")),
    Case("output root inside a file", "cli",
         lambda case: [*data_case()(case)[:3], "--set", "runtime.output_root=/dev/null/root"], 2, ("/dev/null/root",)),
    Case("--set an unknown training strategy", "cli", config_case("--set", "gnn.strategy=ddp"), 2, ("gnn.strategy", "'ddp_fork'")),
    Case("--set two training processes without DDP", "cli", config_case("--set", "gnn.devices=2"),
         2, ("gnn.devices=2", "gnn.strategy=ddp_fork")),
    Case("--set more training processes than cores", "cli",
         config_case("--set", "gnn.strategy=ddp_fork", "--set", "gnn.devices=256", "--set", "gnn.accelerator=cpu"),
         2, ("gnn.devices=256", "cores")),
    Case("unknown preset", "cli", config_case("--preset", "gigantic"), 2, ("'gigantic'", "smoke")),
    Case("unknown dataset", "cli", config_case("--dataset", "imaginary"), 2, ("'imaginary'", "dir:PATH")),
    Case("empty dir: path", "cli", config_case("--dataset", "dir:"), 2, ("'dir:'",)),
)


def main(argv: list[str] | None = None) -> int:
    """Write every case under ``OUT_DIR/<case>/`` and a table of the commands to try on them."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m tests.bad_inputs OUT_DIR", file=sys.stderr)
        return 2
    out = Path(args[0]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    rows = ["case\tarea\texpected exit\tmust name\tcommand"]
    for case in CASES:
        folder = out / slug(case.name)
        if folder.exists():
            print(f"{folder} exists; choose an empty OUT_DIR", file=sys.stderr)
            return 2
        command = shlex.join(["recause", *case.build(folder)])
        rows.append("\t".join([case.name, case.area, str(case.exit_code), " | ".join(case.names), command]))
    (out / "cases.tsv").write_text("\n".join(rows) + "\n")
    print(f"{len(CASES)} cases in {out}; commands in {out / 'cases.tsv'}")
    return 0


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


if __name__ == "__main__":
    sys.exit(main())
