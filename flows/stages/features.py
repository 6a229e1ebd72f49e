"""The ``features`` stage: embed item and user text, keywords, topics, the cold-start evaluation."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from recause.flows.artifacts import write_features
from recause.flows.stages import TASK_OPTIONS, StageResult
from recause.tasks.data import Dataset
from recause.tasks.data.split import Split
from recause.tasks.features.build import TextFeatures, text_features
from recause.tasks.features.cache import CachedEmbedder, EmbeddingCache
from recause.tasks.features.config import FeaturesConfig
from recause.tasks.features.encoder import load_encoder


@task(name="features", **TASK_OPTIONS)
def features_task(split: Split, dataset: Dataset, config: FeaturesConfig, threads: int, cache_dir: Path,
                  folder: Path, seed: int) -> StageResult[TextFeatures]:
    """Load the encoder (cached ONNX export) and the embedding cache — the stage's I/O — then build
    the features; topic table, keyword samples and an embedding map in ``folder``."""
    loaded = load_encoder(
        config.model, backend=config.backend, batch_size=config.batch_size, max_length=config.max_length,
        quantize=config.quantize, threads=threads, cache_dir=cache_dir,
    )
    cache = EmbeddingCache(cache_dir / "embeddings" / loaded.identity) if config.cache else None
    embed = CachedEmbedder(loaded.encoder, cache)
    features = text_features(split, dataset, embed, config, seed)
    metrics = {"features/model": loaded.source, "features/model_identity": loaded.identity, "features/backend": loaded.backend}
    if features is None:
        note = (f"{dataset.meta.name} has no item text: the text-feature stage has nothing to embed; "
                "continuing without text features")
        return StageResult(None, metrics | {"features/has_text": False}, notes=(note,))
    return StageResult(features, metrics | features.metrics | embed.stats(), tuple(write_features(features, split, folder)))
