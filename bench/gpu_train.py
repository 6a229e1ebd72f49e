r"""Our LightGCN training against PyG's on one GPU, and both against the propagation's bandwidth floor.

One prepared run for a lent NVIDIA H200 (torch 2.11, lightning 2.6, torch-geometric 2.8, no
prefect / mlflow / great_expectations there, and the project not installed: ``_common`` registers
the checkout as the package ``recause``): it imports only ``recause.models`` (through
:mod:`_lightgcn`, shared with ``vs_pyg.py``), numpy, torch, lightning and torch-geometric.
Same comparison as ``vs_pyg.py`` (dim 64, 3 layers, batch 8,192, one negative, BPR + L2 1e-4,
Adam 1e-3; PyG's ``LightGCN`` trained as ``examples/lightgcn.py`` does; ours through
``lightning.Trainer`` with ``EpochBatches`` of ``bpr_batch``), in fp32, on a seeded power-law
graph of ``--size`` unique interactions (8 M by default: 400 k users, 200 k items, 90 % train).

Timing: every step is timed between ``torch.cuda.synchronize()`` calls, data loading included;
s/epoch = mean step time (warm-up left out) × steps per epoch. PyG trains first for ``--epochs``
epochs or until its share of ``--max-seconds`` is spent; ours then trains the same number of
steps, so the held-out Recall@20 (a seeded sample of users, train items excluded) compares
equal training. Also measured: one full-graph propagation forward + backward of each model,
our step split by simple timers, and torch.profiler's top ops of our step.

Bandwidth floor: a CSR product :math:`\hat A x` with ``nnz`` stored entries over ``n`` nodes and
``d`` fp32 features moves at least

.. math:: B_{\text{SpMM}} = \text{nnz}\,(4 + 8 + 4d) + 8(n+1) + 4nd \ \text{bytes}

(per entry its value, its int64 column and the gathered source row, counted once per entry as if
no row were reused from cache; per node its row pointer and its output row). A training step
makes 2L of them (L forward, L backward: :math:`\hat A` is symmetric), so the floor is
:math:`2L\,B_{\text{SpMM}} \times \text{steps per epoch} / W` with W the HBM bandwidth
(4.8 TB/s for the H200; ``--bandwidth``). ``fraction_of_floor`` = floor / measured (1 = at the
floor). nnz = 2 × train interactions (both directions). The floor's functions are
``_lightgcn.spmm_bytes`` and ``_lightgcn.floor_seconds_per_step``.

Run on the GPU machine: ``python bench/gpu_train.py`` (``--size 8000000 --max-seconds 300``);
on a CPU, ``--tiny`` runs the same code at 6 k interactions in seconds (the test does). Prints a
table last, writes ``gpu_train.json`` under ``$OUT`` (default ``outputs/gpu``), ends with
``RESULT epoch_time_ratio_vs_pyg=... fraction_of_floor=...``.
"""

from __future__ import annotations

import _common  # noqa: F401  (one CPU thread, recause importable from the checkout: before numpy and torch)

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path

import torch

import _lightgcn as V
from _lightgcn import floor_seconds_per_step, spmm_bytes

H200_BYTES_PER_SECOND = 4.8e12
PYG_REFERENCE = "PyG LightGCN, example-style, on the H200 at 8.0 M interactions: 127.5 ms/step, 124 s/epoch, 10 GB peak"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The run's settings; ``--tiny`` shrinks it to a CPU smoke run."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=8_000_000, help="unique interactions (train + held out)")
    parser.add_argument("--epochs", type=float, default=1.0, help="epochs of PyG's training (ours: the same steps)")
    parser.add_argument("--steps", type=int, default=0, help="train PyG this many steps instead of --epochs (0 = off)")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="wall budget of the whole run")
    parser.add_argument("--pyg-share", type=float, default=0.6, help="share of the training budget PyG may use")
    parser.add_argument("--batch-size", type=int, default=8192)
    parser.add_argument("--warmup", type=int, default=5, help="first steps left out of the mean")
    parser.add_argument("--eval-users", type=int, default=10_000, help="users sampled for Recall@20")
    parser.add_argument("--profile-steps", type=int, default=2, help="steps of ours under torch.profiler (0 = off)")
    parser.add_argument("--bandwidth", type=float, default=H200_BYTES_PER_SECOND, help="memory bandwidth, bytes/s")
    parser.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    parser.add_argument("--tiny", action="store_true", help="6 k interactions, batch 1024, 100 users: a CPU smoke run")
    parser.add_argument("--out", default=None, help="output folder (default $OUT, else outputs/gpu)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.tiny:
        args.size, args.batch_size, args.eval_users, args.warmup = 6_000, 1024, 100, 1
    return args


def main(argv: list[str] | None = None) -> dict:
    """Both trainings, the timings against the floor, ``gpu_train.json``; returns the details written."""
    args = parse_args(argv)
    start = time.perf_counter()
    end = start + args.max_seconds
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.processor() or 'unknown'})"
    threads = _common.threads()
    print(f"device={name} torch={torch.__version__} threads={threads} load={_common.load_average():.2f}", flush=True)

    graph = V.synthetic_graph(args.size, seed=args.seed)
    print(f"graph: {graph.describe()} ({graph.seconds:.1f} s)", flush=True)
    held_out = V.HeldOut(graph, args.eval_users, device, args.seed)
    popularity = held_out.recall(V.popularity_score(graph, device))
    steps_per_epoch = -(-graph.n_train // args.batch_size)
    target = args.steps or max(1, math.ceil(args.epochs * steps_per_epoch))
    reserve = 0.15 * args.max_seconds  # evaluation, propagation timing, profile, report
    kw = dict(batch_size=args.batch_size, seed=args.seed)

    budget = end - reserve - time.perf_counter()
    pyg = V.train_pyg(graph, target, device, held_out, deadline=time.perf_counter() + args.pyg_share * budget, **kw)
    steps = len(pyg.step_seconds)
    print(f"pyg: {steps} steps, {1e3 * pyg.mean_step(args.warmup):.1f} ms/step, peak {pyg.peak_memory_gb:.1f} GB", flush=True)
    reps = 5 if device.type == "cuda" else 1
    propagation = {"pyg": V.propagation_seconds(pyg.embed, device, reps=reps)}
    pyg.module = pyg.embed = None  # free PyG's model before ours trains
    if device.type == "cuda":
        torch.cuda.empty_cache()

    ours = V.train_ours(graph, steps, device, held_out, deadline=end - reserve, **kw)
    print(f"recause: {len(ours.step_seconds)} steps, {1e3 * ours.mean_step(args.warmup):.1f} ms/step, "
          f"peak {ours.peak_memory_gb:.1f} GB", flush=True)
    propagation["recause"] = V.propagation_seconds(ours.embed, device, reps=reps)
    breakdown = V.step_breakdown(ours.module, ours.train_loader, device, reps=3)
    print("our step outside Lightning, ms: " + ", ".join(f"{k} {v:.1f}" for k, v in breakdown.items())
          + f"; propagation fwd+bwd {1e3 * propagation['recause']:.1f}", flush=True)
    profile = ""
    if args.profile_steps > 0:
        profile = V.profile_table(ours.module, ours.train_loader, device, steps=args.profile_steps)
        print(profile, flush=True)

    graph_nnz, n_nodes = ours.module.graph.n_edges, graph.n_users + graph.n_items
    floor_step = floor_seconds_per_step(graph_nnz, n_nodes, 64, 3, args.bandwidth)
    floor_epoch = floor_step * steps_per_epoch
    rows = V.run_rows([pyg, ours], args.warmup, propagation)
    for row, run in zip(rows, (pyg, ours)):
        row["floor_fraction"] = floor_epoch / run.epoch_seconds(args.warmup)
        row["prop_floor_fraction"] = floor_step / propagation[run.name]
    ratio = ours.epoch_seconds(args.warmup) / pyg.epoch_seconds(args.warmup)
    result = {"epoch_time_ratio_vs_pyg": ratio, "fraction_of_floor": rows[1]["floor_fraction"]}
    details = {
        "device": name, "device_type": device.type, "torch": torch.__version__, "threads": threads, "args": vars(args),
        "graph": {"n_users": graph.n_users, "n_items": graph.n_items, "train": graph.n_train,
                  "held_out": int(graph.test_user.size), "nnz": graph_nnz, "generation_s": graph.seconds},
        "floor": {"formula": "2L * (nnz*(4 + 8 + 4d) + 8(n+1) + 4nd) bytes per step / bandwidth",
                  "bytes_per_step": 2 * 3 * spmm_bytes(graph_nnz, n_nodes, 64), "bandwidth": args.bandwidth,
                  "seconds_per_step": floor_step, "seconds_per_epoch": floor_epoch},
        "steps_per_epoch": steps_per_epoch, "popularity_recall_at_20": popularity, "rows": rows,
        "step_seconds": {r.name: r.step_seconds for r in (pyg, ours)}, "losses": {r.name: r.losses for r in (pyg, ours)},
        "breakdown_ms": breakdown, "profile": profile, "pyg_reference": PYG_REFERENCE, "result": result,
        "wall_s": time.perf_counter() - start,
    }
    out = Path(args.out or os.environ.get("OUT") or _common.ROOT / "outputs" / "gpu")
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_train.json").write_text(json.dumps(details, indent=1, default=float))

    print(f"\n{name}; {graph.describe()}; batch {args.batch_size}, dim 64, 3 layers, fp32; {steps} PyG steps, "
          f"{len(ours.step_seconds)} of ours (first {args.warmup} left out), s_per_epoch = mean step x {steps_per_epoch} "
          f"steps; floor {1e3 * floor_step:.2f} ms/step = {floor_epoch:.2f} s/epoch at {args.bandwidth / 1e12:.1f} TB/s; "
          f"popularity Recall@20 {popularity:.4f}; reference: {PYG_REFERENCE}; wall {details['wall_s']:.0f} s")
    print(_common.table(rows, ["model", "steps", "ms_per_step", "median_ms", "prop_ms", "s_per_epoch", "floor_fraction",
                               "prop_floor_fraction", "loss_first", "loss_last", "recall20_before", "recall20_after",
                               "peak_gb"]))
    print(f"RESULT epoch_time_ratio_vs_pyg={ratio:.4g} fraction_of_floor={result['fraction_of_floor']:.4g} "
          f"ours_s_per_epoch={ours.epoch_seconds(args.warmup):.4g} pyg_s_per_epoch={pyg.epoch_seconds(args.warmup):.4g} "
          f"device={device.type} size={args.size}", flush=True)
    return details


if __name__ == "__main__":
    main()
