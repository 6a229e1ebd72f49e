"""Shared helpers of the causal-GNN benchmarks: thread pinning, machine load, text features, tables.

Import this module before torch: it pins every math library to one thread (the benchmarks report
the thread count they ran with).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import sys  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("RECAUSE_DATA_DIR", ROOT.parent / "shared" / "data"))
CACHE = ROOT / "outputs" / "cache"

warnings.filterwarnings("ignore", category=UserWarning, message=".*(Sparse|sparse|num_workers|pyg-lib).*")
warnings.filterwarnings("ignore", category=DeprecationWarning)


def threads() -> int:
    import torch

    torch.set_num_threads(1)
    return torch.get_num_threads()


def load_average() -> float:
    """1-minute load average (the other core may be busy: reported next to every timing)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def text_features(split, dataset, seed: int = 0):
    """The text-feature stage's output for ``split`` (bundled MiniLM, ONNX on CPU, on-disk cache), or None.

    The same functions the pipeline's ``features`` task calls, without Prefect.
    """
    from tasks.embedding_cache import CachedEmbedder, EmbeddingCache
    from tasks.features import FeaturesConfig, build_text_features
    from tasks.text_model import load_encoder

    config = FeaturesConfig()
    loaded = load_encoder(config.model, backend=config.backend, batch_size=config.batch_size,
                          max_length=config.max_length, threads=1, cache_dir=CACHE)
    embed = CachedEmbedder(loaded.encoder, EmbeddingCache(CACHE / "embeddings" / loaded.identity), progress_from=10**9)
    return build_text_features(split, dataset.items, dataset.users, embed, config,
                               has_timestamps=dataset.meta.has_timestamps, seed=seed)


def table(rows: list[dict], columns: list[str]) -> str:
    """A plain-text table of ``rows`` (dicts) in ``columns`` order; floats to 4 decimals."""
    def fmt(v) -> str:
        if isinstance(v, float):
            return f"{v:.4f}"
        return str(v)

    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)
