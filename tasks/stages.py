"""The pipeline's Prefect tasks: thin wrappers that call the pure stage functions and write
their files. All of the pipeline's file I/O happens here (and in the flow), nowhere deeper.

Tasks exchange in-memory objects within one flow run, so caching is off (``NO_CACHE``): hashing
large frames for cache keys would cost more than the work. Modules with the pure functions do
not import Prefect, so ``models/`` and ``tasks.datasets`` run where Prefect is not installed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.baselines import BaselineSet, BaselinesConfig, build_baselines
from models.world import WorldConfig
from tasks.datasets import DataConfig, Dataset, load_configured
from tasks.contrastive import ContrastConfig, ContrastResult, contrast_interventions
from tasks.features import FeaturesConfig, TextFeatures, build_text_features
from tasks.interventions import PolicySources
from tasks.evaluate import Evaluation, EvaluationConfig, evaluate_baselines, logging_policy_truth
from tasks.split import Split, SplitConfig, split_dataset
from tasks.train import ModelSet, TrainConfig, copy_config, train_models
from validations.config import ValidationConfig
from validations.report import dumps
from validations.run import ValidationOutcome, validate_dataset

TASK_OPTIONS = {"cache_policy": NO_CACHE, "persist_result": False}


@task(name="load", **TASK_OPTIONS)
def load_task(data: DataConfig, world: WorldConfig, seed: int) -> Dataset:
    return load_configured(data, world, seed)


@dataclass(frozen=True)
class ValidationFiles:
    folder: Path
    report_text: Path
    report_json: Path
    quarantine: Path
    data_docs: Path | None


def write_validation(outcome: ValidationOutcome, folder: Path, data_docs: bool) -> ValidationFiles:
    """The console report, the JSON report, the quarantine parquet and (optionally) Data Docs."""
    folder.mkdir(parents=True, exist_ok=True)
    text, doc, quarantine = folder / "report.txt", folder / "report.json", folder / "quarantine.parquet"
    text.write_text(outcome.console + "\n")
    doc.write_text(dumps(outcome.document))
    outcome.quarantine.to_parquet(quarantine, index=False)
    docs = outcome.session.build_data_docs(folder / "data_docs") if data_docs else None
    return ValidationFiles(folder, text, doc, quarantine, docs)


@task(name="validate", **TASK_OPTIONS)
def validate_task(dataset: Dataset, config: ValidationConfig, folder: Path) -> tuple[ValidationOutcome, ValidationFiles]:
    outcome = validate_dataset(dataset, config)
    return outcome, write_validation(outcome, folder, config.data_docs)


@task(name="split", **TASK_OPTIONS)
def split_task(dataset: Dataset, config: SplitConfig, seed: int) -> Split:
    return split_dataset(dataset, config, seed)


@dataclass(frozen=True)
class FeatureRun:
    """The text-feature stage's output: features (None without text), metrics and written files."""

    features: TextFeatures | None
    metrics: dict
    files: list[Path]


@task(name="features", **TASK_OPTIONS)
def features_task(split: Split, dataset: Dataset, config: FeaturesConfig, threads: int, cache_dir: Path, folder: Path, seed: int) -> FeatureRun:
    """Load the encoder (cached ONNX export), embed with the on-disk cache, build and write features."""
    from tasks.embedding_cache import CachedEmbedder, EmbeddingCache
    from tasks.text_model import load_encoder

    loaded = load_encoder(
        config.model, backend=config.backend, batch_size=config.batch_size, max_length=config.max_length,
        quantize=config.quantize, threads=threads, cache_dir=cache_dir,
    )
    cache = EmbeddingCache(cache_dir / "embeddings" / loaded.identity) if config.cache else None
    embed = CachedEmbedder(loaded.encoder, cache)
    world = dataset.world
    truth = np.argmax(world.phi[split.items.ids.astype(np.int64)], axis=1) if world is not None else None
    features = build_text_features(
        split, dataset.items, dataset.users, embed, config,
        has_timestamps=dataset.meta.has_timestamps, true_item_topics=truth, seed=seed,
    )
    metrics = {"features/model": loaded.source, "features/model_identity": loaded.identity, "features/backend": loaded.backend}
    if features is None:
        return FeatureRun(None, metrics | {"features/has_text": False}, [])
    metrics |= features.metrics | embed.stats()
    return FeatureRun(features, metrics, write_features(features, split, folder))


def write_features(features: TextFeatures, split: Split, folder: Path, samples: int = 50) -> list[Path]:
    """Topic table, keyword samples and a 2-D map of item embeddings coloured by topic."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    folder.mkdir(parents=True, exist_ok=True)
    topics = folder / "topics.csv"
    features.topics.to_csv(topics, index=False)
    keywords = folder / "keywords.csv"
    rows = [{"kind": "item", "id": split.items.ids[i], "topic": int(features.item_topics[i]), "keywords": ", ".join(features.item_keywords[i])} for i in range(min(samples, split.n_items))]
    rows += [{"kind": "user", "id": split.users.ids[u], "topic": None, "keywords": ", ".join(features.user_keywords[u])} for u in range(min(samples, split.n_users))]
    pd.DataFrame(rows).to_csv(keywords, index=False)
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
    fig.savefig(plot, dpi=110)
    plt.close(fig)
    return [topics, keywords, plot]


@task(name="baselines", **TASK_OPTIONS)
def baselines_task(split: Split, dataset: Dataset, config: BaselinesConfig, seed: int, features: TextFeatures | None = None) -> BaselineSet:
    return build_baselines(split, dataset, config, seed, features)


@dataclass(frozen=True)
class TrainRun:
    models: ModelSet
    metrics: dict[str, float | str | bool]
    files: list[Path]


@task(name="train", **TASK_OPTIONS)
def train_task(split: Split, dataset: Dataset, config: TrainConfig, features: TextFeatures | None, threads: int,
               seed: int, folder: Path, stage=None, log=None) -> TrainRun:
    """Fit the causal GNN and its references; checkpoints, the causal effect map and (synthetic)
    ground-truth errors in ``folder``. ``stage``: the MLflow stage run Lightning logs into."""
    from tasks.causal_report import causal_effect_map, truth_metrics, user_segments, write_effect_map

    config = copy_config(config, threads=config.threads or threads, seed=seed if config.seed is None else config.seed)
    logger_for = (lambda name: stage.lightning_logger(name)) if stage is not None else None
    on_model = None
    if log is not None:
        on_model = lambda name, m: log.info("trained %s: %s; %d epochs, best %s=%.4f, %.2f s/epoch", name,  # noqa: E731
                                            m.plan.note, m.history["epochs"], m.plan.monitor,
                                            m.history[f"best_{m.plan.monitor}"], m.history["seconds_per_epoch"])
    models = train_models(split, dataset.meta, config, features, logger_for, folder / "checkpoints", on_model)
    metrics = models.summary()
    files = sorted((folder / "checkpoints").glob("*/best.ckpt"))
    causal = models.causal
    if causal is not None and causal.identifiable:
        topics = features.item_topics if features is not None else np.zeros(split.n_items, dtype=np.int64)
        names = None
        if features is not None and "label" in features.topics.columns:
            labels = dict(zip(features.topics["topic"], features.topics["label"]))
            names = [str(labels.get(t, t)) for t in range(int(topics.max()) + 1)]
        segments, segment_names = user_segments(dataset.users, split)
        frame = causal_effect_map(causal.uplift, segments, topics, segment_names, names)
        files += write_effect_map(frame, folder)
        metrics["causal/effect_map_max"] = float(np.nanmax(frame.to_numpy()))
        metrics["causal/effect_map_min"] = float(np.nanmin(frame.to_numpy()))
    if causal is not None and dataset.world is not None:
        propensity = causal.propensity if "propensity" in causal.plan.heads else None
        metrics |= truth_metrics(dataset.world, split, causal.uplift if causal.identifiable else None, propensity)
        t_learner = models.models.get("gnn_t_learner")
        if t_learner is not None:
            metrics["causal/pehe_t_learner"] = truth_metrics(dataset.world, split, t_learner.uplift)["causal/pehe"]
    return TrainRun(models, metrics, files)


@task(name="evaluate", **TASK_OPTIONS)
def evaluate_task(baselines: BaselineSet, split: Split, config: EvaluationConfig, dataset: Dataset, folder: Path) -> tuple[Evaluation, Path]:
    evaluation = evaluate_baselines(baselines, split, config, dataset.world)
    if dataset.world is not None:
        evaluation = replace(evaluation, reference=logging_policy_truth(dataset.world, split))
    folder.mkdir(parents=True, exist_ok=True)
    table = folder / "baselines.csv"
    rows = [{"policy": name, "part": "test", **m} for name, m in evaluation.test.items()]
    rows += [{"policy": name, "part": "val", **m} for name, m in evaluation.val.items()]
    pd.DataFrame(rows).to_csv(table, index=False)
    return evaluation, table


def policy_sources(split: Split, dataset: Dataset, baselines: BaselineSet, features: TextFeatures | None, data_root: Path | None, campaign: str, seed: int) -> PolicySources:
    """Everything interventions are built from, aligned to the split; reads Open Bandit's BTS prior if present."""
    train = split.train[split.train["positive"]]
    log_popularity = np.log1p(np.bincount(train["item"], minlength=split.n_items).astype(np.float64))
    logging = None
    if dataset.logging_scores is not None:
        scorer, user_ids, item_ids = dataset.logging_scores, split.users.ids, split.items.ids
        logging = lambda users: scorer.score(user_ids[users], item_ids)  # noqa: E731
    n_slots = 1
    if "position" in split.train.columns:
        positions = pd.concat([split.train["position"], split.val["position"], split.test["position"]])
        n_slots = int(positions.max()) if positions.notna().any() else 1
    return PolicySources(
        n_items=split.n_items,
        n_slots=n_slots,
        scores={name: policy.scores for name, policy in baselines.policies.items()},
        skipped=dict(baselines.skipped),
        logging=logging,
        log_popularity=log_popularity,
        item_vectors=features.item_vectors if features is not None else None,
        bts_prior=_bts_prior(dataset, split, data_root, campaign),
        seed=seed,
    )


def _bts_prior(dataset: Dataset, split: Split, data_root: Path | None, campaign: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Open Bandit's Beta prior of the Bernoulli-TS policy, per item of the split (None elsewhere)."""
    if dataset.meta.name != "open-bandit" or data_root is None:
        return None
    path = Path(data_root) / "open-bandit" / "prior_bts.yaml"
    if not path.exists():
        return None
    import yaml

    prior = yaml.safe_load(path.read_text())[campaign]
    alpha, beta = np.asarray(prior["alpha"], dtype=np.float64), np.asarray(prior["beta"], dtype=np.float64)
    ids = split.items.ids.astype(np.int64)
    if ids.max() >= len(alpha):
        return None
    return alpha[ids], beta[ids]


@dataclass(frozen=True)
class ContrastRun:
    result: ContrastResult | None
    reason: str | None
    files: list[Path]


@task(name="contrast", **TASK_OPTIONS)
def contrast_task(
    split: Split, dataset: Dataset, baselines: BaselineSet, features: TextFeatures | None, config: ContrastConfig,
    data_root: Path | None, campaign: str, folder: Path, seed: int,
) -> ContrastRun:
    """Interventions against the control on the logged rounds; tables and a forest plot in ``folder``."""
    sources = policy_sources(split, dataset, baselines, features, data_root, campaign, seed)
    meta = dataset.meta
    outcome = "click rate" if meta.outcome_kind == "binary" else f"share of outcomes >= {meta.positive_threshold:g}"
    known = {}
    if meta.name == "open-bandit":
        logged = dataset.interactions[dataset.interactions["policy"] == "bts"]
        if len(logged):
            known["bts"] = float(logged["outcome"].mean())
    result = contrast_interventions(
        split, sources, config, randomized_policy=meta.randomized_policy, outcome=outcome, world=dataset.world,
        known_values=known, user_repr=features.user_vectors if features is not None else None, seed=seed,
    )
    if isinstance(result, str):
        return ContrastRun(None, result, [])
    return ContrastRun(result, None, write_contrast(result, folder, outcome))


def write_contrast(result: ContrastResult, folder: Path, outcome: str) -> list[Path]:
    """interventions.csv / .html and a forest plot of the lifts with their CIs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    table = result.table
    csv, html, plot = folder / "interventions.csv", folder / "interventions.html", folder / "interventions_forest.png"
    table.to_csv(csv, index=False)
    html.write_text(
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
    fig.savefig(plot, dpi=110)
    plt.close(fig)
    return [csv, html, plot]


def write_summary(summary: dict, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "summary.json"
    path.write_text(json.dumps(summary, indent=2, default=str, sort_keys=True))
    return path
