"""Bad input gets a clear error naming file, column and rows, and nothing is lost.

Each case corrupts one thing in a small ``dir:`` dataset written as CSV files, runs the real
loader and validation, and checks the report paragraph and the quarantine file.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from recause.tasks.data.directory import load_directory
from recause.flows.artifacts import write_validation
from recause.validations.config import ValidationConfig
from recause.validations.run import validate_dataset

INTERACTIONS = (
    "user_id,item_id,timestamp,exposed,outcome,propensity\n"
    "1,10,2026-01-01T10:00:00Z,true,1,0.5\n"  # line 2
    "1,11,2026-01-01T10:01:00Z,true,0,0.25\n"  # line 3
    "2,10,2026-01-02T09:00:00Z,true,0,0.5\n"  # line 4
    "2,12,2026-01-02T09:05:00Z,false,1,\n"  # line 5 (organic find: no propensity)
    "3,11,2026-01-03T12:00:00Z,true,1,0.125\n"  # line 6
    "3,12,2026-01-03T12:30:00Z,true,0,0.75\n"  # line 7
)
ITEMS = "item_id,title\n10,red running shoes\n11,tax law textbook\n12,crimson jogging sneakers\n13,unused item\n"
USERS = "user_id,profile_text\n1,runner\n2,lawyer\n3,jogger\n"


def write_dataset(folder: Path, interactions: str = INTERACTIONS, items: str | bytes = ITEMS, users: str = USERS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "interactions.csv").write_text(interactions)
    (folder / "items.csv").write_bytes(items if isinstance(items, bytes) else items.encode())
    (folder / "users.csv").write_text(users)
    return folder


def replace_line(text: str, line: int, new: str) -> str:
    lines = text.splitlines(keepends=True)
    lines[line - 1] = new + "\n"
    return "".join(lines)


def test_clean_data_passes_with_typed_columns(tmp_path: Path) -> None:
    outcome = validate_dataset(load_directory(write_dataset(tmp_path / "ok")), ValidationConfig())
    assert outcome.report.passed, outcome.console
    assert outcome.quarantine.empty
    inter = outcome.dataset.interactions
    assert str(inter["exposed"].dtype) == "boolean" and str(inter["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert inter["outcome"].dtype == "float64" and len(inter) == 6


# (case, interactions, items, expected failing check, column, {(table, line)} quarantined)
ROW_CASES = [
    ("wrong type", replace_line(INTERACTIONS, 4, "2,10,2026-01-02T09:00:00Z,true,abc,0.5"), ITEMS,
     "parse_as_float", "outcome", {("interactions", 4)}),
    ("NaN key", replace_line(INTERACTIONS, 3, ",11,2026-01-01T10:01:00Z,true,0,0.25"), ITEMS,
     "expect_column_values_to_not_be_null", "user_id", {("interactions", 3)}),
    ("duplicate interaction", replace_line(INTERACTIONS, 3, "1,10,2026-01-01T10:00:00Z,true,0,0.5"), ITEMS,
     "expect_compound_columns_to_be_unique", "user_id,item_id,timestamp", {("interactions", 2), ("interactions", 3)}),
    ("duplicate item key", INTERACTIONS, ITEMS + "13,another unused item\n",
     "expect_column_values_to_be_unique", "item_id", {("items", 5), ("items", 6)}),
    ("propensity 0", replace_line(INTERACTIONS, 6, "3,11,2026-01-03T12:00:00Z,true,1,0"), ITEMS,
     "expect_column_values_to_be_between", "propensity", {("interactions", 6)}),
    ("propensity above 1", replace_line(INTERACTIONS, 7, "3,12,2026-01-03T12:30:00Z,true,0,1.5"), ITEMS,
     "expect_column_values_to_be_between", "propensity", {("interactions", 7)}),
    ("outcome out of range", replace_line(INTERACTIONS, 2, "1,10,2026-01-01T10:00:00Z,true,2,0.5"), ITEMS,
     "expect_column_values_to_be_in_set", "outcome", {("interactions", 2)}),
    ("unknown item", replace_line(INTERACTIONS, 5, "2,99,2026-01-02T09:05:00Z,false,1,"), ITEMS,
     "expect_column_values_to_be_in_set", "item_id", {("interactions", 5)}),
    ("unparseable timestamp", replace_line(INTERACTIONS, 6, "3,11,yesterday,true,1,0.125"), ITEMS,
     "parse_as_timestamp", "timestamp", {("interactions", 6)}),
    ("non-UTF-8 text", INTERACTIONS, ITEMS.replace("tax law", "tax l\xe4w").encode("latin-1"),
     "expect_column_values_to_not_match_regex", "title", {("items", 3), ("interactions", 3), ("interactions", 6)}),
]


@pytest.mark.parametrize(("case", "interactions", "items", "check", "column", "expected"), ROW_CASES, ids=[c[0] for c in ROW_CASES])
def test_bad_rows_are_named_and_quarantined(
    tmp_path: Path, case: str, interactions: str, items: str | bytes, check: str, column: str, expected: set
) -> None:
    folder = write_dataset(tmp_path / "data", interactions, items)
    outcome = validate_dataset(load_directory(folder), ValidationConfig())
    assert not outcome.report.passed
    failure = next(f for f in outcome.report.failures if f.check == check and f.column == column)
    table = failure.table
    lines = sorted(line for t, line in expected if t == table)
    paragraph = next(p for p in outcome.console.splitlines() if failure.detail in p)
    assert f"{table}.csv" in paragraph and f"column {column!r}" in paragraph
    assert f"line{'s' if len(lines) > 1 else ''} {', '.join(map(str, lines))}" in paragraph
    quarantined = set(zip(outcome.quarantine["table"], outcome.quarantine["source_row"]))
    assert quarantined == expected
    # nothing is lost: every quarantined row is kept whole, and the accepted rows are the rest
    assert outcome.quarantine["record"].str.startswith("{").all()
    n_bad = {t: len({line for tt, line in expected if tt == t}) for t in ("interactions", "items", "users")}
    loaded = load_directory(folder)
    for name in ("interactions", "items", "users"):
        assert len(outcome.dataset.table(name)) + n_bad[name] == len(loaded.table(name))


def test_cascade_names_the_quarantined_item(tmp_path: Path) -> None:
    """An interaction that points at a quarantined item is quarantined too, and says why."""
    folder = write_dataset(tmp_path / "data", items=ITEMS.replace("tax law", "tax l\xe4w").encode("latin-1"))
    outcome = validate_dataset(load_directory(folder), ValidationConfig())
    cascade = outcome.quarantine[outcome.quarantine["table"] == "interactions"]
    assert set(cascade["value"]) == {"11"} and cascade["detail"].str.contains("quarantined").all()


def test_missing_column_stops_the_run_naming_file_and_column(tmp_path: Path) -> None:
    text = "\n".join(",".join(line.split(",")[:4] + line.split(",")[5:]) for line in INTERACTIONS.splitlines()) + "\n"
    outcome = validate_dataset(load_directory(write_dataset(tmp_path / "data", text)), ValidationConfig())
    assert not outcome.report.passed
    [failure] = outcome.report.table_level_failures
    assert failure.check == "expect_column_to_exist" and failure.column == "outcome"
    assert "interactions.csv" in outcome.console and "column 'outcome' must exist" in outcome.console


def test_empty_file_stops_the_run_with_a_message(tmp_path: Path) -> None:
    outcome = validate_dataset(load_directory(write_dataset(tmp_path / "data", "")), ValidationConfig())
    assert not outcome.report.passed
    checks = {f.check for f in outcome.report.table_level_failures}
    assert "expect_table_row_count_to_be_between" in checks
    assert "at least 1 row" in outcome.console and "interactions.csv" in outcome.console


def test_threshold_lets_a_run_continue_without_the_bad_rows(tmp_path: Path) -> None:
    folder = write_dataset(tmp_path / "data", replace_line(INTERACTIONS, 7, "3,12,2026-01-03T12:30:00Z,true,0,1.5"))
    strict = validate_dataset(load_directory(folder), ValidationConfig())
    lenient = validate_dataset(load_directory(folder), ValidationConfig(max_failed_fraction=0.2))
    assert not strict.report.passed and lenient.report.passed
    assert len(lenient.dataset.interactions) == 5 and len(lenient.quarantine) == 1
    assert "above the allowed" in strict.console


def test_reports_and_quarantine_are_written(tmp_path: Path) -> None:
    folder = write_dataset(tmp_path / "data", replace_line(INTERACTIONS, 2, "1,10,2026-01-01T10:00:00Z,true,2,0.5"))
    outcome = validate_dataset(load_directory(folder), ValidationConfig())
    files = write_validation(outcome, tmp_path / "out", data_docs=True)
    quarantine = pd.read_parquet(files.quarantine)
    assert list(quarantine["source_row"]) == [2] and list(quarantine["column"]) == ["outcome"]
    assert '"passed": false' in files.report_json.read_text()
    assert files.data_docs is not None and files.data_docs.exists()
    assert "FAILED" in files.report_text.read_text()
