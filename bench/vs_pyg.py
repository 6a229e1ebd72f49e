"""Our LightGCN training step against PyG's ``LightGCN`` trained the way PyG's example does, on CPU.

Both models: dim 64, 3 layers, BPR with one uniformly drawn negative item per positive, L2 1e-4
on the batch's ID embeddings, Adam lr 1e-3, batches of 8,192 positive edges, one torch thread,
the same synthetic graph (``_lightgcn.synthetic_graph``: ~1 M unique interactions by default, 90 %
train / 10 % held out).

- **PyG**: ``torch_geometric.nn.models.LightGCN`` as in ``examples/lightgcn.py``: a shuffled
  ``DataLoader`` over the train edges, ``model(edge_index, edge_label_index)`` (full-graph
  ``get_embedding`` every step: ``LGConv`` message passing with ``gcn_norm`` recomputed per call),
  random negative items, ``model.recommendation_loss(..., node_id=edge_label_index.unique(),
  lambda_reg=1e-4)``.
- **Recause**: the real training path: ``recause.models.gnn.encoders.LightGCNEncoder`` on a ``BipartiteGraph``
  (CSR propagation, custom backward), ``recause.models.gnn.heads.CausalRecommender`` with one ``exposed``
  head on a ``shared`` encoder, ``CausalModule`` with ``Objective("bpr")``, fitted by
  ``lightning.Trainer`` on ``recause.models.gnn.batches.EpochBatches`` of ``bpr_batch``.

A step is timed from the end of the previous step to the end of its own (batch building,
forward, backward, Adam, ``float(loss)``), so data loading is included for both. A full PyG epoch
takes over half an hour on one core at 1 M interactions, so each model runs the same fixed number
of steps (``--steps 20``; 0 = a full epoch each) and epoch time = mean step time (first
``--warmup`` steps left out) × steps per epoch. Both models are also checked to *learn*: mean
loss of the first vs the last steps, and Recall@20 on the held-out interactions of 2,000 sampled
users (train items excluded) before and after, next to a popularity ranker. Also printed: one
full-graph propagation forward + backward of each model (``prop_ms``), our step split by simple
timers, and with ``--profile`` torch.profiler's top ops of our step.

Run: ``.venv/bin/python bench/vs_pyg.py`` (``--interactions 1000000 --steps 20``, ~8 min on a
2-core box); ends with ``RESULT epoch_time_ratio=<ours / PyG>`` (target <= 0.5).
The graph, both trainers, the timers and the evaluation live in ``bench/_lightgcn.py``, which
``bench/gpu_train.py`` runs on a GPU.
"""

from __future__ import annotations

import _common  # noqa: F401  (one thread, offline, recause importable: before numpy and torch)

import argparse

import torch

from _lightgcn import (
    RUN_COLUMNS,
    HeldOut,
    popularity_score,
    profile_table,
    propagation_seconds,
    run_rows,
    step_breakdown,
    synthetic_graph,
    train_ours,
    train_pyg,
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interactions", type=int, default=1_000_000, help="unique interactions (train + held out)")
    parser.add_argument("--steps", type=int, default=20, help="steps timed per model (0 = one full epoch each)")
    parser.add_argument("--warmup", type=int, default=2, help="first steps left out of the mean")
    parser.add_argument("--batch-size", type=int, default=8192)
    parser.add_argument("--eval-users", type=int, default=2000, help="users sampled for Recall@20")
    parser.add_argument("--profile", action="store_true", help="also print torch.profiler's top ops of our step")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    device = torch.device("cpu")
    print(f"{_common.header()} torch={torch.__version__}", flush=True)
    graph = synthetic_graph(args.interactions, seed=args.seed)
    print(f"graph: {graph.describe()} ({graph.seconds:.1f} s)", flush=True)
    held_out = HeldOut(graph, args.eval_users, device, args.seed)
    popularity = held_out.recall(popularity_score(graph, device))
    steps = args.steps or -(-graph.n_train // args.batch_size)
    runs = []
    for train in (train_pyg, train_ours):
        run = train(graph, steps, device, held_out, batch_size=args.batch_size, seed=args.seed)
        runs.append(run)
        print(f"{run.name}: {1e3 * run.mean_step(args.warmup):.0f} ms/step over {len(run.step_seconds)} steps, "
              f"load {run.load[0]:.2f} -> {run.load[1]:.2f}", flush=True)
    pyg, ours = runs
    propagation = {"pyg": propagation_seconds(pyg.embed, device, reps=1, warmup=0),
                   "recause": propagation_seconds(ours.embed, device, reps=2, warmup=0)}
    parts = step_breakdown(ours.module, ours.train_loader, device, reps=2)
    print(f"\nour step outside Lightning, ms: " + ", ".join(f"{k} {v:.0f}" for k, v in parts.items())
          + f"; of which propagation fwd+bwd {1e3 * propagation['recause']:.0f}; Lightning step "
          f"{1e3 * ours.mean_step(args.warmup):.0f} (load {_common.load_average():.2f})")
    if args.profile:
        print(profile_table(ours.module, ours.train_loader, device))
    print(f"\nbatch {args.batch_size}, dim 64, 3 layers, 1 negative, 1 thread; {len(pyg.step_seconds)} steps timed per "
          f"model, first {args.warmup} left out; s_per_epoch = mean step x steps per epoch"
          f"{' (a full epoch was run)' if not args.steps else ''}; prop_ms = one full-graph propagation forward + "
          f"backward; popularity Recall@20 = {popularity:.4f}")
    print(_common.table(run_rows(runs, args.warmup, propagation), RUN_COLUMNS))
    ratio = ours.epoch_seconds(args.warmup) / pyg.epoch_seconds(args.warmup)
    print(f"RESULT epoch_time_ratio={ratio:.3f} ours_s_per_epoch={ours.epoch_seconds(args.warmup):.1f} "
          f"pyg_s_per_epoch={pyg.epoch_seconds(args.warmup):.1f} threads=1 interactions={args.interactions}")


if __name__ == "__main__":
    main()
