"""Sentence embeddings from a transformer encoder: mean pooling over tokens, L2-normalised.

For texts :math:`t_1..t_n`, token states :math:`h_{j,1..L_j} \\in \\mathbb{R}^d` from the encoder's last
layer, the embedding is :math:`e_j = \\bar h_j / \\lVert \\bar h_j \\rVert` with
:math:`\\bar h_j = \\frac{1}{L_j} \\sum_l h_{j,l}` — what sentence-transformers' all-MiniLM-L6-v2
computes with ``normalize_embeddings=True``.

Speed comes from the batching, not from tricks with the maths:

- texts are tokenised once, in one call, and deduplicated (a repeated text is embedded once);
- batches are formed from texts of similar length (sorted by token count), padded only to the
  longest text of the batch (dynamic padding), and the attention mask is built with one comparison;
- the forward pass is a *backend*: :class:`TorchBackend` (any ``transformers`` encoder; on CUDA in
  fp16/bf16) or :class:`OnnxBackend` (the same graph exported to ONNX and run by ONNX Runtime on
  CPU, whose graph optimiser fuses LayerNorm and GELU and whose GEMMs run near the machine's peak).

Loading weights, exporting and caching live in :mod:`recause.tasks.features.encoder`; this module does no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


class Backend(Protocol):
    """``forward(input_ids (B, L) int64, attention_mask (B, L) int64) -> (B, d) float32`` unit vectors."""

    dim: int

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray: ...


def mean_pool_normalise(hidden: Any, attention_mask: Any) -> Any:
    """Masked mean over tokens, then L2 normalisation. ``hidden`` (B, L, d), mask (B, L) -> (B, d).

    Works on torch tensors (the exported ONNX graph contains exactly these operations).
    """
    import torch

    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * mask).sum(dim=1)
    mean = summed / mask.sum(dim=1).clamp(min=1.0)
    return torch.nn.functional.normalize(mean.float(), dim=1)


def pooled_encoder(model: Any) -> Any:
    """A ``transformers`` encoder + pooling as one ``torch.nn.Module`` (what is exported to ONNX)."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self, encoder: Any) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return mean_pool_normalise(out.last_hidden_state, attention_mask)

    return Pooled(model).eval()


@dataclass
class TorchBackend:
    """Runs a ``transformers`` encoder with torch; ``dtype`` fp16/bf16 on CUDA, fp32 on CPU."""

    model: Any
    device: str = "cpu"
    dtype: Any = None
    dim: int = 0

    def __post_init__(self) -> None:
        import torch

        self.dtype = self.dtype or torch.float32
        self.pooled = pooled_encoder(self.model).to(self.device, dtype=self.dtype)
        self.dim = self.dim or int(self.model.config.hidden_size)

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            ids = torch.from_numpy(input_ids).to(self.device)
            mask = torch.from_numpy(attention_mask).to(self.device)
            return self.pooled(ids, mask, torch.zeros_like(ids)).cpu().numpy().astype(np.float32)


@dataclass
class OnnxBackend:
    """Runs an exported encoder (inputs ``input_ids``, ``attention_mask``, ``token_type_ids``) with ONNX Runtime."""

    session: Any
    dim: int

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": np.zeros_like(input_ids)}
        return self.session.run(None, feeds)[0]


def length_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar length, longest first. ``lengths``: (n,) token counts."""
    order = np.argsort(-lengths, kind="stable")
    return [order[s : s + batch_size] for s in range(0, len(order), batch_size)]


def pad_batch(token_ids: Sequence[Sequence[int]], lengths: np.ndarray, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(input_ids, attention_mask), both (B, max length) int64, from ragged token id lists."""
    width = int(lengths.max())
    ids = np.full((len(token_ids), width), pad_id, dtype=np.int64)
    for row, tokens in enumerate(token_ids):
        ids[row, : len(tokens)] = tokens
    mask = (np.arange(width)[None, :] < lengths[:, None]).astype(np.int64)
    return ids, mask


@dataclass(frozen=True)
class EncodePlan:
    """Texts tokenised once, deduplicated and batched, ready for forward passes anywhere.

    ``rows[b]`` (B,): the distinct texts of batch ``b`` (longest texts first); :meth:`padded` gives its
    input_ids and attention_mask (B, L_b) int64 when it is needed; ``inverse`` (n,) maps each text to
    its distinct row.
    """

    n_unique: int
    inverse: np.ndarray
    rows: list[np.ndarray]
    tokens: list[list[int]]
    lengths: np.ndarray
    pad_id: int

    def padded(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.rows[batch]
        return pad_batch([self.tokens[i] for i in rows], self.lengths[rows], self.pad_id)


@dataclass
class TextEncoder:
    """Embeds texts: ``encode(texts) -> (n, dim)`` float32 unit vectors.

    ``tokenize(texts) -> list of token-id lists`` (truncated to the model's maximum length);
    ``backend`` does the forward pass. ``progress(done, total)`` is called after every batch.
    ``plan`` and ``assemble`` are ``encode`` without its forward passes, so they can run elsewhere
    (the features stage's shards): the same batches give the same vectors.
    """

    tokenize: Callable[[list[str]], list[list[int]]]
    backend: Backend
    pad_id: int = 0
    batch_size: int = 64

    @property
    def dim(self) -> int:
        return self.backend.dim

    def encode(self, texts: Sequence[str], progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        plan = self.plan(texts)
        outputs, done = [], 0
        for batch, rows in enumerate(plan.rows):  # padded one batch at a time
            outputs.append(self.backend.forward(*plan.padded(batch)))
            done += len(rows)
            if progress is not None:
                progress(done, plan.n_unique)
        return self.assemble(plan, outputs)

    def plan(self, texts: Sequence[str]) -> EncodePlan:
        """The distinct texts' batches (similar lengths together; padded to their longest on demand)."""
        unique, inverse = np.unique(np.asarray(texts, dtype=object).astype(str), return_inverse=True)
        tokens = self.tokenize(unique.tolist()) if len(unique) else []
        lengths = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=len(tokens))
        rows = length_batches(lengths, self.batch_size) if len(unique) else []
        return EncodePlan(len(unique), inverse.reshape(-1), rows, tokens, lengths, self.pad_id)

    def assemble(self, plan: EncodePlan, outputs: Sequence[np.ndarray]) -> np.ndarray:
        """(n, dim) vectors of the planned texts from each batch's forward output, in the plan's batch order."""
        out = np.empty((plan.n_unique, self.dim), dtype=np.float32)
        for rows, vectors in zip(plan.rows, outputs, strict=True):
            out[rows] = vectors
        return out[plan.inverse]

    def token_counts(self, texts: Sequence[str]) -> np.ndarray:
        """Tokens per text after truncation (for FLOP accounting). Shape (n,)."""
        return np.fromiter((len(t) for t in self.tokenize(list(texts))), dtype=np.int64)


def encoder_flops(token_counts: np.ndarray, n_layers: int, hidden: int, intermediate: int) -> float:
    """Multiply-add FLOPs of a BERT-style encoder forward over texts of ``token_counts`` tokens
    (unpadded): per layer and token 2·(4h² + 2h·f) for the projections and feed-forward, plus
    2·2·L·h for the attention scores and mixing."""
    tokens = token_counts.astype(np.float64)
    dense = 2.0 * (4 * hidden**2 + 2 * hidden * intermediate) * tokens.sum()
    attention = 4.0 * hidden * (tokens**2).sum()
    return float(n_layers * (dense + attention))
