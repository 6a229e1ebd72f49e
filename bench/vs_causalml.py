"""Recause's causal GNN against CausalML's and EconML's meta-learners on the synthetic world's truth.

    bash bench/setup_peers.sh causal                   # once: CausalML + EconML + LightGBM in .venv-causal
    .venv/bin/python bench/vs_causalml.py [--settings 1:1.0 2:1.0 3:1.0 1:2.0] [--out rows.json]

Per setting (world seed s, confounding c) the data are built as ``bench/causal_synthetic.py`` builds
them: ``load_synthetic(WorldConfig(confounding=c), seed=s)``, ``split_dataset(..., SplitConfig(), seed=s)``
(per-user 8:1:1) and the text-feature stage's output (``_common.text_features``).

Rows of the meta-learners, from ``split.train`` alone (what a practitioner would build from the log):

- treated, T = 1: one row per (user, item) pair with at least one impression in train; Y = 1 if any
  of its train impressions was positive (whatever its slots and number of impressions);
- control, T = 0: ``--control-ratio`` (3) × as many pairs drawn uniformly, without replacement, from
  the pairs with no impression in train (seeded by s); Y = 1 if the pair is an organic find in train.

So the peers' τ̂ estimates the effect of "shown during the logged period" on "engaged in train",
which is not the world's τ (the effect of the top slot): impressions in lower slots are examined
less (κ_k = k^-η), some pairs are shown several times, and the 8:1:1 split keeps ~80 % of each
pair's log in train. PEHE (a scale error) carries that mismatch; CP@10 and AUUC (rankings) do not.

Features of a pair, the same for every learner: the user's and the item's text-feature vectors each
reduced to ``--pca-dim`` (16) dimensions (PCA fitted on the split's users / items, whose vectors
come from train only), their full vectors' dot product, log(1 + the item's positives in train) and
log(1 + the user's rows in train). Every base model is LightGBM with 100 trees, 31 leaves, depth 6
(``bench/_causal_peers_runner.py``, run in ``.venv-causal``): CausalML's S/T/X/DR/R regressors
(the X, DR and R learners share one boosted propensity model) and EconML's DRLearner and LinearDML
(2-fold cross-fitting, their own treatment models). The same settings everywhere, chosen before any
run and not tuned; seed 0 is left for tuning and is not among the defaults.

Recause trains its causal GNN and its GNN T-learner on the same split and features with
``bench/causal_synthetic.py``'s ``CAUSAL`` settings (chosen on seed 0).

Scored on all split users × the full catalogue against the world (exact):

- CP@10 of ranking by τ̂ (``causal_metrics_of``), and over the oracle's (true τ);
- PEHE = RMSE of τ̂ against τ (``truth_metrics``);
- AUUC = Σ_blocks qini_area(τ̂, τ) / Σ_blocks qini_area(τ, τ) (``recause.models.metrics.qini_area``):
  1 for the oracle's ranking, 0 for random, negative when harmful items rank first.

Prints one row per learner per setting (CP@10, CP@10 / oracle, PEHE, AUUC, fit seconds), then the
whole table and ``RESULT best_peer_cp=... gnn_cp=... min_gnn_cp_vs_best_peer=...
min_gnn_cp_minus_best_peer=... gnn_pehe_below_best_peer_all=... settings=...``: best_peer_cp and gnn_cp are means over settings of
the best peer's (by CP@10 in that setting) and the causal GNN's CP@10; min_gnn_cp_vs_best_peer the
worst ratio of the two over settings (inf in a setting where the best peer's CP@10 is <= 0: every peer
then recommends items the recommendation harms on average, and a ratio means nothing) and
min_gnn_cp_minus_best_peer the worst difference; gnn_pehe_below_best_peer_all whether the GNN's PEHE
is below every peer's in every setting. ``--from-json rows.json`` re-prints the table and ``RESULT`` of
an earlier run's ``--out``.
"""

from __future__ import annotations

import _common  # noqa: F401  (one thread, offline, recause importable: before numpy and torch)

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from causal_synthetic import CAUSAL

PEERS_PYTHON = _common.ROOT / ".venv-causal" / "bin" / "python"
RUNNER = Path(__file__).resolve().parent / "_causal_peers_runner.py"
PEERS = ("causalml_s", "causalml_t", "causalml_x", "causalml_dr", "causalml_r", "econml_dr", "econml_ldml")
USER_BLOCK = 500  # users per block when scoring a grid


@dataclass(frozen=True)
class MetaRows:
    """The meta-learners' training rows: split indices ``users``, ``items``, ``treatment`` 0/1 and
    ``outcome`` 0/1, all (n,), treated rows first."""

    users: np.ndarray
    items: np.ndarray
    treatment: np.ndarray
    outcome: np.ndarray

    def counts(self) -> dict[str, int]:
        treated = self.treatment == 1
        return {"treated": int(treated.sum()), "control": int((~treated).sum()),
                "treated_positive": int(self.outcome[treated].sum()), "control_positive": int(self.outcome[~treated].sum())}


def meta_learner_rows(train: pd.DataFrame, n_users: int, n_items: int, control_ratio: float, seed: int) -> MetaRows:
    """Treated rows = pairs exposed in ``train`` (Y = any impression positive); control rows =
    ``control_ratio`` × as many pairs never exposed in ``train``, uniform without replacement (Y = an
    organic find in ``train``). ``train`` needs integer ``user``, ``item`` and boolean ``exposed``, ``positive``."""
    pair = train["user"].to_numpy(np.int64) * n_items + train["item"].to_numpy(np.int64)
    exposed = train["exposed"].to_numpy(bool)
    positive = train["positive"].to_numpy(bool)
    treated, first = np.unique(pair[exposed], return_inverse=True)
    treated_y = np.zeros(len(treated), dtype=bool)
    np.logical_or.at(treated_y, first, positive[exposed])
    n_control = int(round(control_ratio * len(treated)))
    if n_control > n_users * n_items - len(treated):
        raise ValueError(f"{n_control} control pairs asked for, only {n_users * n_items - len(treated)} were never exposed")
    order = np.random.default_rng([seed, 41]).permutation(n_users * n_items)
    control = order[~np.isin(order, treated, assume_unique=True)][:n_control]
    control_y = np.isin(control, pair[~exposed & positive])
    flat = np.concatenate([treated, control])
    return MetaRows(users=flat // n_items, items=flat % n_items,
                    treatment=np.repeat([1, 0], [len(treated), len(control)]).astype(np.int8),
                    outcome=np.concatenate([treated_y, control_y]).astype(np.float32))


def pca(vectors: np.ndarray, dim: int) -> np.ndarray:
    """(n, dim) float32: ``vectors`` (n, d) centred and projected on their top ``dim`` principal axes."""
    centred = vectors - vectors.mean(axis=0, keepdims=True)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    return (centred @ axes[:dim].T).astype(np.float32)


def entity_features(train: pd.DataFrame, user_vectors: np.ndarray, item_vectors: np.ndarray, dim: int) -> dict[str, np.ndarray]:
    """Per-entity inputs of the runner's pair features: ``user_x`` (n_users, dim + 1) = PCA of the user
    vectors and log(1 + rows in train), ``item_x`` (n_items, dim + 1) = PCA of the item vectors and
    log(1 + positives in train), and the full vectors ``user_emb``, ``item_emb`` for their dot product."""
    n_users, n_items = len(user_vectors), len(item_vectors)
    activity = np.bincount(train["user"].to_numpy(np.int64), minlength=n_users)
    popularity = np.bincount(train.loc[train["positive"], "item"].to_numpy(np.int64), minlength=n_items)
    return {"user_x": np.hstack([pca(user_vectors, dim), np.log1p(activity)[:, None]]).astype(np.float32),
            "item_x": np.hstack([pca(item_vectors, dim), np.log1p(popularity)[:, None]]).astype(np.float32),
            "user_emb": user_vectors.astype(np.float32), "item_emb": item_vectors.astype(np.float32)}


def run_peers(rows: MetaRows, entity: dict[str, np.ndarray], learners: list[str], seed: int) -> dict[str, np.ndarray]:
    """Fit ``learners`` in ``.venv-causal`` (``_causal_peers_runner.py``); its outputs (τ̂ grids, seconds)."""
    if not PEERS_PYTHON.is_file():
        raise SystemExit(f"{PEERS_PYTHON} not found: run `bash bench/setup_peers.sh causal` first")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    with tempfile.TemporaryDirectory(prefix="vs_causalml_") as tmp:
        inputs, outputs = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(inputs, users=rows.users, items=rows.items, treatment=rows.treatment, outcome=rows.outcome,
                 learners=np.array(learners), seed=np.array(seed), **entity)
        done = subprocess.run([str(PEERS_PYTHON), str(RUNNER), str(inputs), str(outputs)], env=env, stdout=sys.stderr)
        if done.returncode != 0:  # its progress and traceback went to stderr as it ran
            raise SystemExit(f"the peer runner failed (exit {done.returncode}); its traceback is above")
        with np.load(outputs) as f:
            return {k: f[k] for k in f.files}


def grid_of(uplift, n_users: int) -> np.ndarray:
    """(n_users, n_items) float32: a score function of split user indices evaluated block by block."""
    return np.concatenate([np.asarray(uplift(np.arange(lo, min(lo + USER_BLOCK, n_users))), dtype=np.float32)
                           for lo in range(0, n_users, USER_BLOCK)])


def normalised_auuc(tau_hat: np.ndarray, tau: np.ndarray) -> float:
    """Σ_blocks qini_area(τ̂, τ) / Σ_blocks qini_area(τ, τ), both (n_users, n_items): 1 = oracle, 0 = random."""
    from recause.models.metrics import qini_area

    blocks = [slice(lo, lo + USER_BLOCK) for lo in range(0, len(tau), USER_BLOCK)]
    oracle = sum(qini_area(tau[b], tau[b]) for b in blocks)
    return sum(qini_area(tau_hat[b], tau[b]) for b in blocks) / oracle


def score_uplift(name: str, tau_hat: np.ndarray, tau: np.ndarray, split, world) -> dict[str, float]:
    """CP@10, PEHE and normalised AUUC of the grid ``tau_hat`` (n_users, n_items) against the world."""
    from recause.models.policies.scores import FunctionPolicy
    from recause.tasks.evaluate import EvaluationConfig, causal_metrics_of
    from recause.tasks.train.report import truth_metrics

    uplift = lambda users: tau_hat[users]  # noqa: E731
    return {"cp_at_10": causal_metrics_of(FunctionPolicy(name, uplift), split, world, EvaluationConfig())["causal/cp_at_10"],
            "pehe": truth_metrics(world, split, uplift)["causal/pehe"],
            "auuc": normalised_auuc(tau_hat, tau)}


def run_setting(seed: int, confounding: float, args: argparse.Namespace) -> list[dict]:
    """One world: the oracle, the peers and (unless ``--no-gnn``) the GNN causal model and T-learner, scored."""
    from recause.models.world.scm import WorldConfig
    from recause.tasks.data.split import SplitConfig, split_dataset
    from recause.tasks.data.synthetic import load_synthetic
    from recause.tasks.train.config import TrainConfig
    from recause.tasks.train.fit import train_model

    dataset = load_synthetic(WorldConfig(confounding=confounding), seed=seed)
    split = split_dataset(dataset, SplitConfig(), seed=seed)
    features = _common.text_features(split, dataset, seed=seed)
    world = dataset.world
    tau = grid_of(lambda users: world.uplift(split.users.ids[users].astype(np.int64), split.items.ids.astype(np.int64)),
                  split.n_users)
    rows = meta_learner_rows(split.train, split.n_users, split.n_items, args.control_ratio, seed)
    print(f"setting {seed}:{confounding}: {split.n_users} users × {split.n_items} items, rows {rows.counts()}", flush=True)

    grids: dict[str, tuple[np.ndarray, float, float]] = {"oracle": (tau, 0.0, 0.0)}
    entity = entity_features(split.train, features.user_vectors, features.item_vectors, args.pca_dim)
    peers = run_peers(rows, entity, args.learners, seed)
    for k, name in enumerate(peers["learners"]):
        grids[str(name)] = (peers["tau_hat"][k], float(peers["fit_seconds"][k]), float(peers["predict_seconds"][k]))
    if not args.no_gnn:
        for name, variant in (("recause_gnn_causal", "causal"), ("recause_gnn_t_learner", "t_learner")):
            start = time.perf_counter()
            model = train_model(split, dataset.meta, TrainConfig(variant=variant, **json.loads(args.train)),
                                features=features, seed=seed, threads=1)
            fit_seconds = time.perf_counter() - start
            start = time.perf_counter()
            grids[name] = (grid_of(model.uplift, split.n_users), fit_seconds, time.perf_counter() - start)

    out = []
    for name, (tau_hat, fit_seconds, predict_seconds) in grids.items():
        row = {"seed": seed, "confounding": confounding, "learner": name, **score_uplift(name, tau_hat, tau, split, world),
               "fit_s": fit_seconds, "predict_s": predict_seconds, "mean_tau_hat": float(tau_hat.mean())}
        out.append(row)
    oracle_cp = out[0]["cp_at_10"]
    for row in out:
        row["cp_vs_oracle"] = row["cp_at_10"] / oracle_cp
    out[0]["versions"] = str(peers["versions"])
    return out


COLUMNS = ["seed", "confounding", "learner", "cp_at_10", "cp_vs_oracle", "pehe", "auuc", "fit_s"]


def summary(rows: list[dict]) -> str:
    """The ``RESULT`` line (see the module docstring)."""
    settings = sorted({(r["seed"], r["confounding"]) for r in rows})
    best_cp, gnn_cp, ratios, gaps, pehe_below = [], [], [], [], []
    for s in settings:
        here = [r for r in rows if (r["seed"], r["confounding"]) == s]
        peers = [r for r in here if r["learner"].startswith(("causalml_", "econml_"))]
        best = max(peers, key=lambda r: r["cp_at_10"])
        best_cp.append(best["cp_at_10"])
        gnn = [r for r in here if r["learner"] == "recause_gnn_causal"]
        if gnn:
            gnn_cp.append(gnn[0]["cp_at_10"])
            gaps.append(gnn[0]["cp_at_10"] - best["cp_at_10"])
            # a ratio over a best peer that harms (CP@10 <= 0) means nothing: inf, as causal_synthetic.py does
            ratios.append(gnn[0]["cp_at_10"] / best["cp_at_10"] if best["cp_at_10"] > 0 else float("inf"))
            pehe_below.append(gnn[0]["pehe"] < min(r["pehe"] for r in peers))
    fmt = lambda v: f"{v:.4f}" if np.isfinite(v) else str(v)  # noqa: E731
    mean = lambda v: float(np.mean(v)) if v else float("nan")  # noqa: E731
    return (f"RESULT best_peer_cp={fmt(mean(best_cp))} gnn_cp={fmt(mean(gnn_cp))} "
            f"min_gnn_cp_vs_best_peer={fmt(min(ratios) if ratios else float('nan'))} "
            f"min_gnn_cp_minus_best_peer={fmt(min(gaps) if gaps else float('nan'))} "
            f"gnn_pehe_below_best_peer_all={all(pehe_below) if pehe_below else 'n/a'} settings={len(settings)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", default=["1:1.0", "2:1.0", "3:1.0", "1:2.0"],
                        help="seed:confounding pairs (seed 0 is for tuning, not reported)")
    parser.add_argument("--learners", nargs="+", default=list(PEERS), choices=PEERS, help="peer learners to fit")
    parser.add_argument("--control-ratio", type=float, default=3.0, help="control rows per treated row")
    parser.add_argument("--pca-dim", type=int, default=16, help="PCA dimensions of the user and of the item vectors")
    parser.add_argument("--train", default=json.dumps(CAUSAL), help="JSON TrainConfig overrides of the GNN causal model "
                        "and T-learner (default: bench/causal_synthetic.py's CAUSAL)")
    parser.add_argument("--no-gnn", action="store_true", help="score the peers and the oracle only")
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    parser.add_argument("--from-json", default=None, help="print the table and RESULT of rows an earlier --out wrote; run nothing")
    args = parser.parse_args()
    if args.from_json:
        with open(args.from_json) as f:
            rows = json.load(f)
        print(_common.table(rows, COLUMNS))
        print(summary(rows))
        return
    print(_common.header(), flush=True)
    start = time.perf_counter()
    rows: list[dict] = []
    for setting in args.settings:
        seed, confounding = setting.split(":")
        here = run_setting(int(seed), float(confounding), args)
        print(_common.table(here, COLUMNS), flush=True)
        rows += here
        if args.out:
            with open(args.out, "w") as f:
                json.dump(rows, f, indent=1)
    print(f"\npeers: {rows[0]['versions']}; GBM 100 trees, 31 leaves, depth 6; control ratio {args.control_ratio}; "
          f"PCA {args.pca_dim}; wall {time.perf_counter() - start:.0f} s, load {_common.load_average():.2f}")
    print(_common.table(rows, COLUMNS))
    print(summary(rows))


if __name__ == "__main__":
    main()
