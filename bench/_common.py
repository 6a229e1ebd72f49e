"""The prelude of every benchmark: one thread, offline, ``recause`` importable, shared helpers.

Import this module first, before numpy or torch load (``import _common``: the benchmark's own folder
is on ``sys.path`` when a script runs). On import it

- pins every math library to one thread (``OMP_NUM_THREADS`` and friends; a value already set
  wins) — the benchmarks report the thread count they ran with;
- keeps Hugging Face offline (the bundled MiniLM is read from its package, nothing is downloaded);
- makes ``recause`` importable: the installed package if there is one, else the repository this
  file sits in, registered as the package ``recause`` (its root ``__init__.py``), so a benchmark
  also runs from a bare checkout, e.g. ``bench/gpu_train.py`` on the GPU machine;
- silences the known start-up warnings (sparse CSR beta, few data-loader workers, deprecations).

Helpers: :func:`threads`, :func:`load_average`, :func:`header`, :func:`table`, :func:`text_features`;
locations :data:`ROOT`, :data:`DATA` (``RECAUSE_DATA_DIR`` or ``../shared/data``) and :data:`CACHE`.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import importlib.util  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("RECAUSE_DATA_DIR", ROOT.parent / "shared" / "data"))
CACHE = ROOT / "outputs" / "cache"

warnings.filterwarnings("ignore", category=UserWarning, message=".*(Sparse|sparse|num_workers|pyg-lib).*")
warnings.filterwarnings("ignore", category=DeprecationWarning)


def ensure_recause(root: Path = ROOT) -> ModuleType:
    """The ``recause`` package: the installed one, else ``root`` (the repository) registered as it.

    The repository root is the package (``pyproject.toml`` maps ``recause`` to it), so without an
    installation its ``__init__.py`` is loaded as ``recause`` with the root as the package path, and
    ``recause.models...`` resolve to the folders below. Nothing else is put on ``sys.path``: the
    top-level folders (``models``, ``tasks``, ...) are never importable on their own. An installed
    ``recause`` from another checkout is used, with a warning that says where it comes from.
    """
    try:
        import recause

        origin = Path(recause.__file__).resolve().parent if getattr(recause, "__file__", None) else None
        if origin != root.resolve():
            warnings.warn(f"benchmarks in {root} import the installed recause from {origin}", stacklevel=2)
    except ImportError:
        spec = importlib.util.spec_from_file_location("recause", root / "__init__.py",
                                                      submodule_search_locations=[str(root)])
        recause = importlib.util.module_from_spec(spec)
        sys.modules["recause"] = recause
        try:
            spec.loader.exec_module(recause)
        except BaseException:
            del sys.modules["recause"]
            raise
    return recause


ensure_recause()


def threads() -> int:
    """torch's intra-op threads, set to one (the count every benchmark reports)."""
    import torch

    torch.set_num_threads(1)
    return torch.get_num_threads()


def load_average() -> float:
    """1-minute load average (the other core may be busy: reported next to every timing)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def header() -> str:
    """The first line of the GNN benchmarks: torch threads (set to one) and the machine's load."""
    return f"threads={threads()} load={load_average():.2f}"


def text_features(split, dataset, seed: int = 0):
    """The text-feature stage's output for ``split`` (bundled MiniLM, ONNX on CPU, on-disk cache), or None.

    The same functions the pipeline's ``features`` task calls, without Prefect.
    """
    from recause.tasks.features.build import build_text_features
    from recause.tasks.features.cache import CachedEmbedder, EmbeddingCache
    from recause.tasks.features.config import FeaturesConfig
    from recause.tasks.features.encoder import load_encoder

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
