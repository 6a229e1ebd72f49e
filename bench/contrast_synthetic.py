"""The pipeline's contrastive evaluation against the synthetic world's exact truth, over many seeds.

    .venv/bin/python bench/contrast_synthetic.py [--seeds 20] [--first-seed 0] [--n-items 300]

Runs exactly what the flow's ``contrast`` stage runs (``recause.tasks.contrast.stage.run_contrast`` on
the baselines stage's policy set: the test split's logged impressions as rounds, the logging policy
as control, the cross-fitted reward model, DR as estimator of record, paired bootstrap) with the
pipeline's default interventions that need no text (random, popularity, long-tail = logging minus
popularity, oracle by true relevance, oracle by true uplift), on a world of ``--n-users`` ×
``--n-items``, with the five estimators without a λ (``bench/_ope.py``'s ``PLAIN``).

Per seed: DR's relative error per policy (control included), whether each policy's 95% interval
covers its true value, and Kendall τ between estimated and true lifts over the control. Seeds
0..19 are evaluation seeds; nothing was tuned on them. Ends with ``RESULT dr_mean_relative_error=...
dr_max_relative_error=... share_within_5pct=... ci_coverage=... kendall_tau_mean=... kendall_tau_min=...``.
"""

from __future__ import annotations

import _common  # noqa: F401  (one thread, offline, recause importable: before numpy)

import argparse
import os
import time

import numpy as np
import pandas as pd

from _ope import PLAIN
from recause.models.world.scm import WorldConfig
from recause.tasks.baselines import BaselinesConfig, build_baselines
from recause.tasks.contrast.config import ContrastConfig
from recause.tasks.contrast.interventions import DEFAULT_INTERVENTIONS, PolicySwap
from recause.tasks.contrast.stage import run_contrast
from recause.tasks.data.split import SplitConfig, split_dataset
from recause.tasks.data.synthetic import load_synthetic

NO_TEXT = {"random", "popularity", "long-tail", "oracle-uplift"}


def interventions() -> list:
    """The default interventions that need no text, and the oracle by true relevance."""
    specs = [s for s in DEFAULT_INTERVENTIONS if s.name in NO_TEXT]
    return specs + [PolicySwap(name="oracle-relevance", policy="oracle_relevance")]


def run_seed(seed: int, world: WorldConfig, n_bootstrap: int) -> tuple[pd.DataFrame, dict]:
    """One world: the stage's table (one row per policy, with the truth) and its metrics."""
    data = load_synthetic(world, seed=seed)
    split = split_dataset(data, SplitConfig(), seed=seed)
    baselines = build_baselines(split, data, BaselinesConfig(), seed=seed)
    config = ContrastConfig(interventions=interventions(), n_bootstrap=n_bootstrap, estimators=list(PLAIN))
    result = run_contrast(split, data, [baselines], None, config, seed)
    if isinstance(result, str):
        raise SystemExit(f"seed {seed}: the contrast stage did not run: {result}")
    table = result.table.set_index("policy")
    table["seed"] = seed
    table["dr_relative_error"] = (table["dr"] / table["true_value"] - 1).abs()
    table["dr_covers"] = (table["dr_low"] <= table["true_value"]) & (table["true_value"] <= table["dr_high"])
    return table, result.metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--n-users", type=int, default=2000)
    parser.add_argument("--n-items", type=int, default=300)
    parser.add_argument("--n-bootstrap", type=int, default=500)
    args = parser.parse_args()
    world = WorldConfig(n_users=args.n_users, n_items=args.n_items)
    tables, taus, start = [], [], time.perf_counter()
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        table, metrics = run_seed(seed, world, args.n_bootstrap)
        tables.append(table)
        taus.append(metrics["interventions/kendall_tau"])
        print(f"seed {seed}: DR rel. error max {table['dr_relative_error'].max():.3f}, covered {table['dr_covers'].mean():.2f}, "
              f"Kendall tau {taus[-1]:.2f}  ({time.perf_counter() - start:.0f} s)", flush=True)
    every = pd.concat(tables).reset_index()
    per_policy = every.groupby("policy").agg(
        true_value=("true_value", "mean"), dr_rel_error_mean=("dr_relative_error", "mean"),
        dr_rel_error_max=("dr_relative_error", "max"), within_5pct=("dr_relative_error", lambda e: float((e <= 0.05).mean())),
        ci_coverage=("dr_covers", "mean"), true_lift=("true_lift", "mean"), estimated_lift=("lift", "mean"),
    )
    print(f"\nworld {args.n_users} users x {args.n_items} items, slate {world.slate_size}, seeds {args.first_seed}..{args.first_seed + args.seeds - 1}, "
          f"n_bootstrap {args.n_bootstrap}, threads {os.environ['OMP_NUM_THREADS']}")
    print(per_policy.round(4).to_string())
    print(f"Kendall tau of lifts: mean {np.mean(taus):.3f}, min {np.min(taus):.3f}")
    print(
        f"RESULT dr_mean_relative_error={every['dr_relative_error'].mean():.4f} dr_max_relative_error={every['dr_relative_error'].max():.4f} "
        f"share_within_5pct={(every['dr_relative_error'] <= 0.05).mean():.3f} ci_coverage={every['dr_covers'].mean():.3f} "
        f"kendall_tau_mean={np.mean(taus):.3f} kendall_tau_min={np.min(taus):.3f}"
    )


if __name__ == "__main__":
    main()
