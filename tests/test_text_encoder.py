"""The text encoder: meaning, agreement across backends and with sentence-transformers, batching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recause.models.text.encoder import length_batches, pad_batch
from recause.tasks.features import encoder as encoder_module
from recause.tasks.features.encoder import load_encoder, model_identity, resolve_model, submit_sharded

PAIR = ["red running shoes", "crimson jogging sneakers", "tax law textbook"]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("encoder-cache")


@pytest.fixture(scope="module")
def onnx_encoder(cache_dir):
    return load_encoder(None, backend="onnx", cache_dir=cache_dir)


@pytest.fixture(scope="module")
def torch_encoder(cache_dir):
    return load_encoder(None, backend="torch", cache_dir=cache_dir)


@pytest.mark.parametrize("which", ["onnx_encoder", "torch_encoder"])
def test_similar_meaning_is_closer(which: str, request) -> None:
    vectors = request.getfixturevalue(which).encoder.encode(PAIR)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    shoes, sneakers, law = vectors
    assert shoes @ sneakers > shoes @ law + 0.2


def test_backends_agree_and_match_sentence_transformers(onnx_encoder, torch_encoder) -> None:
    texts = PAIR + ["A cozy pick for knitting fans, with yarn and a scarf.", "x", "Into jazz; lately looking at vinyl."] * 3
    a = onnx_encoder.encoder.encode(texts)
    b = torch_encoder.encoder.encode(texts)
    assert (a * b).sum(axis=1).min() > 0.99999
    st = pytest.importorskip("sentence_transformers")
    reference = st.SentenceTransformer(resolve_model(None), device="cpu").encode(texts, normalize_embeddings=True)
    assert (a * reference).sum(axis=1).min() > 0.9999


def test_duplicates_and_order_are_preserved(onnx_encoder) -> None:
    texts = ["b", "a longer text about sailing and anchors", "b", "a"]
    out = onnx_encoder.encoder.encode(texts)
    np.testing.assert_array_equal(out[0], out[2])
    single = onnx_encoder.encoder.encode(["a longer text about sailing and anchors"])
    assert float(out[1] @ single[0]) > 0.99999


def test_sharded_encoding_gives_the_vectors_of_encode(onnx_encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [f"item {i}: " + "knitting yarn " * (i % 41) for i in range(400)] + ["item 3: " + "knitting yarn " * 3, ""]
    expected = onnx_encoder.encoder.encode(texts)
    shards: list[int] = []

    def elsewhere(fn, items, common, *, priority=0):  # a worker's fresh session, shards computed last-first
        shards.append(len(items))
        monkeypatch.setattr(encoder_module, "_BACKENDS", {})
        return [fn(item, **common) for item in items[::-1]][::-1]

    sharded = submit_sharded(onnx_encoder.encoder, onnx_encoder.onnx, elsewhere, texts, n_shards=4)()
    np.testing.assert_array_equal(sharded, expected)
    assert len(shards) == 1 and 2 <= shards[0] <= 4  # 7 batches of 64, cut by padded tokens: whole batches a shard
    assert submit_sharded(onnx_encoder.encoder, onnx_encoder.onnx, elsewhere, [])().shape == (0, expected.shape[1])


def test_batches_group_similar_lengths_and_pad_to_the_longest() -> None:
    lengths = np.array([3, 9, 4, 9, 1])
    batches = length_batches(lengths, 2)
    assert [b.tolist() for b in batches] == [[1, 3], [2, 0], [4]]
    ids, mask = pad_batch([[5, 6, 7], [8]], np.array([3, 1]), pad_id=0)
    np.testing.assert_array_equal(ids, [[5, 6, 7], [8, 0, 0]])
    np.testing.assert_array_equal(mask, [[1, 1, 1], [1, 0, 0]])


def test_identity_changes_with_weights_and_settings(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"weights-1")
    first = model_identity(str(folder), 256)
    assert model_identity(str(folder), 128) != first
    (folder / "model.safetensors").write_bytes(b"weights-2")
    assert model_identity(str(folder), 256) != first
    assert model_identity("some/hub-id", 256) != model_identity("other/hub-id", 256)


def test_quantized_path_stays_close(cache_dir, onnx_encoder) -> None:
    quantized = load_encoder(None, backend="onnx", quantize=True, cache_dir=cache_dir)
    assert quantized.backend == "onnx-int8"
    exact, approx = onnx_encoder.encoder.encode(PAIR), quantized.encoder.encode(PAIR)
    assert (exact * approx).sum(axis=1).min() > 0.99
    assert approx[0] @ approx[1] > approx[0] @ approx[2]
