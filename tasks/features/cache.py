"""An on-disk cache of text embeddings keyed by (model identity, text hash).

Layout: ``<cache_dir>/embeddings/<model identity>/shard-<uuid>.npz``, each shard holding
``hashes`` (n,) 20-byte SHA-1 digests of the UTF-8 text and ``vectors`` (n, d) float32. A run
appends one shard with the texts it had to embed; it never rewrites one. Shards are written to a
temporary name and renamed into place (atomic on POSIX), so a killed run leaves at most an
ignored ``*.tmp`` file and never a corrupt cache. Changing the model (weights, pooling, maximum
length) changes the identity and therefore the folder: stale vectors cannot be served.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from recause.models.text.encoder import TextEncoder


def text_hashes(texts: Sequence[str]) -> np.ndarray:
    """SHA-1 digest of each text, as an (n,) array of 20-byte strings."""
    return np.array([hashlib.sha1(t.encode("utf-8", "surrogatepass")).digest() for t in texts], dtype="S20")


@dataclass
class EmbeddingCache:
    """Embeddings of one model identity under ``folder``; loaded lazily, appended atomically."""

    folder: Path
    _index: dict[bytes, int] = field(default_factory=dict, init=False)
    _vectors: list[np.ndarray] = field(default_factory=list, init=False)
    _loaded: bool = field(default=False, init=False)

    def _load(self) -> None:
        if self._loaded:
            return
        offset = 0
        for shard in sorted(self.folder.glob("shard-*.npz")):
            with np.load(shard) as data:
                hashes, vectors = data["hashes"], data["vectors"]
            self._index.update((h, offset + i) for i, h in enumerate(hashes.tolist()))
            self._vectors.append(vectors)
            offset += len(vectors)
        self._loaded = True

    def lookup(self, hashes: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(found (n,) bool, vectors (n, dim) float32 with zeros where not found)."""
        self._load()
        rows = np.array([self._index.get(h, -1) for h in hashes.tolist()], dtype=np.int64)
        found = rows >= 0
        out = np.zeros((len(hashes), dim), dtype=np.float32)
        if found.any():
            table = np.concatenate(self._vectors) if len(self._vectors) > 1 else self._vectors[0]
            out[found] = table[rows[found]]
        return found, out

    def add(self, hashes: np.ndarray, vectors: np.ndarray) -> Path | None:
        """Append one shard (atomically); returns its path, or None when there is nothing to add."""
        if len(hashes) == 0:
            return None
        self._load()
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"shard-{uuid.uuid4().hex}"
        tmp = self.folder / f"{name}.tmp"
        with open(tmp, "wb") as handle:
            np.savez(handle, hashes=hashes, vectors=vectors.astype(np.float32))
            handle.flush()
            os.fsync(handle.fileno())
        final = self.folder / f"{name}.npz"
        os.replace(tmp, final)
        offset = sum(len(v) for v in self._vectors)
        self._index.update((h, offset + i) for i, h in enumerate(hashes.tolist()))
        self._vectors.append(vectors.astype(np.float32))
        return final


@dataclass
class CachedEmbedder:
    """``embedder(texts) -> (n, d)``: cached vectors where known, the encoder for the rest.

    Counts what it did (``hits``, ``misses``, ``encode_seconds``) so the stage can report cache hit
    rate and throughput; shows a progress bar when more than ``progress_from`` texts need encoding.
    ``encode``, when set, embeds the missing texts in place of ``encoder.encode`` with the same vectors
    (the features stage's shards: :func:`~recause.tasks.features.encoder.encode_sharded`; no bar).
    """

    encoder: "TextEncoder"
    cache: EmbeddingCache | None
    progress_from: int = 2000
    encode: Callable[[list[str]], np.ndarray] | None = None
    hits: int = 0
    misses: int = 0
    encode_seconds: float = 0.0

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        hashes = text_hashes(texts)
        if self.cache is not None:
            found, vectors = self.cache.lookup(hashes, self.encoder.dim)
        else:
            found, vectors = np.zeros(len(texts), dtype=bool), np.zeros((len(texts), self.encoder.dim), np.float32)
        missing = np.flatnonzero(~found)
        # duplicates count once: the encoder embeds each distinct text once
        new_hashes, first = np.unique(hashes[missing], return_index=True)
        self.hits += len(texts) - len(missing)
        self.misses += len(new_hashes)
        if len(missing):
            start = time.perf_counter()
            todo = [texts[i] for i in missing[first]]
            if self.encode is not None:
                encoded = self.encode(todo)
            else:
                encoded = self.encoder.encode(todo, progress=self._progress(len(todo)))
            self.encode_seconds += time.perf_counter() - start
            lookup = dict(zip(new_hashes.tolist(), range(len(new_hashes))))
            vectors[missing] = encoded[[lookup[h] for h in hashes[missing].tolist()]]
            if self.cache is not None:
                self.cache.add(new_hashes, encoded)
        return vectors

    def _progress(self, total: int):
        if total < self.progress_from:
            return None
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="embedding texts", unit="text", mininterval=2.0)

        def update(done: int, _total: int) -> None:
            bar.update(done - bar.n)
            if done >= _total:
                bar.close()

        return update

    def stats(self) -> dict[str, float]:
        total = self.hits + self.misses
        return {
            "features/texts_embedded": float(self.misses),
            "features/cache_hits": float(self.hits),
            "features/cache_hit_rate": self.hits / total if total else 0.0,
            "features/encode_seconds": self.encode_seconds,
            "features/texts_per_second": self.misses / self.encode_seconds if self.encode_seconds > 0 else 0.0,
        }
