"""The ``features`` stage: embed item and user text, keywords, topics, the cold-start evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

from prefect import task

from recause.flows.artifacts import write_features
from recause.flows.shards import shard_map
from recause.flows.stages import TASK_OPTIONS, StageResult
from recause.tasks.data import Dataset
from recause.tasks.data.split import Split
from recause.tasks.features.build import TextFeatures, text_features
from recause.tasks.features.cache import CachedEmbedder, EmbeddingCache
from recause.tasks.features.config import FeaturesConfig
from recause.tasks.features.encoder import LoadedEncoder, load_encoder, submit_sharded
from recause.tasks.shards import in_order


@dataclass(frozen=True)
class EncoderSettings:
    """Where and how the text encoder loads (plain values: a task on any worker loads it itself)."""

    config: FeaturesConfig
    threads: int
    cache_dir: Path

    def load(self) -> tuple[LoadedEncoder, CachedEmbedder]:
        """The encoder (cached ONNX export) and an embedder that reads and fills the embedding cache."""
        c = self.config
        loaded = load_encoder(c.model, backend=c.backend, batch_size=c.batch_size, max_length=c.max_length,
                              quantize=c.quantize, threads=self.threads, cache_dir=self.cache_dir)
        cache = EmbeddingCache(self.cache_dir / "embeddings" / loaded.identity) if c.cache else None
        return loaded, CachedEmbedder(loaded.encoder, cache)

    def embed(self) -> CachedEmbedder:
        return self.load()[1]


@task(name="features", **TASK_OPTIONS)
def features_task(split: Split, dataset: Dataset, config: FeaturesConfig, threads: int, cache_dir: Path,
                  folder: Path, seed: int) -> StageResult[TextFeatures]:
    """Load the encoder (cached ONNX export) and the embedding cache — the stage's I/O — then build
    the features; topic table, keyword samples and an embedding map in ``folder``.

    On threads or a local Dask cluster the texts the cache lacks are embedded in shards of whole batches
    (:func:`~recause.tasks.features.encoder.submit_sharded`, ONNX backend): the same vectors. The item, user
    and phrase embeddings are all submitted before the first is read."""
    loaded, embed = EncoderSettings(config, threads, cache_dir).load()
    with shard_map(own_scheduler=False) as map_shards:  # a scheduler of one's own may not see the ONNX graph
        if map_shards is not in_order and loaded.onnx is not None:
            embed.submit = partial(submit_sharded, loaded.encoder, loaded.onnx, map_shards)
        features = text_features(split, dataset, embed, config, seed)
    metrics = {"features/model": loaded.source, "features/model_identity": loaded.identity, "features/backend": loaded.backend}
    if features is None:
        note = (f"{dataset.meta.name} has no item text: the text-feature stage has nothing to embed; "
                "continuing without text features")
        return StageResult(None, metrics | {"features/has_text": False}, notes=(note,))
    return StageResult(features, metrics | features.metrics | embed.stats(), tuple(write_features(features, split, folder)))
