"""Every bad input in the corpus (``tests/bad_inputs.py``) gets its exit code and a clean message.

Data cases run ``recause validate`` in-process (no Prefect flow), so the corpus stays fast; a few
``recause run`` subprocesses, marked slow, show the flow path is as clean.
"""

from __future__ import annotations

import json
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bad_inputs import CASES, Case, csv_text, interactions, write_tables
from recause.flows.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXIT_WORDS = {0: "passed", 1: "validation failed", 2: "usage or configuration error", 3: "dataset unreadable"}


def test_the_corpus_is_broad() -> None:
    """At least 40 distinct kinds, across every area, and every exit code of the contract."""
    assert len({case.name for case in CASES}) == len(CASES) >= 40
    assert {case.area for case in CASES} == {"csv", "gzip", "parquet", "meta", "data", "link", "cli"}
    assert {case.exit_code for case in CASES} == {0, 1, 2, 3}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_gets_its_exit_code_and_a_message_that_names_it(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if case.needs_non_root and os.geteuid() == 0:
        pytest.skip("root reads files whatever their permissions")
    monkeypatch.delenv("RECAUSE_DEBUG", raising=False)
    argv = case.build(tmp_path)
    code = main(argv)
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert code == case.exit_code, f"expected exit {case.exit_code} ({EXIT_WORDS[case.exit_code]}), got {code}:\n{text}"
    assert "Traceback" not in text
    missing = [name for name in case.names if name not in text]
    assert not missing, f"the message does not name {missing}:\n{text}"
    if case.exit_code in (2, 3):  # one clean line of ours says what is wrong
        ours = [line for line in captured.err.splitlines() if line.startswith("recause: ")]
        assert len(ours) == 1 and all(name in ours[0] for name in case.names), captured.err
    if case.exit_code == 1:  # the report is written, and it is the one printed
        report = json.loads((tmp_path / "out" / "validation" / "report.json").read_text())
        assert report["passed"] is False and report["failures"]


def test_debug_shows_the_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = next(case for case in CASES if case.name == "csv.gz not gzip").build(tmp_path)
    assert main(["--debug", *argv]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().splitlines()[-1].startswith("recause: ")


def test_the_debug_variable_shows_the_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECAUSE_DEBUG", "1")
    assert main(["config", "--set", "world.n_users=[1"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_the_corpus_writes_itself_out(tmp_path: Path) -> None:
    from bad_inputs import main as write_corpus

    assert write_corpus([str(tmp_path)]) == 0
    rows = (tmp_path / "cases.tsv").read_text().splitlines()
    assert len(rows) == len(CASES) + 1
    assert (tmp_path / "csv-utf-16" / "data" / "interactions.csv").read_bytes().startswith(b"\xff\xfe")


def recause_run(tmp_path: Path, dataset: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "RECAUSE_DEBUG")}
    env |= {"RECAUSE_OUTPUT_ROOT": str(tmp_path / "outputs"), "PREFECT_HOME": str(tmp_path / "prefect")}
    return subprocess.run(
        [sys.executable, "-m", "recause.flows.cli", "run", "--preset", "smoke", "--dataset", f"dir:{dataset}",
         "--set", "tracking.enabled=false", "--output-dir", str(tmp_path / "run")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )


RUN_CASES = [
    ("missing outcome column", interactions().drop(columns="outcome"), 1, ("column 'outcome' must exist",)),
    ("empty interactions file", "", 1, ("at least 1 row",)),
    ("csv row with an extra field", csv_text(interactions()).replace("\n2,10,", "\n2,10,x,", 1), 3, ("interactions.csv", "line 4")),
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "table", "exit_code", "names"), RUN_CASES, ids=[c[0] for c in RUN_CASES])
def test_run_reports_bad_input_without_a_traceback(tmp_path: Path, name: str, table, exit_code: int, names: tuple[str, ...]) -> None:
    """The flow path: the load stage runs inside a Prefect task, whose own loggers print to the console."""
    dataset = write_tables(tmp_path / "case", inter=table)
    result = recause_run(tmp_path, dataset)
    text = result.stdout + result.stderr
    assert result.returncode == exit_code, text[-3000:]
    assert "Traceback" not in text
    assert all(word in text for word in names), text[-3000:]
    if exit_code == 1:  # validation failed: the summary and the report are written
        summary = json.loads((tmp_path / "run" / "summary.json").read_text())
        assert summary["validation/passed"] is False
        assert (tmp_path / "run" / "validation" / "report.json").is_file()
    else:
        ours = [line for line in result.stderr.splitlines() if line.startswith("recause: ")]
        assert len(ours) == 1 and all(word in ours[0] for word in names), result.stderr[-3000:]


# --- the pieces the contract rests on --------------------------------------------------------

def test_console_handlers_drop_tracebacks_and_keep_the_line() -> None:
    """Prefect's case: the run's logger has its own (API) handler, which must still get the traceback,
    and the record then reaches the root's console handler, which must not print it."""
    import io
    import logging

    from recause.flows.logs import NO_TRACEBACK, quiet_tracebacks

    console, api = io.StringIO(), []
    console_handler = logging.StreamHandler(console)

    class Api(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            api.append(record.exc_info is not None)

    logger = logging.getLogger("recause.test.task_runs")
    root = logging.getLogger()
    logger.addHandler(Api())
    root.addHandler(console_handler)
    handlers = quiet_tracebacks()
    try:
        assert console_handler in handlers
        try:
            raise ValueError("bad line 4")
        except ValueError:
            logger.error("Task run failed with exception: %s", "ValueError('bad line 4')", exc_info=True)
    finally:
        root.removeHandler(console_handler)
        for handler in handlers:  # pytest's own capture handlers among them
            handler.removeFilter(NO_TRACEBACK)
        logger.handlers.clear()
    assert console.getvalue() == "Task run failed with exception: ValueError('bad line 4')\n"
    assert api == [True]


@pytest.mark.parametrize(("text", "message"), [
    ("[1", "expected ',' or ']', but got '<stream end>' at line 1, column 3"),
    ("a: !!python/object/apply:os.system [ls]", "could not determine a constructor for the tag"),
    ("[" * 5000 + "]" * 5000, "nested too deeply"),
    ("{a: &a [x, x, x, x, x, x, x, x, x, x], b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a], "
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b], d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c], "
     "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]}", "more than 100,000 values"),
])
def test_load_yaml_refuses_in_one_line(text: str, message: str) -> None:
    from recause.tasks.safe_yaml import YamlInputError, load_yaml

    with pytest.raises(YamlInputError, match=re.escape(message)) as raised:
        load_yaml(text)
    assert "\n" not in str(raised.value)


def test_load_yaml_counts_aliases_at_each_use() -> None:
    """10 × 10 × 10 shared lists: 1,000 leaves plus 111 lists, though only 3 lists exist."""
    from recause.tasks.safe_yaml import expanded_size, load_yaml

    tree = load_yaml("{a: &a [x, x, x, x, x, x, x, x, x, x], b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a], "
                     "c: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]}")
    # the mapping (1) + 3 keys + list a (1 + 10) + list b (1 + 10 × 11) + list c (1 + 10 × 111)
    assert expanded_size(tree, 10**6) == 1 + 3 + 11 + 111 + 1111


@pytest.mark.slow
def test_the_smallest_valid_dataset_runs_to_the_end(tmp_path: Path) -> None:
    """Six rows, three users: every stage runs or says why it cannot (the critic needs ten users' lists)."""
    result = recause_run(tmp_path, write_tables(tmp_path / "case"))
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["validation/passed"] is True
    assert summary["contrast/critic_skipped"] == ("the two-sample critic needs the lists of at least 10 users to train "
                                                  "and test on; the logged rounds hold 3")
