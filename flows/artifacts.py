"""Artifact writers: every file a run leaves in its folder — reports, tables and plots.

The stage tasks (:mod:`recause.flows.stages`) call these after the pure stage functions; the flow
logs the returned paths to the stage's MLflow run under the same relative folders. Matplotlib and
scikit-learn are imported inside the writers that draw.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recause.flows.files import atomic_path, write_text_atomic
from recause.tasks.contrast.result import ContrastResult
from recause.tasks.data.split import Split
from recause.tasks.evaluate import Evaluation
from recause.tasks.features.build import TextFeatures
from recause.tasks.simulate.stage import SimulateResult
from recause.validations.report import dumps
from recause.validations.run import ValidationOutcome


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _csv(frame: pd.DataFrame, path: Path, **options) -> Path:
    with atomic_path(path) as temp:
        frame.to_csv(temp, **options)
    return path


def _figure(fig, path: Path, dpi: int) -> Path:
    """Save ``fig`` atomically and close it."""
    with atomic_path(path) as temp:
        fig.savefig(temp, dpi=dpi)
    _pyplot().close(fig)
    return path


@dataclass(frozen=True)
class ValidationFiles:
    """Where the validation stage wrote its console report, JSON report, quarantine and Data Docs."""

    folder: Path
    report_text: Path
    report_json: Path
    quarantine: Path
    data_docs: Path | None

    def paths(self) -> tuple[Path, ...]:
        """Every written path (the Data Docs as one folder)."""
        return tuple(p for p in (self.report_text, self.report_json, self.quarantine, self.data_docs) if p is not None)


def write_validation(outcome: ValidationOutcome, folder: Path, data_docs: bool) -> ValidationFiles:
    """The console report, the JSON report, the quarantine parquet and (optionally) Data Docs."""
    folder.mkdir(parents=True, exist_ok=True)
    text, doc, quarantine = folder / "report.txt", folder / "report.json", folder / "quarantine.parquet"
    write_text_atomic(text, outcome.console + "\n")
    write_text_atomic(doc, dumps(outcome.document))
    with atomic_path(quarantine) as temp:
        outcome.quarantine.to_parquet(temp, index=False)
    docs = None
    if data_docs:
        with atomic_path(folder / "data_docs") as temp:
            docs = folder / "data_docs" / outcome.session.build_data_docs(temp).name
    return ValidationFiles(folder, text, doc, quarantine, docs)


def write_features(features: TextFeatures, split: Split, folder: Path, samples: int = 50) -> list[Path]:
    """Topic table, keyword samples and a 2-D map of item embeddings coloured by topic."""
    from sklearn.decomposition import PCA

    plt = _pyplot()

    folder.mkdir(parents=True, exist_ok=True)
    topics = folder / "topics.csv"
    _csv(features.topics, topics, index=False)
    keywords = folder / "keywords.csv"
    rows = [{"kind": "item", "id": split.items.ids[i], "topic": int(features.item_topics[i]), "keywords": ", ".join(features.item_keywords[i])} for i in range(min(samples, split.n_items))]
    rows += [{"kind": "user", "id": split.users.ids[u], "topic": None, "keywords": ", ".join(features.user_keywords[u])} for u in range(min(samples, split.n_users))]
    _csv(pd.DataFrame(rows), keywords, index=False)
    has = features.item_has_text
    points = PCA(n_components=2, random_state=0).fit_transform(features.item_vectors[has])
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.scatter(points[:, 0], points[:, 1], c=features.item_topics[has], cmap="tab20", s=6, alpha=0.8)
    for row in features.topics.itertuples():
        centre = points[features.item_topics[has] == row.topic].mean(axis=0)
        ax.annotate(row.label, centre, fontsize=7, ha="center")
    ax.set_title("Item embeddings (PCA), coloured by topic")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    fig.tight_layout()
    plot = folder / "item_embedding_map.png"
    _figure(fig, plot, 110)
    return [topics, keywords, plot]


def write_effect_map(frame: pd.DataFrame, folder: Path, title: str = "Mean uplift τ̂ per user segment × item topic") -> list[Path]:
    """``causal_effect_map.csv`` and ``causal_effect_map.png`` (diverging colours centred on 0) in ``folder``."""
    plt = _pyplot()

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    csv, png = folder / "causal_effect_map.csv", folder / "causal_effect_map.png"
    _csv(frame, csv)
    values = frame.to_numpy(dtype=np.float64)
    bound = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * frame.shape[1] + 2.5), max(2.5, 0.5 * frame.shape[0] + 1.5)))
    image = ax.imshow(values, cmap="RdBu_r", vmin=-bound, vmax=bound, aspect="auto")
    ax.set_xticks(range(frame.shape[1]), [str(c) for c in frame.columns], rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(frame.shape[0]), [str(i) for i in frame.index])
    ax.set_xlabel(str(frame.columns.name or "topic"))
    ax.set_ylabel(str(frame.index.name or "segment"))
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, label="mean τ̂ (effect of recommending)")
    fig.tight_layout()
    _figure(fig, png, 120)
    return [csv, png]


def write_evaluation(evaluation: Evaluation, folder: Path) -> Path:
    """``baselines.csv``: every policy's metrics on test and validation, one row per (policy, part)."""
    folder.mkdir(parents=True, exist_ok=True)
    table = folder / "baselines.csv"
    _csv(evaluation.table(), table, index=False)
    return table


def write_contrast(result: ContrastResult, folder: Path, outcome: str) -> list[Path]:
    """interventions.csv / .html and a forest plot of the lifts with their CIs."""
    plt = _pyplot()

    folder.mkdir(parents=True, exist_ok=True)
    table = result.table
    csv, html, plot = folder / "interventions.csv", folder / "interventions.html", folder / "interventions_forest.png"
    _csv(table, csv, index=False)
    write_text_atomic(
        html,
        "<html><head><meta charset='utf-8'><title>Interventions</title></head><body>"
        f"<h1>Interventions against the control</h1><ul>{''.join(f'<li>{v}</li>' for v in result.verdicts)}</ul>"
        + table.to_html(index=False, float_format=lambda x: f"{x:.5g}") + "</body></html>"
    )
    rows = table[table["policy"] != "control"].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(rows) + 1.5))
    y = np.arange(len(rows))[::-1]
    ax.errorbar(rows["lift"] * 100, y, xerr=[(rows["lift"] - rows["lift_low"]) * 100, (rows["lift_high"] - rows["lift"]) * 100],
                fmt="o", color="tab:blue", capsize=3, label="estimate, 95% CI")
    if "true_lift" in rows:
        ax.scatter(rows["true_lift"] * 100, y, marker="x", color="tab:red", zorder=3, label="true lift")
    ax.axvline(0, color="grey", lw=1)
    ax.set_yticks(y, rows["policy"])
    ax.set_xlabel(f"lift in {outcome} over the control (%)")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    _figure(fig, plot, 110)
    files = [csv, html, plot]
    if {"sim", "true_value"} <= set(table.columns) and table[["sim", "true_value"]].notna().all(axis=1).any():
        files.append(_simulated_vs_true(table, folder / "simulated_vs_true.png", outcome))
    return files


def _simulated_vs_true(table: pd.DataFrame, path: Path, outcome: str) -> Path:
    """Each policy's (and edit's) simulated value against its true value, with the simulator's interval."""
    plt = _pyplot()

    rows = table[table[["sim", "true_value"]].notna().all(axis=1)]
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.errorbar(rows["true_value"], rows["sim"], yerr=[rows["sim"] - rows["sim_low"], rows["sim_high"] - rows["sim"]],
                fmt="o", capsize=3)
    for row in rows.itertuples():
        ax.annotate(row.policy, (row.true_value, row.sim), fontsize=7, xytext=(3, 3), textcoords="offset points")
    low, high = float(rows[["sim_low", "true_value"]].min().min()), float(rows[["sim_high", "true_value"]].max().max())
    ax.plot([low, high], [low, high], color="grey", lw=1)
    ax.set_xlabel(f"true value ({outcome} per logged round)")
    ax.set_ylabel("simulated value (95% interval)")
    ax.set_title("The simulator against the synthetic world's truth")
    fig.tight_layout()
    _figure(fig, path, 110)
    return path


def write_simulation(result: SimulateResult, folder: Path) -> list[Path]:
    """The simulator's fidelity report: tables (calibration by position, clicks per slate, two-sample
    tests) and one figure with the calibration and the clicks-per-slate histogram, real against simulated."""
    plt = _pyplot()

    folder.mkdir(parents=True, exist_ok=True)
    report = result.fidelity
    files = [folder / "calibration_by_position.csv", folder / "clicks_per_slate.csv", folder / "c2st.csv"]
    for frame, path in zip((report.positions, report.counts, report.c2st), files):
        _csv(frame, path, index=False)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    x = report.positions["position"].to_numpy()
    left.bar(x - 0.2, report.positions["real_rate"], width=0.4, label="held-out real")
    left.bar(x + 0.2, report.positions["simulated_rate"], width=0.4, label="simulated")
    left.plot(x, report.positions["expected_rate"], "k.", label="simulator's probability")
    left.set_xlabel("position")
    left.set_ylabel("click rate")
    left.set_title("Calibration by position")
    left.legend(fontsize=8)
    shown = report.counts[(report.counts["real_share"] > 0) | (report.counts["simulated_share"] > 0)]
    c = shown["clicks"].to_numpy()
    right.bar(c - 0.2, shown["real_share"], width=0.4, label="held-out real")
    right.bar(c + 0.2, shown["simulated_share"], width=0.4, label="simulated")
    right.set_yscale("log")
    right.set_xlabel("clicks in a slate")
    right.set_ylabel("share of slates")
    right.set_title(f"Clicks per slate (TV distance {report.total_variation:.3f})")
    right.legend(fontsize=8)
    fig.tight_layout()
    plot = folder / "fidelity.png"
    _figure(fig, plot, 110)
    return [*files, plot]


def write_summary(summary: dict, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "summary.json"
    write_text_atomic(path, json.dumps(summary, indent=2, default=str, sort_keys=True))
    return path

