"""The Bayes ceiling of uplift CP@10 on the synthetic world: what the log allows any learner (issue 11).

Issue 11 asks for the causal GNN's uplift CP@10 ≥ 0.7 × the oracle's. The oracle knows τ; a learner
sees the log. Per setting (the same world, split and parts as ``bench/causal_synthetic.py``) this
bench scores rankings that know more than any learner of the log can:

- ``ceiling``: a learner that knows everything but the items' quality q (interests, topics,
  popularity, activity, the equations and their coefficients) and ranks by E[τ | impressions] under
  the world's prior of q given popularity (:mod:`recause.models.world.ceiling`); it reads the train
  and validation impressions (everything our models see, validation included through the epoch
  choice and the calibration). Ranking by E[τ | log] maximises the expected CP@10 given that
  information, so a learner that knows less cannot expect more;
- ``ceiling_marginal``: the same with q's marginal N(0, 1) prior (popularity's hint at quality unused);
- ``quality_from_popularity``: the prior alone (no impression outcomes read);
- ``true_p1``: ranking by the true P(Y=1 | do(E=1)) (relevance, not uplift);
- ``quality_unknown``: τ with every item's quality set to its mean 0.

Each as a share of the oracle's CP@10, with the ceiling's posterior-mean quality's correlation with
the true quality. Pure numpy on the world's truth, 15–35 s a setting on one thread.

Run: ``.venv/bin/python bench/uplift_ceiling.py [--settings 1:1.0 2:1.0 3:1.0 1:2.0] [--out rows.json]``.
Prints a table and ``RESULT min_ceiling=… per_setting=…``.
"""

from __future__ import annotations

import _common  # noqa: F401  (one thread, offline, recause importable: before numpy and torch)

import argparse
import json
import time
from dataclasses import replace

import numpy as np


def cp_at(tau: np.ndarray, score: np.ndarray, k: int = 10) -> float:
    """Mean true τ of each row's top-k by ``score``: (n, m), (n, m) -> float (the harness's CP@k)."""
    from recause.models.metrics import causal_precision, top_k_items

    return causal_precision(np.take_along_axis(tau, top_k_items(score, k), axis=1))


def run_setting(seed: int, confounding: float, block: int = 256) -> dict:
    from recause.models.world import ceiling
    from recause.models.world.scm import WorldConfig
    from recause.tasks.data.split import SplitConfig, split_dataset
    from recause.tasks.data.synthetic import load_synthetic

    start = time.perf_counter()
    dataset = load_synthetic(WorldConfig(confounding=confounding), seed=seed)
    split = split_dataset(dataset, SplitConfig(), seed=seed)
    world = dataset.world
    seen = [part[part["exposed"]] for part in (split.train, split.val)]
    users = np.concatenate([split.users.ids[p["user"].to_numpy()] for p in seen]).astype(np.int64)
    items = np.concatenate([split.items.ids[p["item"].to_numpy()] for p in seen]).astype(np.int64)
    slots = np.concatenate([p["position"].to_numpy(dtype=np.int64) - 1 for p in seen])
    outcomes = np.concatenate([p["outcome"].to_numpy(dtype=np.float64) for p in seen])
    grid = ceiling.quality_grid()
    posteriors = {prior: ceiling.quality_posterior(world, users, items, slots, outcomes, prior, grid)
                  for prior in ("popularity", "marginal")}
    none = np.array([], dtype=np.int64)  # no impressions read: the popularity prior alone
    posteriors["prior"] = ceiling.quality_posterior(world, none, none, none, none.astype(np.float64), "popularity", grid)
    world_users = split.users.ids.astype(np.int64)
    world_items = split.items.ids.astype(np.int64)
    sums: dict[str, float] = {}
    zero = replace(world, quality=np.zeros_like(world.quality))  # every item at the mean quality
    for lo in range(0, len(world_users), block):
        u = world_users[lo : lo + block]
        p0, p1 = world.potential_outcomes(u, world_items)
        tau = p1 - p0
        scores = {
            "oracle": tau,
            "ceiling": ceiling.posterior_uplift(world, u, posteriors["popularity"], grid)[:, world_items],
            "ceiling_marginal": ceiling.posterior_uplift(world, u, posteriors["marginal"], grid)[:, world_items],
            "quality_from_popularity": ceiling.posterior_uplift(world, u, posteriors["prior"], grid)[:, world_items],
            "true_p1": p1,
        }
        q0, q1 = zero.potential_outcomes(u, world_items)
        scores["quality_unknown"] = q1 - q0
        for name, score in scores.items():
            sums[name] = sums.get(name, 0.0) + cp_at(tau, score) * len(u)
    cp = {name: value / len(world_users) for name, value in sums.items()}
    quality = ceiling.quality_of_posterior(posteriors["popularity"], grid)
    row = {"seed": seed, "confounding": confounding, "impressions_read": int(users.size),
           "clicks_per_item_median": float(np.median(np.bincount(items, weights=outcomes, minlength=world.n_items))),
           "cp_oracle": cp["oracle"], "quality_corr": float(np.corrcoef(quality, world.quality)[0, 1])}
    for name in ("ceiling", "ceiling_marginal", "quality_from_popularity", "true_p1", "quality_unknown"):
        row[f"{name}_vs_oracle"] = cp[name] / cp["oracle"]
    row["seconds"] = time.perf_counter() - start
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", default=["1:1.0", "2:1.0", "3:1.0", "1:2.0"],
                        help="seed:confounding pairs (default: bench/causal_synthetic.py's held-out settings)")
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    print(_common.header(), flush=True)
    rows = []
    for setting in args.settings:
        seed, confounding = setting.split(":")
        row = run_setting(int(seed), float(confounding))
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)
    print(_common.table(rows, ["seed", "confounding", "cp_oracle", "ceiling_vs_oracle", "ceiling_marginal_vs_oracle",
                               "quality_from_popularity_vs_oracle", "true_p1_vs_oracle", "quality_unknown_vs_oracle",
                               "quality_corr", "clicks_per_item_median", "seconds"]))
    per = " ".join(f"{r['seed']}:{r['confounding']:g}={r['ceiling_vs_oracle']:.3f}" for r in rows)
    print(f"RESULT min_ceiling={min(r['ceiling_vs_oracle'] for r in rows):.3f} per_setting={per}")


if __name__ == "__main__":
    main()
