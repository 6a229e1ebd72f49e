"""Text features: documents, user vectors, keywords, topics, the embedding cache, cold start."""

from __future__ import annotations

import functools
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from recause.models.text.keywords import mmr_keywords
from recause.models.text.topics import class_tfidf, topic_terms
from recause.tasks.features.cache import CachedEmbedder, EmbeddingCache, text_hashes
from recause.tasks.features.build import build_text_features, history_vectors, item_documents, mix_user_vectors, user_documents
from recause.tasks.features.config import FeaturesConfig


class CountingEncoder:
    """A stand-in encoder: deterministic vectors from the text's hash; counts what it encodes."""

    dim = 8

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts, progress=None):
        self.seen += list(texts)
        out = np.stack([np.random.default_rng(list(text_hashes([t])[0])).standard_normal(self.dim) for t in texts])
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def test_documents_join_what_exists() -> None:
    items = pd.DataFrame({"item_id": [1, 2, 3], "title": ["Toy Story (1995)", "Lamp", None],
                          "text": ["Toy Story (1995). Genres: Comedy.", "", None], "categories": ["Comedy", None, None]})
    assert item_documents(items).tolist() == ["Toy Story (1995). Genres: Comedy. Categories: Comedy.", "Lamp.", ""]
    users = pd.DataFrame({"user_id": [7, 8], "profile_text": ["Into jazz.", None]})
    train = pd.DataFrame({"user": [1, 1, 1], "query": ["vinyl record", "bebop", "vinyl record"]})
    assert user_documents(users, train, 2).tolist() == ["Into jazz.", "Searches: vinyl record; bebop."]


def test_history_is_recency_weighted() -> None:
    items = np.eye(3, dtype=np.float32)
    day = 86_400.0
    # user 0 engaged with item 0 two half-lives before item 1: weights 1/4 and 1
    vectors, has = history_vectors(2, np.array([0, 0]), np.array([0, 1]), np.array([0.0, 2 * day]), items, half_life_days=1.0)
    expected = np.array([0.25, 1.0, 0.0]) / math.hypot(0.25, 1.0)
    np.testing.assert_allclose(vectors[0], expected, rtol=1e-6)
    assert has.tolist() == [True, False] and not vectors[1].any()


def test_user_vectors_fall_back_to_what_exists() -> None:
    text = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    history = np.array([[0.0, 1.0], [0.0, 0.0], [0.0, 1.0]])
    mixed = mix_user_vectors(text, np.array([True, True, False]), history, np.array([True, False, True]), 0.5)
    np.testing.assert_allclose(mixed, [[math.sqrt(0.5), math.sqrt(0.5)], [1.0, 0.0], [0.0, 1.0]], atol=1e-6)


def test_mmr_picks_relevant_then_diverse() -> None:
    # phrases 0 and 1 are near-duplicates, both close to the document; phrase 2 is different
    phrases = np.array([[1.0, 0.0], [0.995, 0.0998], [0.6, 0.8]])
    phrases /= np.linalg.norm(phrases, axis=1, keepdims=True)
    doc = np.array([[0.98, 0.2]]) / np.linalg.norm([0.98, 0.2])
    present = sparse.csr_matrix(np.ones((1, 3)))
    plain = mmr_keywords(doc, phrases, present, top_n=2, diversity=0.0)
    diverse = mmr_keywords(doc, phrases, present, top_n=2, diversity=0.7)
    assert plain[0].tolist() == [1, 0]  # by similarity alone the near-duplicate comes second
    assert diverse[0].tolist() == [1, 2]  # MMR trades it for the different phrase
    absent = mmr_keywords(doc, phrases, sparse.csr_matrix(np.array([[0, 1, 0]])), top_n=2)
    assert absent[0].tolist() == [1, -1]
    with pytest.raises(ValueError, match="diversity"):
        mmr_keywords(doc, phrases, present, diversity=1.5)


def test_class_tfidf_by_hand() -> None:
    # two topics; term counts per doc over terms (a, b, c); docs 0,1 -> topic 0, doc 2 -> topic 1
    counts = sparse.csr_matrix(np.array([[2, 0, 1], [1, 0, 0], [0, 3, 1]]))
    weights = class_tfidf(counts, np.array([0, 0, 1]), 2)
    # class counts: t0 = (3, 0, 1) [4 words], t1 = (0, 3, 1) [4 words]; A = 4; f = (3, 3, 2)
    idf = np.log(1 + 4 / np.array([3.0, 3.0, 2.0]))
    np.testing.assert_allclose(weights, [[3 / 4 * idf[0], 0, 1 / 4 * idf[2]], [0, 3 / 4 * idf[1], 1 / 4 * idf[2]]])
    assert topic_terms(weights, np.array(["a", "b", "c"]), 2) == [["a", "c"], ["b", "c"]]


def test_cache_serves_known_texts_and_embeds_only_new_ones(tmp_path: Path) -> None:
    encoder = CountingEncoder()
    first = CachedEmbedder(encoder, EmbeddingCache(tmp_path / "m1"))
    a = first(["x", "y", "x"])
    assert encoder.seen == ["x", "y"] and first.stats()["features/cache_hit_rate"] == 0.0
    second = CachedEmbedder(encoder, EmbeddingCache(tmp_path / "m1"))  # a new run, same model
    b = second(["y", "x", "z"])
    assert encoder.seen == ["x", "y", "z"]  # only the changed text was embedded
    np.testing.assert_array_equal(b[:2], a[[1, 0]])
    assert second.hits == 2 and second.misses == 1
    other_model = CachedEmbedder(encoder, EmbeddingCache(tmp_path / "m2"))  # another identity: nothing reused
    other_model(["x"])
    assert encoder.seen[-1] == "x" and other_model.hits == 0


class BatchEncoder(CountingEncoder):
    """A text's vector depends on the call that encodes it (as a real batch's padding can shift it)."""

    def encode(self, texts, progress=None):
        return super().encode(texts) + np.float32(len(texts))


@pytest.mark.parametrize("cached", [True, False])
def test_started_calls_give_the_vectors_of_calls_one_after_another(tmp_path: Path, cached: bool) -> None:
    calls = [["a", "b", "a"], ["b", "c"], ["c", "d", "a"]]
    eager_encoder, later_encoder = BatchEncoder(), BatchEncoder()
    eager = CachedEmbedder(eager_encoder, EmbeddingCache(tmp_path / "eager") if cached else None)
    expected = [eager(texts) for texts in calls]
    queued: list[tuple[list[str], int]] = []

    def submit(texts: list[str], priority: int = 0):
        queued.append((texts, priority))
        return functools.cache(lambda: later_encoder.encode(texts))  # computed when first read

    later = CachedEmbedder(later_encoder, EmbeddingCache(tmp_path / "later") if cached else None, submit=submit)
    pending = [later.start(texts, priority=-i) for i, texts in enumerate(calls)]
    assert later_encoder.seen == []  # nothing computed before it is read
    got = [pending[i]() for i in (2, 0, 1)]  # read out of order
    for want, have in zip(expected, [got[1], got[2], got[0]]):
        np.testing.assert_array_equal(have, want)
    assert sorted(later_encoder.seen) == sorted(eager_encoder.seen)  # each text encoded as often, in the same calls
    assert (later.hits, later.misses) == (eager.hits, eager.misses)
    sent = [(sorted(texts), priority) for texts, priority in queued]
    if cached:  # b in the second call and a, c in the third take the earlier calls' vectors
        assert sent == [(["a", "b"], 0), (["c"], -1), (["d"], -2)]
        assert len(list((tmp_path / "later").glob("shard-*.npz"))) == 3
    else:
        assert sent == [(["a", "b"], 0), (["b", "c"], -1), (["a", "c", "d"], -2)]


def test_encode_seconds_count_overlapping_calls_once() -> None:
    from recause.tasks.features.cache import _covered

    assert _covered([(0.0, 2.0), (1.0, 3.0), (5.0, 6.0), (5.5, 5.7)]) == pytest.approx(4.0)
    assert _covered([]) == 0.0


SHARD = re.compile(r"shard-[0-9a-f]{32}\.npz")
TEMP = re.compile(r"shard-[0-9a-f]{32}\.tmp")


def test_cache_ignores_interrupted_writes(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    kept = cache.add(text_hashes(["kept"]), np.ones((1, 8), np.float32))
    planted = tmp_path / f"shard-{'ab' * 16}.tmp"  # what a killed writer leaves: the writer's own temp name
    planted.write_bytes(b"half a file")
    found, vectors = EmbeddingCache(tmp_path).lookup(text_hashes(["kept", "new"]), 8)
    assert found.tolist() == [True, False] and vectors[0].sum() == 8.0
    later = EmbeddingCache(tmp_path)
    added = later.add(text_hashes(["new"]), np.full((1, 8), 2.0, np.float32))
    # the stray temp file is neither read, nor renamed, nor counted as a shard
    assert set(tmp_path.iterdir()) == {kept, added, planted} and planted.read_bytes() == b"half a file"
    assert set(tmp_path.glob("*.npz")) == {kept, added}
    found, vectors = EmbeddingCache(tmp_path).lookup(text_hashes(["kept", "new"]), 8)
    assert found.all() and vectors[:, 0].tolist() == [1.0, 2.0]


def test_cache_writes_one_shard_per_add_and_a_crash_leaves_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = EmbeddingCache(tmp_path / "model")
    first = cache.add(text_hashes(["a", "b"]), np.ones((2, 8), np.float64))
    assert first.parent == tmp_path / "model" and SHARD.fullmatch(first.name)
    assert cache.add(text_hashes([]), np.zeros((0, 8), np.float32)) is None  # nothing to add: no file
    second = cache.add(text_hashes(["c"]), np.full((1, 8), 2.0, np.float32))
    assert SHARD.fullmatch(second.name) and second != first
    assert set((tmp_path / "model").iterdir()) == {first, second}  # one shard per add, no temp file left
    with np.load(second) as shard:
        assert shard["hashes"].tolist() == text_hashes(["c"]).tolist()
        assert shard["vectors"].dtype == np.float32 and (shard["vectors"] == 2.0).all()

    def crash(handle, **arrays) -> None:  # the disk fills half-way through the shard
        handle.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        cache.add(text_hashes(["lost"]), np.ones((1, 8), np.float32))
    monkeypatch.undo()
    assert set((tmp_path / "model").glob("*.npz")) == {first, second}  # no shard from the failed write
    leftovers = set((tmp_path / "model").iterdir()) - {first, second}
    assert all(TEMP.fullmatch(p.name) for p in leftovers)  # at most the writer's ignored temp file
    for reader in (cache, EmbeddingCache(tmp_path / "model")):  # the writer itself and a later run
        found, vectors = reader.lookup(text_hashes(["a", "c", "lost"]), 8)
        assert found.tolist() == [True, True, False] and vectors[:, 0].tolist() == [1.0, 2.0, 0.0]
    retry = cache.add(text_hashes(["lost"]), np.full((1, 8), 3.0, np.float32))
    assert set((tmp_path / "model").glob("*.npz")) == {first, second, retry}
    for reader in (cache, EmbeddingCache(tmp_path / "model")):
        found, vectors = reader.lookup(text_hashes(["lost", "b"]), 8)
        assert found.all() and vectors[:, 0].tolist() == [3.0, 1.0]


@pytest.mark.slow
def test_features_on_the_smoke_world(tmp_path: Path) -> None:
    from recause.models.world.scm import WorldConfig
    from recause.tasks.data.synthetic import load_synthetic
    from recause.tasks.data.split import SplitConfig, split_dataset
    from recause.tasks.features.encoder import load_encoder

    data = load_synthetic(WorldConfig(n_users=200, n_items=300, n_topics=8, slate_size=5, mean_sessions=6), seed=1)
    split = split_dataset(data, SplitConfig(), seed=1)
    loaded = load_encoder(None, cache_dir=tmp_path)
    truth = np.argmax(data.world.phi[split.items.ids.astype(int)], axis=1)
    config = FeaturesConfig(n_topics=8, cold_item_fraction=0.3)
    features = build_text_features(split, data.items, data.users, CachedEmbedder(loaded.encoder, None), config,
                                   has_timestamps=True, true_item_topics=truth, seed=1)
    assert features.metrics["features/topic_ami"] > 0.5
    assert features.metrics["features/cold_recall_at_20"] > 2 * features.metrics["features/cold_recall_at_20_random"]
    assert features.item_vectors.shape == (split.n_items, 384) and (features.item_topics >= 0).all()
    assert all(len(k) == 5 for k in features.item_keywords)
    # keywords come from the item's own text
    docs = item_documents(data.items.set_index("item_id").loc[split.items.ids].reset_index()).str.lower()
    assert all(all(word in docs[i] for kw in features.item_keywords[i] for word in kw.split()) for i in range(20))
