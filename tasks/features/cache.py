"""An on-disk cache of text embeddings keyed by (model identity, text hash).

Layout: ``<cache_dir>/embeddings/<model identity>/shard-<uuid>.npz``, each shard holding
``hashes`` (n,) 20-byte SHA-1 digests of the UTF-8 text and ``vectors`` (n, d) float32. A run
appends one shard with the texts it had to embed; it never rewrites one. Shards are written to a
temporary name and renamed into place (atomic on POSIX), so a killed run leaves at most an
ignored ``*.tmp`` file and never a corrupt cache. Changing the model (weights, pooling, maximum
length) changes the identity and therefore the folder: stale vectors cannot be served.
"""

from __future__ import annotations

import functools
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


Pending = Callable[[], np.ndarray]
"""Waits for vectors being computed elsewhere and returns them, (n, d) float32."""


@dataclass
class CachedEmbedder:
    """``embedder(texts) -> (n, d)``: cached vectors where known, the encoder for the rest.

    Counts what it did (``hits``, ``misses``, ``encode_seconds``) so the stage can report cache hit
    rate and throughput; shows a progress bar when more than ``progress_from`` texts need encoding.
    ``submit``, when set, starts embedding the missing texts elsewhere with the vectors ``encoder.encode``
    gives (the features stage's shards: :func:`~recause.tasks.features.encoder.submit_sharded`; no bar),
    so :meth:`start` returns before they are computed and a stage can start several calls at once.
    """

    encoder: "TextEncoder"
    cache: EmbeddingCache | None
    progress_from: int = 2000
    submit: Callable[..., Pending] | None = None
    """``submit(texts, priority=p)``: the missing texts' embedding started elsewhere."""
    hits: int = 0
    misses: int = 0
    encode_seconds: float = 0.0
    _in_flight: dict[bytes, tuple[Pending, int]] = field(default_factory=dict, init=False, repr=False)
    _busy: list[tuple[float, float]] = field(default_factory=list, init=False, repr=False)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return self.start(texts)()

    def start(self, texts: Sequence[str], priority: int = 0) -> Pending:
        """Start embedding ``texts``; the returned function waits for their (n, d) vectors (at once, unless
        ``submit`` sends the work elsewhere). ``priority`` orders started calls where ``submit`` queues them.

        With a cache, a text an earlier started call is still embedding takes that call's vector, as it
        would have taken it from the cache had that call finished first: so the vectors do not depend on
        whether the calls ran one after another or at once."""
        texts = list(texts)
        hashes = text_hashes(texts)
        if self.cache is not None:
            found, vectors = self.cache.lookup(hashes, self.encoder.dim)
        else:
            found, vectors = np.zeros(len(texts), dtype=bool), np.zeros((len(texts), self.encoder.dim), np.float32)
        shared = [i for i in np.flatnonzero(~found) if hashes[i] in self._in_flight]
        found[shared] = True
        missing = np.flatnonzero(~found)
        # duplicates count once: the encoder embeds each distinct text once
        new_hashes, first = np.unique(hashes[missing], return_index=True)
        self.hits += len(texts) - len(missing)
        self.misses += len(new_hashes)
        began = time.perf_counter()
        encoded: Pending = lambda: np.zeros((0, self.encoder.dim), np.float32)  # noqa: E731
        if len(missing):
            todo = [texts[i] for i in missing[first]]
            if self.submit is not None:
                encoded = self.submit(todo, priority=priority)
            else:
                done = self.encoder.encode(todo, progress=self._progress(len(todo)))
                encoded = lambda: done  # noqa: E731
        waits = [(i, *self._in_flight[hashes[i]]) for i in shared]
        if self.cache is not None:
            self._in_flight.update((h, (encoded, j)) for j, h in enumerate(new_hashes.tolist()))
        @functools.cache
        def wait() -> np.ndarray:
            new = encoded()
            if len(missing):
                self._busy.append((began, time.perf_counter()))
                self.encode_seconds = _covered(self._busy)
                lookup = dict(zip(new_hashes.tolist(), range(len(new_hashes))))
                vectors[missing] = new[[lookup[h] for h in hashes[missing].tolist()]]
            for i, other, j in waits:
                vectors[i] = other()[j]
            if self.cache is not None and len(new_hashes):
                self.cache.add(new_hashes, new)
                for h in new_hashes.tolist():
                    self._in_flight.pop(h, None)
            return vectors

        if self.submit is None:
            wait()  # computed here and now, cached before the next call looks
        return wait

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


def _covered(spans: list[tuple[float, float]]) -> float:
    """Seconds covered by the union of (start, end) spans: the time some embedding was in flight."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total
