"""Settings of the text-feature stage."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from recause.tasks.config import Section


class FeaturesConfig(Section):
    """Text encoder, cache, keywords, topics and the cold-start evaluation."""

    enabled: bool = Field(True, description="Run the text-feature stage (skipped with a note when the data have no text).")
    model: str | None = Field(
        None, description="Encoder: a local folder or a hub id you can reach. None = the bundled all-MiniLM-L6-v2."
    )
    backend: Literal["auto", "torch", "onnx"] = Field(
        "auto", description="auto = torch on CUDA (fp16/bf16), ONNX Runtime with fused kernels on CPU."
    )
    quantize: bool = Field(False, description="Dynamic int8 weights (ONNX backend only): faster, slightly less exact.")
    batch_size: int = Field(64, ge=1, le=4096, description="Texts per forward pass.")
    max_length: int = Field(256, ge=8, le=8192, description="Tokens kept per text.")
    cache: bool = Field(True, description="Reuse embeddings from <cache_dir>/embeddings (keyed by model and text).")
    n_topics: int = Field(20, ge=2, le=500, description="Topics (k-means clusters of item embeddings).")
    n_keywords: int = Field(5, ge=1, le=50, description="Keywords per item and per user.")
    keyword_diversity: float = Field(0.5, ge=0.0, le=1.0, description="MMR λ: 0 = most similar, 1 = most diverse.")
    max_phrases: int = Field(5000, ge=10, description="Size of the candidate phrase vocabulary (1–2-grams).")
    text_weight: float = Field(0.5, ge=0.0, le=1.0, description="Share of a user's own text in their vector (rest: history).")
    recency_half_life_days: float = Field(14.0, gt=0, description="Half-life of a past engagement's weight.")
    cold_item_fraction: float = Field(0.1, gt=0.0, lt=1.0, description="Share of items made cold for the cold-start evaluation.")
