"""``recause compare``: the key metrics of two or more runs side by side, the params that differ,
a chart of the numbers, and the address of MLflow's own compare view.

The table, the parameter diff, the text, the chart and the address are functions of
:class:`RunRecord` (plain values, tested without MLflow); :func:`read_runs` is the one place that
asks MLflow which runs are meant and what they hold. A run is named by its MLflow run id or by its
run folder (whose ``summary.json`` holds ``mlflow/run_id`` and ``mlflow/tracking_uri``); with none
named, the latest two finished parent runs of the experiment are compared, the older first.

The key metrics are those each run recorded as its headline (the tag ``recause.key_metrics``, the
pipeline's ``KEY_METRICS`` when it ran, with the numbers as ``KEY/<name>`` metrics and the strings
as ``summary.<name>`` tags), so this module needs neither the pipeline nor its imports.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from recause.mlflow_config.tracking import (
    KEY_METRICS_TAG,
    KEY_PREFIX,
    PARENT_TAG,
    SUMMARY_TAG_PREFIX,
    UI_MODEL_TRAINING,
    sqlite_path,
)

MISSING = "—"
LOCAL_UI = "http://127.0.0.1:5000"
"""Where ``mlflow ui`` serves a local store by default."""

Value = float | str | None
"""A key metric of one run: a number, a string (``model/name``), or None where the run lacks it."""


class CompareError(ValueError):
    """Runs that cannot be compared (unknown, too few, in different stores, not tracked): the CLI
    reports the message as a usage error (exit 2)."""


@dataclass(frozen=True)
class RunRecord:
    """What a comparison needs of one parent run, as plain values."""

    run_id: str
    name: str
    experiment_id: str
    experiment: str
    start_time: int  # milliseconds since the epoch
    status: str
    metrics: Mapping[str, float]
    params: Mapping[str, str]
    tags: Mapping[str, str]

    def key_names(self) -> list[str]:
        """This run's headline metric names, in the order the pipeline logged them."""
        return [name for name in self.tags.get(KEY_METRICS_TAG, "").split(",") if name]

    def value(self, name: str) -> Value:
        """``KEY/<name>``, else the plain metric (a run logged before ``KEY/`` existed), else the
        summary's string (``summary.<name>`` tag), else None."""
        for found in (self.metrics.get(KEY_PREFIX + name), self.metrics.get(name), self.tags.get(SUMMARY_TAG_PREFIX + name)):
            if found is not None:
                return found
        return None


@dataclass(frozen=True)
class CompareView:
    """MLflow's compare page for the runs; ``note`` says what serves it when the store is not a server."""

    url: str
    note: str | None


def key_metric_names(runs: Sequence[RunRecord]) -> list[str]:
    """The runs' headline names, each once, in the order they first appear."""
    names: list[str] = []
    for run in runs:
        names += [name for name in run.key_names() if name not in names]
    if not names:
        raise CompareError(f"none of the runs {', '.join(r.run_id for r in runs)} records its key metrics "
                           f"(tag {KEY_METRICS_TAG}): they were logged before `recause compare` existed; run them again")
    return names


def key_table(runs: Sequence[RunRecord]) -> list[tuple[str, list[Value]]]:
    """One row per key metric: its name and each run's value (None where a run lacks it)."""
    return [(name, [run.value(name) for run in runs]) for name in key_metric_names(runs)]


def differing_params(runs: Sequence[RunRecord]) -> dict[str, list[str | None]]:
    """The params whose values are not the same in every run (absent counts as a value), by name."""
    names = sorted(set().union(*(run.params for run in runs)))
    return {name: [run.params.get(name) for run in runs] for name in names if len({run.params.get(name) for run in runs}) > 1}


def format_value(value: Value) -> str:
    """``0.1234`` (4 decimals), ``3`` for a whole number (counts, flags logged as 0/1), the text of a string, ``—`` if absent."""
    if value is None:
        return MISSING
    if isinstance(value, str):
        return value
    if math.isfinite(value) and float(value).is_integer() and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"


def difference(values: Sequence[Value]) -> str:
    """``second − first`` with its sign, for two numbers; empty otherwise."""
    if len(values) != 2 or not all(isinstance(v, (int, float)) for v in values):
        return ""
    return f"{values[1] - values[0]:+.4f}"


def clip(text: str, width: int = 48) -> str:
    """``text`` shortened in the middle to ``width`` characters (paths differ at their ends)."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return f"{text[:head]}…{text[len(text) - (width - 1 - head):]}"


def columns(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows of cells as lines of left-aligned columns two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def report(runs: Sequence[RunRecord], table: list[tuple[str, list[Value]]], params: dict[str, list[str | None]],
           store: str, chart: Path | None, view: CompareView) -> str:
    """The terminal text: which runs, the key metrics (and their difference for two runs), the params
    that differ, where the chart is and MLflow's compare view."""
    two = len(runs) == 2
    names = [run.name for run in runs]
    experiments = ", ".join(sorted({run.experiment for run in runs}))
    lines = [f"{len(runs)} runs in {experiments} ({store}):"]
    lines += ["  " + line for line in columns([[run.name, run.run_id, run.status.lower(), _started(run)] for run in runs])]
    rows = [["key metric", *names, *(["2nd - 1st"] if two else [])]]
    rows += [[name, *map(format_value, values), *([difference(values)] if two else [])] for name, values in table]
    lines += ["", *columns(rows), ""]
    total = len(set().union(*(run.params for run in runs)))
    if params:
        lines.append(f"params that differ ({len(params)} of {total}):")
        rows = [["param", *names]] + [[name, *(MISSING if v is None else clip(v) for v in values)] for name, values in params.items()]
        lines += ["  " + line for line in columns(rows)]
    else:
        lines.append(f"params: all {total} the same")
    lines += ["", f"chart: {chart}" if chart else "chart: none (no key metric is a number)", f"MLflow compare view: {view.url}"]
    if view.note:
        lines.append(f"  ({view.note})")
    return "\n".join(lines)


def _started(run: RunRecord) -> str:
    return datetime.fromtimestamp(run.start_time / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def compare_view(tracking_uri: str, run_ids: Sequence[str], experiment_ids: Sequence[str]) -> CompareView:
    """MLflow 3's compare page, ``#/compare-runs?runs=[...]&experiments=[...]`` (JSON lists, as its UI
    writes them) in the model-training view, on the tracking server or where ``mlflow ui`` would serve a local store."""

    def ids(values: Sequence[str]) -> str:
        return quote(json.dumps(list(values), separators=(",", ":")), safe="[],")

    route = f"#/compare-runs?runs={ids(run_ids)}&experiments={ids(sorted(set(experiment_ids)))}&{UI_MODEL_TRAINING}"
    if tracking_uri.startswith(("http://", "https://")):
        return CompareView(f"{tracking_uri.rstrip('/')}/{route}", None)
    return CompareView(f"{LOCAL_UI}/{route}",
                       f"a local store: start its UI with  mlflow ui --backend-store-uri {tracking_uri} --host 127.0.0.1 --port 5000")


def default_chart_path(output_root: Path, runs: Sequence[RunRecord]) -> Path:
    """``<output_root>/comparisons/<id8>-vs-<id8>.png`` (four ids at most, then how many more)."""
    ids = [run.run_id[:8] for run in runs]
    stem = "-vs-".join(ids[:4]) + (f"-and-{len(ids) - 4}-more" if len(ids) > 4 else "")
    return Path(output_root) / "comparisons" / f"{stem}.png"


def draw_chart(runs: Sequence[RunRecord], table: list[tuple[str, list[Value]]], path: Path) -> Path | None:
    """A PNG with one small bar chart per numeric key metric (a bar per run, its value written on it,
    the runs named in the legend); None, and nothing written, when no key metric is a number."""
    numeric = [(name, values) for name, values in table if any(isinstance(v, (int, float)) for v in values)]
    if not numeric:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from recause.flows.files import atomic_path

    ncols = min(4, len(numeric))
    nrows = math.ceil(len(numeric) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.4 * nrows + 0.8), squeeze=False)
    colors = [plt.get_cmap("tab10")(i % 10) for i in range(len(runs))]
    for ax, (name, values) in zip(axes.flat, numeric):
        heights = [v if isinstance(v, (int, float)) else 0.0 for v in values]  # an absent value: no bar, a dash
        bars = ax.bar(range(len(runs)), heights, color=colors)
        ax.bar_label(bars, labels=[format_value(v) for v in values], fontsize=8, padding=2)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.axhline(0.0, color="0.5", linewidth=0.6)
        ax.margins(y=0.25)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(numeric):]:
        ax.axis("off")
    legend = [Patch(color=color, label=run.name) for color, run in zip(colors, runs)]
    fig.legend(handles=legend, loc="upper center", ncol=min(len(runs), 3), frameon=False, fontsize=9)
    fig.tight_layout(rect=(0.0, 0.0, 1.0, 1.0 - 0.5 / fig.get_figheight() * math.ceil(len(runs) / 3)))
    try:
        with atomic_path(path) as temp:
            fig.savefig(temp, dpi=120)
    except OSError as error:
        reason = f"{error.strerror}: {error.filename}" if error.strerror and error.filename else str(error)
        raise CompareError(f"cannot write the chart to {path} ({reason}); choose another with --png PATH") from error
    finally:
        plt.close(fig)
    return Path(path)


# ------------------------------------------------------------------------------------- MLflow: which runs, and what they hold
def run_reference(spec: str) -> tuple[str, str | None]:
    """``(run id, tracking URI or None)`` for what a user typed: a run folder (or its
    ``summary.json``) gives both, anything else is taken for a run id."""
    path = Path(spec)
    if not (path.exists() or "/" in spec or spec.endswith(".json")):
        return spec, None
    file = path if path.is_file() else path / "summary.json"
    try:
        summary = json.loads(file.read_text())
    except FileNotFoundError:
        raise CompareError(f"{spec}: expected an MLflow run id or a run folder holding summary.json; {file} does not exist") from None
    except (OSError, ValueError) as error:
        raise CompareError(f"{file}: not readable as a run's summary ({error})") from error
    run_id = summary.get("mlflow/run_id") if isinstance(summary, dict) else None
    if not run_id:
        raise CompareError(f"{file} names no MLflow run (mlflow/run_id is empty): the run was not tracked (tracking.enabled=false)")
    return str(run_id), summary.get("mlflow/tracking_uri") or None


def read_runs(specs: Sequence[str], configured_uri: str, experiment: str | None, default_experiment: str) -> tuple[str, list[RunRecord]]:
    """The store and the runs to compare: those ``specs`` name (run ids or run folders), in that
    order, or the latest two finished parent runs of ``experiment`` (default ``default_experiment``),
    the older first. The store is the one the run folders name, else ``configured_uri``."""
    if len(specs) == 1:
        raise CompareError(f"compare needs two runs or more, got one ({specs[0]}); name another, or none for the latest two")
    references = [run_reference(spec) for spec in specs]
    stores = {store for _, store in references if store}
    if len(stores) > 1:
        raise CompareError(f"the runs are in different MLflow stores ({', '.join(sorted(stores))}); compare runs of one store")
    store = stores.pop() if stores else configured_uri
    client = _client(store)
    from mlflow.exceptions import MlflowException

    try:
        if references:
            runs = [_named_run(client, store, run_id) for run_id, _ in references]
        else:
            runs = _latest_parents(client, store, experiment or default_experiment, count=2)
    except MlflowException as error:  # a server that does not answer, a store that cannot be read
        raise CompareError(f"cannot read the MLflow store at {store}: {_brief(error)}") from error
    if references and experiment is not None:
        outside = [run.run_id for run in runs if run.experiment != experiment]
        if outside:
            raise CompareError(f"run(s) {', '.join(outside)} are not in experiment {experiment!r}; leave out --experiment to compare across experiments")
    unique = list({run.run_id: run for run in runs}.values())
    if len(unique) < 2:
        raise CompareError(f"compare needs two different runs; {', '.join(specs)} name(s) one: {unique[0].run_id}")
    return store, unique


def _client(uri: str):
    """A client on an existing store (a missing local store is an error here, never created)."""
    path = sqlite_path(uri)
    if path is not None and not path.is_file():
        raise CompareError(f"no MLflow store at {path}: runs are tracked under runtime.output_root (RECAUSE_OUTPUT_ROOT) "
                           "unless tracking.tracking_uri or MLFLOW_TRACKING_URI names another; run `recause run` first")
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _named_run(client, store: str, run_id: str) -> RunRecord:
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException as error:
        if error.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        raise CompareError(f"no MLflow run {run_id!r} in {store} ({_brief(error)}); RUN is a run id or a run folder holding summary.json") from error
    parent = run.data.tags.get(PARENT_TAG)
    if parent:
        stage = run.data.tags.get("recause.stage", run.info.run_name)
        raise CompareError(f"run {run_id} is the {stage!r} stage of run {parent}: compare parent runs (recause compare {parent} ...)")
    return _record(run, client.get_experiment(run.info.experiment_id).name)


def _brief(error: Exception) -> str:
    return " ".join(str(getattr(error, "message", error)).split())[:500]


def _latest_parents(client, store: str, experiment: str, count: int) -> list[RunRecord]:
    found = client.get_experiment_by_name(experiment)
    if found is None or found.lifecycle_stage != "active":
        there = ", ".join(e.name for e in client.search_experiments()) or "none"
        raise CompareError(f"no experiment {experiment!r} in {store} (experiments there: {there}); choose one with --experiment or --dataset")
    parents, token = [], None
    while len(parents) < count:
        page = client.search_runs([found.experiment_id], filter_string="attributes.status = 'FINISHED'",
                                  order_by=["attributes.start_time DESC"], max_results=200, page_token=token)
        parents += [run for run in page if PARENT_TAG not in run.data.tags]
        token = page.token
        if not token:
            break
    if len(parents) < count:
        raise CompareError(f"compare needs two finished runs; experiment {experiment!r} in {store} has {len(parents)}: "
                           "run the pipeline again, or name the runs (recause compare RUN RUN)")
    return [_record(run, experiment) for run in reversed(parents[:count])]


def _record(run, experiment: str) -> RunRecord:
    info, data = run.info, run.data
    return RunRecord(info.run_id, info.run_name or info.run_id[:8], info.experiment_id, experiment, info.start_time or 0,
                     info.status, dict(data.metrics), dict(data.params), dict(data.tags))
