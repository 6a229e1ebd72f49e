"""The run report: one self-contained HTML page per run that answers the team's question first.

``report.html`` sits in the run folder beside ``summary.json``. It is built from the run's files only
(:class:`RunFiles`): the summary, ``provenance.json``, the contrast table, the validation report, the
topics and the figures — so :func:`write_report` rebuilds it for any finished run without retraining,
and :func:`report_from_mlflow` does the same from an MLflow run's artifacts. Figures are embedded as
data URIs and the styles inline: the page makes no request when it opens, offline or not.

Order: the answer (:func:`recause.tasks.report.answer`), the evidence, the model, the data,
provenance. A section whose data this run lacks says why in one sentence instead of disappearing.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from recause.flows.artifacts import CAPTIONS
from recause.flows.files import write_text_atomic
from recause.tasks.report import Finding, answer, candidates, finite_number, is_true

REPORT_NAME = "report.html"
PROVENANCE_NAME = "provenance.json"


# ---------------------------------------------------------------------------------------------- inputs
@dataclass
class RunFiles:
    """What a finished run left in its folder (each None / empty when absent)."""

    folder: Path
    summary: dict[str, Any]
    provenance: dict[str, Any] = field(default_factory=dict)
    interventions: pd.DataFrame | None = None
    validation: dict[str, Any] | None = None
    topics: pd.DataFrame | None = None
    baselines: pd.DataFrame | None = None
    recommendations: pd.DataFrame | None = None

    @classmethod
    def read(cls, folder: Path) -> RunFiles:
        """Read a run folder; a folder without ``summary.json`` is not a finished run (FileNotFoundError)."""
        folder = Path(folder)
        summary_path = folder / "summary.json"
        if not summary_path.is_file():
            raise FileNotFoundError(f"{folder} has no summary.json: not the folder of a finished Recause run")
        return cls(
            folder=folder,
            summary=json.loads(summary_path.read_text()),
            provenance=_json(folder / PROVENANCE_NAME) or {},
            interventions=_frame(folder / "contrast" / "interventions.csv"),
            validation=_json(folder / "validation" / "report.json"),
            topics=_frame(folder / "features" / "topics.csv"),
            baselines=_frame(folder / "evaluation" / "baselines.csv"),
            recommendations=_parquet(folder / "recommendations" / "recommendations.parquet"),
        )

    def figure(self, relative: str) -> Path | None:
        path = self.folder / relative
        return path if path.is_file() else None


def _json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _frame(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.is_file() else None


def _parquet(path: Path) -> pd.DataFrame | None:
    return pd.read_parquet(path) if path.is_file() else None


# ---------------------------------------------------------------------------------------------- entry points
def write_report(folder: Path) -> Path:
    """Build ``report.html`` in the run ``folder`` from its files; returns its path."""
    files = RunFiles.read(folder)
    path = Path(folder) / REPORT_NAME
    write_text_atomic(path, render(files))
    return path


def report_from_mlflow(run_id: str, tracking_uri: str, destination: Path) -> Path:
    """Download a parent MLflow run's artifacts and its stage runs' into ``destination`` (the run
    folder's layout: each stage logs under the folder it wrote to) and build the report there."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from recause.mlflow_config.tracking import sqlite_path

    store = sqlite_path(tracking_uri)
    if store is not None and not store.exists():  # opening it would create an empty store (and its Default experiment)
        raise LookupError(f"no MLflow store at {store}: give the run's folder, or --tracking-uri where the run lives")
    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        run = client.get_run(run_id)
    except MlflowException as error:
        raise LookupError(f"no MLflow run {run_id!r} in {tracking_uri}: {error.message}") from None
    if "mlflow.parentRunId" in run.data.tags:
        run = client.get_run(run.data.tags["mlflow.parentRunId"])
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    children = client.search_runs([run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{run.info.run_id}'")
    for source in (run, *children):
        for item in client.list_artifacts(source.info.run_id):
            if not item.path.endswith(("checkpoints", ".ckpt", "data_docs")):
                client.download_artifacts(source.info.run_id, item.path, str(destination))
    return write_report(destination)


# ---------------------------------------------------------------------------------------------- page
def render(files: RunFiles) -> str:
    """The whole page as one HTML string."""
    s, p = files.summary, files.provenance
    dataset, preset = s.get("run/dataset", p.get("dataset", "?")), s.get("run/preset", p.get("preset", "?"))
    title = f"Recause run — {dataset} ({preset})"
    findings = answer(files.interventions, s)
    body = [
        f"<header><h1>{_e(title)}</h1><p class='meta'>{_e(_subtitle(files))}</p></header>",
        _answer_section(findings, s),
        _evidence_section(files),
        _model_section(files),
        _data_section(files),
        _provenance_section(files),
    ]
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{STYLE}</style></head>"
            f"<body><main>{''.join(body)}</main></body></html>\n")


def _subtitle(files: RunFiles) -> str:
    p, s = files.provenance, files.summary
    bits = [f"seed {p['seed']}" if "seed" in p else None, p.get("finished_at"),
            f"MLflow run {s['mlflow/run_id']}" if s.get("mlflow/run_id") else None]
    return " · ".join(b for b in bits if b)


GROUPS: tuple[tuple[str, str], ...] = (
    ("clicks_not_caused", "Raise the outcome without causing engagement"),
    ("raises", "Raise the outcome"),
    ("lowers", "Lower the outcome"),
    ("no_change", "No detectable change"),
    ("cannot_tell", "What this run's data cannot tell"),
)


def _answer_section(findings: list[Finding], summary: Mapping[str, Any]) -> str:
    head = [f for f in findings if f.kind == "headline"]
    parts = ["<section id='answer'><h2>The answer</h2>"]
    if head:
        first, _, rest = head[0].text.partition(". ")
        parts.append(f"<p class='headline'>{_e(first + ('.' if rest else ''))}</p>"
                     + (f"<p class='headline-detail'>{_e(rest)}</p>" if rest else ""))
    if not summary.get("validation/passed", True):
        parts.append(f"<p class='warn'>The data failed validation, so the run stopped before modelling: "
                     f"{_e(summary.get('validation/report', ''))}</p>")
    for kind, heading in GROUPS:
        items = [f for f in findings if f.kind == kind]
        if items:
            parts.append(f"<h3>{_e(heading)}</h3><ul class='findings {kind}'>"
                         + "".join(f"<li>{_e(f.text)}</li>" for f in items) + "</ul>")
    parts.append("<p class='note'>Lifts are relative to the control (the policy that logged the evaluation rounds) with "
                 "95% paired-bootstrap intervals by the estimator of record; caused engagement is in percentage points "
                 "of the outcome per recommendation the user sees, estimated with the causal GNN's uplift τ̂ "
                 "(its interval holds the sampling error of the logged rounds, not τ̂'s own).</p></section>")
    return "".join(parts)


def _evidence_section(files: RunFiles) -> str:
    s, table = files.summary, files.interventions
    parts = ["<section id='evidence'><h2>Evidence</h2>"]
    if table is None:
        parts.append(f"<p>No contrast table: {_e(s.get('contrast/skipped', 'the contrast stage did not run'))}.</p></section>")
        return "".join(parts)
    parts.append(_figure(files, "contrast/interventions_forest.png"))
    record = str(s.get("contrast/estimator_of_record", "dr"))
    parts.append(f"<h3>Each intervention against the control (estimator of record: {_e(record.upper())})</h3>")
    parts.append(_record_table(table, record, str(s.get("contrast/outcome", "click rate"))))
    parts.append("<details><summary>Every estimator's value and interval</summary>" + _estimator_table(table) + "</details>")
    parts.append("<h3>Beyond accuracy (top 10 of each policy)</h3>" + _beyond_bars(table))
    parts.append("<h3>The two-sample critic</h3>" + _critic(table, s))
    if files.figure("contrast/simulated_vs_true.png"):
        parts.append(_figure(files, "contrast/simulated_vs_true.png"))
    if files.figure("simulator/fidelity.png"):
        verdict = ("passed" if s.get("simulator/fidelity_passed") in (True, "True") else
                   f"failed: {s.get('simulator/fidelity', '')}")
        parts.append(f"<h3>The user simulator's fidelity: {_e(verdict)}</h3>" + _figure(files, "simulator/fidelity.png"))
    else:
        why = s.get("simulate/skipped", "the simulate stage did not run (simulate.enabled is false)")
        parts.append(f"<p class='missing'>No user simulator in this run: {_e(str(why).rstrip('.'))}.</p>")
    parts.append(_recommendations(files))
    parts.append("</section>")
    return "".join(parts)


def _recommendations(files: RunFiles) -> str:
    """How the lists were made, what they are worth where the truth is known, and one user's list."""
    s, lists = files.summary, files.recommendations
    if lists is None or lists.empty:
        return "<h3>Recommendations</h3><p class='missing'>No recommendations in this run (recommend.enabled is false, or the run stopped before).</p>"
    head = (f"<h3>Recommendations: top {int(lists['rank'].max())} for {lists['user_id'].nunique():,} users by "
            f"{_e(s.get('recommend/strategy', '?'))}</h3>")
    lines = []
    if s.get("recommend/fallback"):
        lines.append(f"Not the strategy asked for: {_e(s['recommend/fallback'])}.")
    value, caused = finite_number(s.get("recommend/true_value")), finite_number(s.get("recommend/true_caused"))
    if value is not None and caused is not None:
        base = finite_number(s.get("truth/logging_policy/incremental_value"))
        versus = f"; the logging policy's cause {base * 100:.2f}" if base is not None else ""
        lines.append(f"In the synthetic world these lists get {value * 100:.2f}% engagement per slot, of which "
                     f"{caused * 100:.2f} points are caused by the recommendations{versus}.")
    lines.append(f"{100 * float(lists['exploration'].mean()):.0f}% of the slots are exploration; the lists cover "
                 f"{lists['item_id'].nunique():,} distinct items. All lists: "
                 "<a href='recommendations/recommendations.parquet'>recommendations/recommendations.parquet</a>.")
    user = lists["user_id"].iloc[0]
    rows = [[str(int(r["rank"])), _e(str(r["item_id"])), _e(str(r.get("title", ""))), _score(r["score"]),
             _interval(r.get("uplift"), None, None, 100.0, "", 1), _e(str(r["reason"]))]
            for _, r in lists[lists["user_id"] == user].iterrows()]
    table = _table(["rank", "item", "title", "score", "uplift (points)", "why"], rows)
    return head + "".join(f"<p>{line}</p>" for line in lines[:-1]) + f"<p>{lines[-1]}</p>" + f"<p>User {_e(str(user))}'s list:</p>" + table


def _score(value: Any) -> str:
    """A list row's score, or a dash for an exploration item outside the user's scored candidates."""
    number = finite_number(value)
    return f"{number:.3g}" if number is not None else "—"


def _interval(value: Any, low: Any, high: Any, scale: float = 100.0, unit: str = "%", digits: int = 1) -> str:
    v, lo, hi = (finite_number(x) for x in (value, low, high))
    if v is None:
        return "–"
    if lo is None or hi is None:
        return f"{v * scale:+.{digits}f}{unit}"
    return f"{v * scale:+.{digits}f}{unit} [{lo * scale:+.{digits}f}, {hi * scale:+.{digits}f}]"


def _record_table(table: pd.DataFrame, record: str, outcome: str) -> str:
    has_caused = "caused_lift" in table and table["caused_lift"].notna().any()
    has_truth = "true_lift" in table and table["true_lift"].notna().any()
    head = ["intervention", f"{outcome} ({record})", "lift over the control"]
    head += ["caused engagement vs control (points)"] if has_caused else []
    head += ["true lift", "true caused vs control (points)"] if has_truth else []
    head = [h.replace("(points)", "(points per recommendation seen)") for h in head]
    head += ["effective rounds"] if "ess" in table else []
    control = table[table["policy"] == "control"]
    truth = "true_caused_seen" if "true_caused_seen" in table else "true_caused"
    true_control = finite_number(control[truth].iloc[0]) if has_truth and truth in table and len(control) else None
    rows = []
    for _, row in table.iterrows():
        cells = [_e(str(row["policy"])) + (" <span class='tag'>reference</span>" if is_true(row.get("reference")) else "")
                 + (" <span class='tag'>simulated what-if</span>" if isinstance(row.get("kind"), str) and row.get("kind") else ""),
                 _interval(row.get(record), row.get(f"{record}_low"), row.get(f"{record}_high"), 1.0, "", 4),
                 "control" if row["policy"] == "control" else _interval(row.get("lift"), row.get("lift_low"), row.get("lift_high"))]
        if has_caused:
            cells.append("–" if row["policy"] == "control" else
                         _interval(row.get("caused_lift"), row.get("caused_lift_low"), row.get("caused_lift_high"), 100.0, "", 2))
        if has_truth:
            true_caused = finite_number(row.get(truth))
            cells += [_interval(row.get("true_lift"), None, None),
                      f"{(true_caused - true_control) * 100:+.2f}" if true_caused is not None and true_control is not None
                      and row["policy"] != "control" else "–"]
        if "ess" in table:
            ess = finite_number(row.get("ess"))
            cells.append(f"{ess:,.0f}" if ess is not None else "–")
        rows.append(cells)
    return _table(head, rows)


def _estimator_table(table: pd.DataFrame) -> str:
    estimators = [c for c in table.columns if f"{c}_low" in table.columns and f"{c}_high" in table.columns
                  and not c.startswith(("lift", "caused", "sim_lift", "direct_lift"))]
    head = ["intervention", *estimators]
    rows = [[_e(str(row["policy"]))] + [_interval(row.get(e), row.get(f"{e}_low"), row.get(f"{e}_high"), 1.0, "", 4)
                                        for e in estimators] for _, row in table.iterrows()]
    return _table(head, rows)


BEYOND = (("coverage_at_10", "catalogue coverage", "share of items shown to anyone"),
          ("gini_at_10", "exposure Gini", "0 = exposure spread evenly, 1 = all on one item"),
          ("novelty_at_10", "novelty", "mean −log₂ popularity of what is shown (bits)"),
          ("diversity_at_10", "intra-list diversity", "mean cosine distance between shown items' texts"))


def _beyond_bars(table: pd.DataFrame) -> str:
    present = [b for b in BEYOND if b[0] in table and table[b[0]].notna().any()]
    if not present:
        return "<p>This run computed no beyond-accuracy metrics.</p>"
    blocks = []
    for column, label, meaning in present:
        rows = table[table[column].notna()]
        top = float(rows[column].abs().max()) or 1.0
        bars = "".join(f"<div class='bar'><span class='name'>{_e(str(r['policy']))}</span>"
                       f"<span class='track'><span class='fill' style='width:{100 * abs(float(r[column])) / top:.1f}%'></span></span>"
                       f"<span class='value'>{float(r[column]):.3g}</span></div>" for _, r in rows.iterrows())
        blocks.append(f"<div class='bars'><h4>{_e(label)}</h4><p class='note'>{_e(meaning)}</p>{bars}</div>")
    return "<div class='bar-grid'>" + "".join(blocks) + "</div>"


def _critic(table: pd.DataFrame, summary: Mapping[str, Any]) -> str:
    if summary.get("contrast/critic_skipped"):
        return f"<p>Not run: {_e(summary['contrast/critic_skipped'])}.</p>"
    if "critic_auc" not in table:
        return "<p>Not run in this contrast.</p>"
    items = []
    for _, row in candidates(table).iterrows():
        auc = finite_number(row.get("critic_auc"))
        if auc is None:
            continue
        words = ("shows what the control shows (indistinguishable)" if auc < 0.55 else
                 "differs slightly from the control" if auc < 0.7 else "shows clearly different items from the control")
        items.append(f"<li>{_e(str(row['policy']))}: held-out AUC {auc:.2f} — {words}.</li>")
    return ("<p class='note'>A classifier tries to tell each intervention's lists (and the outcomes the reward model "
            "predicts for them) from the control's; 0.5 means it cannot, so the intervention changes nothing it can see.</p>"
            f"<ul>{''.join(items)}</ul>")


def _model_section(files: RunFiles) -> str:
    s = files.summary
    parts = ["<section id='model'><h2>The model</h2>"]
    facts = [("model of record", s.get("model/name")), ("selected by", s.get("model/selected_by")),
             ("why that model", s.get("model/selection_reason")),
             ("uplift model", s.get("uplift/model")), ("why that uplift model", s.get("uplift/selection_reason")),
             ("uplift identifiable", s.get("causal/identifiable")), ("PEHE (causal GNN)", s.get("causal/pehe")),
             ("PEHE (T-learner)", s.get("causal/pehe_t_learner")), ("uplift CP@10", s.get("causal/cp_at_10")),
             ("oracle CP@10", s.get("causal/cp_at_10_oracle")), ("propensity MAE", s.get("propensity/mae")),
             ("Recall@20", s.get("ranking/recall_at_20")), ("NDCG@20", s.get("ranking/ndcg_at_20"))]
    parts.append(_facts(facts))
    if s.get("causal/identification"):
        parts.append(f"<p>{_e(s['causal/identification'])}</p>")
    for figure, missing in (
        ("model/causal_effect_map.png", "No causal effect map: the uplift is not identified by this data."),
        ("model/training_curves.png", "No training curves: the causal GNN was not trained in this run."),
        ("model/propensity_calibration.png", "No propensity calibration: it needs the true exposure probabilities, "
                                             "which only the synthetic world has."),
        ("model/uplift_vs_truth.png", "No estimated-against-true uplift: the true uplift is known only in the synthetic world."),
    ):
        parts.append(_figure(files, figure) if files.figure(figure) else f"<p class='missing'>{_e(missing)}</p>")
    return "".join(parts) + "</section>"


def _data_section(files: RunFiles) -> str:
    s, v = files.summary, files.validation
    parts = ["<section id='data'><h2>The data</h2>"]
    parts.append(_facts([("users", s.get("data/n_users")), ("items", s.get("data/n_items")),
                         ("interactions", s.get("data/n_interactions")), ("positive outcomes", s.get("data/n_positives")),
                         ("outcomes without exposure", s.get("data/has_unexposed_outcomes")),
                         ("randomized test", s.get("data/has_randomized_test")), ("split", s.get("split/kind")),
                         ("train / validation / test rows", _split_sizes(s))]))
    if v is not None:
        status = "passed" if v.get("passed") else "failed"
        parts.append(f"<h3>Validation: {status} — {v.get('n_expectations', '?')} checks</h3>")
        rows = [[_e(t["table"]), _e(str(t.get("source", ""))), f"{t.get('n_rows', 0):,}", f"{t.get('n_quarantined', 0):,}",
                 f"{100 * float(t.get('failed_fraction', 0.0)):.2f}%"] for t in v.get("tables", [])]
        parts.append(_table(["table", "source", "rows", "quarantined rows", "failed share"], rows))
        failures = v.get("failures", [])
        if failures:
            parts.append("<ul>" + "".join(f"<li>{_e(_failure_text(f))}</li>" for f in failures[:50]) + "</ul>")
        if (files.folder / "validation" / "quarantine.parquet").is_file():
            parts.append("<p>Quarantined rows: <a href='validation/quarantine.parquet'>validation/quarantine.parquet</a> "
                         "(the full report: <a href='validation/report.txt'>validation/report.txt</a>).</p>")
    else:
        parts.append("<p class='missing'>No validation report in this run's folder.</p>")
    parts.append("<h3>Text features: topics and their keywords</h3>")
    if files.topics is not None and "terms" in files.topics:
        rows = [[str(r["topic"]), _e(str(r.get("label", ""))), f"{int(r['n_items']):,}" if "n_items" in r else "", _e(str(r["terms"]))]
                for _, r in files.topics.iterrows()]
        parts.append(_table(["topic", "label", "items", "keywords"], rows))
        if files.figure("features/item_embedding_map.png"):
            parts.append(_figure(files, "features/item_embedding_map.png"))
    else:
        parts.append(f"<p class='missing'>No text topics: {_e(s.get('features/skipped', 'the items have no text, or the text-feature stage did not run'))}.</p>")
    return "".join(parts) + "</section>"


def _split_sizes(s: Mapping[str, Any]) -> str | None:
    sizes = [finite_number(s.get(k)) for k in ("split/n_train", "split/n_val", "split/n_test")]
    return " / ".join(f"{x:,.0f}" for x in sizes) if all(x is not None for x in sizes) else None


def _failure_text(failure: Mapping[str, Any]) -> str:
    return str(failure.get("message") or failure.get("text") or json.dumps(failure, default=str))


def _provenance_section(files: RunFiles) -> str:
    p, s = files.provenance, files.summary
    facts = [("dataset", s.get("run/dataset")), ("preset", s.get("run/preset")), ("seed", p.get("seed")),
             ("git commit", p.get("git_commit")), ("data hash", p.get("data_hash")),
             ("MLflow run", s.get("mlflow/run_id")), ("MLflow experiment", p.get("mlflow_experiment")),
             ("MLflow tracking URI", s.get("mlflow/tracking_uri")), ("Prefect flow run", p.get("prefect_flow_run_id")),
             ("Prefect flow run name", p.get("prefect_flow_run_name")), ("reused stages", s.get("run/reused_stages") or "none")]
    parts = ["<section id='provenance'><h2>Provenance</h2>", _facts(facts)]
    url = p.get("prefect_flow_run_url")
    if isinstance(url, str) and url.startswith(("http://", "https://")):  # the temporary local API has no UI
        parts.append(f"<p>Prefect UI: <code>{_e(url)}</code></p>")
    versions = p.get("versions") or {}
    if versions:
        parts.append("<details><summary>Package versions</summary>"
                     + _table(["package", "version"], [[_e(k), _e(str(v))] for k, v in sorted(versions.items())]) + "</details>")
    if not p:
        parts.append("<p class='missing'>This run's folder has no provenance.json (a run made before it was written).</p>")
    return "".join(parts) + "</section>"


# ---------------------------------------------------------------------------------------------- pieces
def _figure(files: RunFiles, relative: str) -> str:
    path = files.figure(relative)
    if path is None:
        return ""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    caption = CAPTIONS.get(path.name, "")  # drawn under the figure itself; here it is the image's text alternative
    return (f"<figure><img src='data:image/png;base64,{data}' alt='{_e(caption or path.name)}'>"
            f"<figcaption class='file'>{_e(relative)}</figcaption></figure>")


def _facts(pairs: Iterable[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(_show(v))}</td></tr>" for k, v in pairs if v is not None and v != "")
    return f"<table class='facts'>{rows}</table>"


def _table(head: list[str], rows: list[list[str]]) -> str:
    """Cells are HTML already (escaped by the caller); headers are escaped here."""
    return ("<div class='scroll'><table><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr></thead><tbody>"
            + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows) + "</tbody></table></div>")


def _show(value: Any) -> str:
    number = finite_number(value)
    if isinstance(value, bool) or value in ("True", "False"):
        return "yes" if value in (True, "True") else "no"
    if number is not None and not isinstance(value, str):
        return f"{number:,.0f}" if float(number).is_integer() and abs(number) >= 1 else f"{number:.4g}"
    return str(value)


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


STYLE = """
body{margin:0;font:15px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d2330;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px 28px 64px;background:#fff}
header h1{margin:0 0 4px;font-size:26px}.meta{color:#5b6473;margin:0 0 18px}
h2{margin:34px 0 10px;padding-bottom:4px;border-bottom:2px solid #e3e6eb;font-size:21px}h3{font-size:16px;margin:22px 0 8px}
h4{margin:0;font-size:14px}
#answer{margin-top:8px;padding:18px 22px;border:2px solid #2f6f4f;border-radius:8px;background:#f2f8f4}
#answer h2{margin-top:0;border:0}
.headline{font-size:19px;font-weight:650;margin:4px 0 6px}.headline-detail{margin:0 0 14px}
.findings li{margin:4px 0}.findings.clicks_not_caused li{color:#8a4b00}.findings.cannot_tell li{color:#5b6473}
.warn{color:#9b1c1c;font-weight:600}.note{color:#5b6473;font-size:13px}.missing{color:#5b6473;font-style:italic}
table{border-collapse:collapse;font-size:13px;margin:6px 0}th,td{padding:4px 9px;border-bottom:1px solid #e3e6eb;text-align:left;
vertical-align:top;white-space:nowrap}thead th{background:#f0f2f5;white-space:normal}td{font-variant-numeric:tabular-nums}
.scroll{overflow-x:auto}.facts th{font-weight:500;color:#5b6473;padding-right:18px}
.tag{font-size:11px;background:#e8ecf3;border-radius:3px;padding:1px 5px;color:#3d4656}
details{margin:10px 0}summary{cursor:pointer;color:#245c9c}
figure{margin:14px 0}figure img{max-width:100%;height:auto;border:1px solid #e3e6eb}
figcaption{font-size:13px;color:#5b6473}.file{color:#8a93a3}
.bar-grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(240px,1fr));gap:14px}
.bar{display:grid;grid-template-columns:110px 1fr 52px;gap:6px;align-items:center;font-size:12px}
.track{background:#eef0f3;height:10px;border-radius:5px;overflow:hidden;display:block}
.fill{background:#4a7fc1;height:10px;display:block}.value{text-align:right;font-variant-numeric:tabular-nums}
.name{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
code{font-size:13px}
"""
