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


CAPTIONS: dict[str, str] = {
    "item_embedding_map.png": "Each dot is an item's text embedding projected on its first two principal components, "
                              "coloured by the topic the text-feature stage found; each number sits at its topic's centre "
                              "(features/topics.csv and the report name the topics).",
    "causal_effect_map.png": "Mean estimated uplift τ̂ (the change in the outcome probability that recommending an item "
                             "causes, in percentage points) for each user segment and item topic. Red: recommending "
                             "helps; blue: it hurts; white: no effect.",
    "interventions_forest.png": "Left: each intervention's relative lift in the outcome rate over the control, with its "
                                "95% paired-bootstrap interval (crosses: the truth, where known). Right: the outcome the "
                                "recommendation itself causes per recommendation seen, as a difference from the control's "
                                "(by the causal GNN's τ̂, with a user-clustered 95% interval; crosses: the truth).",
    "simulated_vs_true.png": "The user simulator's value of each policy against its known value (the synthetic world's "
                             "exact value, or on Open Bandit the click rate of the policy's own log); on the grey "
                             "diagonal the simulator is right.",
    "fidelity.png": "The simulator against held-out real slates: click rate by position (left) and the share of slates "
                    "with each number of clicks (right, log scale).",
    "training_curves.png": "Each model's training loss and its validation metric of record per epoch; the dot marks "
                           "the epoch whose weights were kept.",
    "propensity_calibration.png": "The propensity head's predicted exposure probability against the world's true one, "
                                  "in ten equal-count bins; on the diagonal the propensities are calibrated.",
    "uplift_vs_truth.png": "Estimated uplift τ̂ against the true τ for a uniform sample of user–item pairs; "
                           "on the diagonal the estimate is exact.",
}
"""One sentence under each figure, by file name: drawn under the figure and repeated in the run report."""


FOREST_CLICKS_ONLY = ("Each intervention's relative lift in the outcome rate over the control, with its 95% "
                      "paired-bootstrap interval (crosses: the truth, where known). No caused-engagement panel: the "
                      "uplift is not identified by this data.")


def _figure(fig, path: Path, dpi: int, caption: str | None = None) -> Path:
    """Save ``fig`` atomically with its caption (``caption``, else :data:`CAPTIONS`) underneath, and close it."""
    import textwrap

    caption = caption or CAPTIONS.get(path.name)
    if caption:  # below the axes; the tight bounding box grows to hold it
        text = "\n".join(textwrap.wrap(caption, int(fig.get_figwidth() * 13)))
        fig.text(0.01, 0.0, text, fontsize=8, color="#333333", ha="left", va="top")
    with atomic_path(path) as temp:
        fig.savefig(temp, dpi=dpi, bbox_inches="tight", pad_inches=0.15)
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
    for row in features.topics.itertuples():  # the topic's number at its centre; topics.csv names it
        centre = points[features.item_topics[has] == row.topic].mean(axis=0)
        ax.annotate(str(row.topic), centre, fontsize=8, ha="center", va="center", fontweight="bold",
                    bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.8, "linewidth": 0})
    ax.set_title("Item embeddings (PCA), coloured by topic")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    fig.tight_layout()
    plot = folder / "item_embedding_map.png"
    _figure(fig, plot, 110)
    return [topics, keywords, plot]


def write_effect_map(frame: pd.DataFrame, folder: Path, title: str = "Mean uplift τ̂ per item topic × user segment") -> list[Path]:
    """``causal_effect_map.csv`` (segments × topics) and ``causal_effect_map.png``: topics down the
    side (long labels stay readable), segments across, each cell annotated in percentage points,
    a diverging scale centred on zero."""
    from matplotlib.colors import TwoSlopeNorm

    plt = _pyplot()

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    csv, png = folder / "causal_effect_map.csv", folder / "causal_effect_map.png"
    _csv(frame, csv)
    shown = frame.T  # topics × segments
    values = shown.to_numpy(dtype=np.float64) * 100  # percentage points
    bound = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    bound = bound or 1.0
    label_width = max((len(str(t)) for t in shown.index), default=5)
    fig, ax = plt.subplots(figsize=(2.5 + 0.07 * label_width + 1.1 * shown.shape[1], max(3.0, 1.2 + 0.32 * shown.shape[0])))
    image = ax.imshow(values, cmap="RdBu_r", norm=TwoSlopeNorm(vcenter=0.0, vmin=-bound, vmax=bound), aspect="auto")
    for (r, c), v in np.ndenumerate(values):
        if np.isfinite(v):
            ax.text(c, r, f"{v:+.1f}", ha="center", va="center", fontsize=7.5,
                    color="white" if abs(v) > 0.6 * bound else "black")
    ax.set_xticks(range(shown.shape[1]), [str(c) for c in shown.columns])
    ax.set_yticks(range(shown.shape[0]), [str(i) for i in shown.index], fontsize=8)
    ax.set_xlabel(f"user {frame.index.name or 'segment'}")
    ax.set_ylabel(f"item {frame.columns.name or 'topic'}")
    ax.xaxis.set_label_position("top")
    ax.xaxis.tick_top()
    ax.set_title(title, fontsize=10, pad=28)
    bar = fig.colorbar(image, ax=ax, fraction=0.08, pad=0.03)
    bar.set_label("mean τ̂ (percentage points)", fontsize=8)
    fig.tight_layout()
    _figure(fig, png, 120)
    return [csv, png]


def write_training(curves: pd.DataFrame | None, monitors: dict[str, str], folder: Path) -> list[Path]:
    """``training_curves.csv`` (model, epoch, logged values) and ``training_curves.png``: each model's
    training loss and its validation metric of record (``monitors``: model -> metric name) per epoch."""
    if curves is None or curves.empty:
        return []
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    csv, png = folder / "training_curves.csv", folder / "training_curves.png"
    _csv(curves, csv, index=False)
    models = list(dict.fromkeys(curves["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=(3.8 * len(models), 3.4), squeeze=False)
    for ax, name in zip(axes[0], models):
        rows = curves[curves["model"] == name]
        if "train/loss" in rows:
            ax.plot(rows["epoch"] + 1, rows["train/loss"], color="tab:blue", label="training loss")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("training loss", color="tab:blue")
        monitor = monitors.get(name)
        if monitor and monitor in rows and rows[monitor].notna().any():
            other = ax.twinx()
            other.plot(rows["epoch"] + 1, rows[monitor], color="tab:orange", label=monitor)
            best = rows[monitor].idxmin() if "loss" in monitor else rows[monitor].idxmax()
            other.plot(rows.loc[best, "epoch"] + 1, rows.loc[best, monitor], "o", color="tab:orange")
            other.set_ylabel(monitor.replace("val/", "validation "), color="tab:orange")
        ax.set_title(name, fontsize=10)
    fig.tight_layout()
    _figure(fig, png, 110)
    return [csv, png]


def write_truth_check(calibration: pd.DataFrame | None, uplift_sample: pd.DataFrame | None, folder: Path) -> list[Path]:
    """The synthetic world's check of the causal model: ``propensity_calibration.csv/.png`` (predicted
    against true exposure probability by bin) and ``uplift_vs_truth.csv/.png`` (τ̂ against τ)."""
    plt = _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    if calibration is not None and not calibration.empty:
        csv, png = folder / "propensity_calibration.csv", folder / "propensity_calibration.png"
        _csv(calibration, csv, index=False)
        fig, ax = plt.subplots(figsize=(5, 4.6))
        top = float(max(calibration["predicted"].max(), calibration["true"].max())) * 1.05
        ax.plot([0, top], [0, top], color="grey", lw=1, label="calibrated")
        ax.plot(calibration["predicted"], calibration["true"], "o-", color="tab:blue", label="propensity head")
        ax.set_xlabel("predicted P(exposed | user, item)")
        ax.set_ylabel("true P(exposed | user, item)")
        ax.set_title("Propensity calibration (equal-count bins)", fontsize=10)
        ax.legend(fontsize=8)
        fig.tight_layout()
        files += [csv, _figure(fig, png, 110)]
    if uplift_sample is not None and not uplift_sample.empty:
        csv, png = folder / "uplift_vs_truth.csv", folder / "uplift_vs_truth.png"
        _csv(uplift_sample, csv, index=False)
        fig, ax = plt.subplots(figsize=(5, 4.6))
        x, y = uplift_sample["tau"] * 100, uplift_sample["tau_hat"] * 100
        ax.scatter(x, y, s=4, alpha=0.35, color="tab:blue")
        low, high = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
        ax.plot([low, high], [low, high], color="grey", lw=1)
        corr = float(np.corrcoef(x, y)[0, 1]) if len(x) > 2 and x.std() > 0 and y.std() > 0 else float("nan")
        ax.set_xlabel("true uplift τ (percentage points)")
        ax.set_ylabel("estimated uplift τ̂ (percentage points)")
        ax.set_title(f"Estimated against true uplift ({len(x):,} pairs, r = {corr:.2f})", fontsize=10)
        fig.tight_layout()
        files += [csv, _figure(fig, png, 110)]
    return files


def write_evaluation(evaluation: Evaluation, folder: Path) -> Path:
    """``baselines.csv``: every policy's metrics on test and validation, one row per (policy, part)."""
    folder.mkdir(parents=True, exist_ok=True)
    table = folder / "baselines.csv"
    _csv(evaluation.table(), table, index=False)
    return table


def write_contrast(result: ContrastResult, folder: Path, outcome: str) -> list[Path]:
    """``interventions.csv`` (one row per policy, every estimator) and a forest plot of the lifts with
    their CIs; the run report (:mod:`recause.flows.report`) shows them to people."""
    folder.mkdir(parents=True, exist_ok=True)
    table = result.table
    csv, plot = folder / "interventions.csv", folder / "interventions_forest.png"
    _csv(table, csv, index=False)
    _forest(table, plot, outcome)
    files = [csv, plot]
    if {"sim", "true_value"} <= set(table.columns) and table[["sim", "true_value"]].notna().all(axis=1).any():
        files.append(_simulated_vs_true(table, folder / "simulated_vs_true.png", outcome))
    return files


def _forest(table: pd.DataFrame, path: Path, outcome: str) -> Path:
    """Lift in the outcome rate (left) and, where the causal GNN estimated it, the caused outcome's
    difference from the control (right), each with its interval and the truth where known."""
    plt = _pyplot()
    rows = table[(table["policy"] != "control") & table["lift"].notna()].reset_index(drop=True)
    caused = "caused_lift" in rows and rows["caused_lift"].notna().any()
    fig, axes = plt.subplots(1, 2 if caused else 1, figsize=(11 if caused else 7, 0.45 * len(rows) + 1.6), squeeze=False,
                             sharey=True)
    y = np.arange(len(rows))[::-1]
    left = axes[0][0]
    left.errorbar(rows["lift"] * 100, y, xerr=[(rows["lift"] - rows["lift_low"]) * 100, (rows["lift_high"] - rows["lift"]) * 100],
                  fmt="o", color="tab:blue", capsize=3, label="estimate, 95% CI")
    if "true_lift" in rows and rows["true_lift"].notna().any():
        left.scatter(rows["true_lift"] * 100, y, marker="x", color="tab:red", zorder=3, label="truth")
    left.axvline(0, color="grey", lw=1)
    left.set_yticks(y, rows["policy"])
    left.set_xlabel(f"lift in the {outcome} over the control (%)")
    left.set_title(f"{outcome[0].upper()}{outcome[1:]}", fontsize=10)
    left.legend(loc="best", fontsize=8)
    if caused:
        right = axes[0][1]
        c = rows["caused_lift"] * 100
        right.errorbar(c, y, xerr=[c - rows["caused_lift_low"] * 100, rows["caused_lift_high"] * 100 - c],
                       fmt="o", color="tab:green", capsize=3, label="estimate (τ̂), 95% CI")
        truth = "true_caused_seen" if "true_caused_seen" in rows else "true_caused"
        if truth in rows and rows[truth].notna().any():
            control = float(table.loc[table["policy"] == "control", truth].iloc[0])
            right.scatter((rows[truth] - control) * 100, y, marker="x", color="tab:red", zorder=3, label="truth")
        right.axvline(0, color="grey", lw=1)
        right.set_xlabel("caused outcome per recommendation seen − control's (points)")
        right.set_title("Engagement the recommendation causes", fontsize=10)
        right.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return _figure(fig, path, 110, None if caused else FOREST_CLICKS_ONLY)


def _simulated_vs_true(table: pd.DataFrame, path: Path, outcome: str) -> Path:
    """Each policy's (and edit's) simulated value against its true value, with the simulator's interval."""
    plt = _pyplot()

    rows = table[table[["sim", "true_value"]].notna().all(axis=1)]
    fig, ax = plt.subplots(figsize=(7.5, 6))
    ax.errorbar(rows["true_value"], rows["sim"], yerr=[rows["sim"] - rows["sim_low"], rows["sim_high"] - rows["sim"]],
                fmt="o", capsize=3)
    low, high = float(rows[["sim_low", "true_value"]].min().min()), float(rows[["sim_high", "true_value"]].max().max())
    ax.plot([low, high], [low, high], color="grey", lw=1)
    _spread_labels(ax, rows["true_value"].to_numpy(), rows["sim"].to_numpy(), [str(p) for p in rows["policy"]])
    ax.set_xlabel(f"true value ({outcome} per logged round)")
    ax.set_ylabel("simulated value (95% interval)")
    ax.set_title("The simulator against the known values")
    fig.tight_layout()
    _figure(fig, path, 110)
    return path


def _spread_labels(ax, x: np.ndarray, y: np.ndarray, names: list[str], gap: float = 0.045) -> None:
    """Label points in a column right of the axes, each at least ``gap`` (axes fraction) from the next,
    joined to its point by a thin line — names never overlap however the points cluster."""
    ax.figure.canvas.draw()  # fix the limits before converting
    to_axes = ax.transAxes.inverted()
    fractions = to_axes.transform(ax.transData.transform(np.c_[x, y]))[:, 1]
    order = np.argsort(fractions)
    placed = np.empty(len(order))
    for rank, i in enumerate(order):
        placed[rank] = max(fractions[i], placed[rank - 1] + gap if rank else -np.inf)
    placed -= max(0.0, placed[-1] - 1.0) if len(placed) else 0.0
    for rank, i in enumerate(order):
        ax.annotate(names[i], (x[i], y[i]), xytext=(1.03, placed[rank]), textcoords="axes fraction", fontsize=8, va="center",
                    arrowprops={"arrowstyle": "-", "color": "#999999", "lw": 0.6})


def write_simulation(result: SimulateResult, folder: Path) -> list[Path]:
    """The simulator's fidelity report: tables (calibration by position, clicks per slate, two-sample
    tests) and one figure with the calibration and the clicks-per-slate histogram, real against simulated."""
    from matplotlib.ticker import MaxNLocator

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
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_ylabel("click rate")
    left.set_title("Calibration by position")
    left.legend(fontsize=8)
    shown = report.counts[(report.counts["real_share"] > 0) | (report.counts["simulated_share"] > 0)]
    c = shown["clicks"].to_numpy()
    right.bar(c - 0.2, shown["real_share"], width=0.4, label="held-out real")
    right.bar(c + 0.2, shown["simulated_share"], width=0.4, label="simulated")
    right.set_yscale("log")
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
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

