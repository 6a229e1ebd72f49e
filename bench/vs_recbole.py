"""Recause's GNN ranker against RecBole 1.2.1's LightGCN and BPR on one MovieLens-100K split.

    bash bench/setup_peers.sh recbole                 # once: RecBole 1.2.1 in .venv-recbole
    .venv/bin/python bench/vs_recbole.py [--seed 0] [--ours '{"lr": 0.005, ...}'] [--recbole-epochs 400]

1. MovieLens-100K is read from the copy inside the recbole 1.2.1 wheel (``load_movielens()``, never
   downloaded) and split once, per user 8:1:1 as RecBole's ``RS: [0.8, 0.1, 0.1]`` cuts it, every
   rating a positive (``recause.tasks.data.split.split_dataset``, seeded). The three parts are written as RecBole
   atomic files ``ml-100k.{train,valid,test}.inter`` into a temporary folder (nothing under the
   repository), and RecBole reads them through ``benchmark_filename``: both sides train, validate
   and test on the same rows (the row counts RecBole reports are checked).
2. RecBole (a subprocess in ``.venv-recbole``, ``bench/_recbole_runner.py``) trains LightGCN and BPR
   with its own trainer: dim 64, batch 2048, Adam 1e-3, one uniform negative, LightGCN with 3 layers
   and reg_weight 1e-5, early stopping on validation NDCG@20 (``--eval-step`` epochs between checks,
   ``--stopping-step`` checks of patience), test on the best checkpoint.
3. Recause fits the variant ``naive`` (``recause.tasks.train.plan.plan_model`` +
   ``recause.tasks.train.fit.fit_model``); MovieLens has no exposure log, so the plan is the BPR
   ranker on the LightGCN encoder whatever the variant, its unset settings by the ranking regime. The
   harness (``recause.tasks.evaluate.ranking_metrics_of``) scores the test part by full ranking with train
   and validation positives masked, which is what RecBole's full-sort evaluation masks for test
   (``history_item`` = the user's train and valid items); validation masks train positives on both.
4. Quality runs overlap (RecBole's two in the background while ours trains here), so timing is a
   separate phase, one job at a time: RecBole LightGCN and ours alternate for ``--timing-rounds``
   rounds of ``--timing-epochs`` epochs without evaluation, then ours as configured and RecBole BPR.
   Seconds per *training* epoch = optimisation steps and batch sampling, no evaluation.
   ``epoch_time_ratio`` = ours / RecBole LightGCN at the same size: dim 64, batch 2048, 3 layers, one
   negative, ID embeddings only (ours' other settings as configured).

Everything runs on one thread; the 1-minute load average is printed beside every timing (other
jobs may share the two cores). Ours was tuned on the validation part only (``--ours`` default).
Ends with ``RESULT ours_recall_at_20=... recbole_lightgcn_recall_at_20=... recbole_bpr_recall_at_20=...
ours_ndcg_at_20=... recbole_lightgcn_ndcg_at_20=... epoch_time_ratio=...``.
"""

from __future__ import annotations

import _common  # noqa: F401  (one thread, offline, recause importable: before numpy and torch)

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

RECBOLE_PYTHON = _common.ROOT / ".venv-recbole" / "bin" / "python"
RUNNER = Path(__file__).resolve().parent / "_recbole_runner.py"
PARTS = (("train", "train"), ("val", "valid"), ("test", "test"))  # ours -> RecBole's benchmark names
SIZE = {"dim": 64, "batch_size": 2048, "num_layers": 3, "negatives": 1}  # the size both sides are timed at
# chosen on validation NDCG@20 (seed 0), bilinear head: lr {1e-3, 2e-3, 5e-3, 1e-2}, negatives {1, 4, 8, 16}, l2 {1e-4,
# 1e-3, 3e-3}, num_layers {2, 3}, init_std {0.03, 0.1}, text {off, on}, dropout {0, 0.1, 0.3, 0.5}, weight_decay {0, 1e-3};
# then head "dot" (LightGCN's inner product; 2026-12-03, val NDCG@20): RecBole's recipe (lr 1e-3, 1 negative, l2 1e-5)
# 0.2744, lr 2e-3 0.2748, the bilinear's tuned settings 0.2655; lr 2e-3 + l2 1e-4 with 4 negatives 0.2795, with 8
# 0.2813, with 16 0.2822 (1.8x the epoch time of 8 for +0.0009), 4 negatives at lr 5e-3 0.2789, at l2 1e-3 0.2737;
# text on (8 negatives) 0.2806
OURS = {"head": "dot", "lr": 2e-3, "negatives": 8, "l2": 1e-4, "use_text": False, "dropout": 0.0, "num_layers": 3,
        "batch_size": 2048, "init_std": 0.1, "patience": 10, "val_every": 2, "epochs": 300}
METRICS = ("recall_at_10", "ndcg_at_10", "recall_at_20", "ndcg_at_20")


def movielens_split(seed: int):
    """MovieLens-100K from the recbole wheel and its seeded per-user 8:1:1 split."""
    from recause.tasks.data.movielens import load_movielens
    from recause.tasks.data.split import SplitConfig, split_dataset

    dataset = load_movielens()
    split = split_dataset(dataset, SplitConfig(), seed=seed)
    rows = np.concatenate([getattr(split, p)["user"].to_numpy() * split.n_items + getattr(split, p)["item"].to_numpy()
                           for p, _ in PARTS])
    if np.unique(rows).size != rows.size:
        raise ValueError("MovieLens-100K holds repeated (user, item) pairs; RecBole and the harness would mask them differently")
    return dataset, split


def export_atomic(split, folder: Path) -> Path:
    """Write the split's parts as RecBole atomic files ``folder/ml-100k/ml-100k.{train,valid,test}.inter``."""
    out = folder / "ml-100k"
    out.mkdir(parents=True, exist_ok=True)
    for part, name in PARTS:
        rows = getattr(split, part)  # the parts hold indices; the atomic files name the raw ids
        frame = pd.DataFrame({"user_id:token": split.users.ids[rows["user"].to_numpy()],
                              "item_id:token": split.items.ids[rows["item"].to_numpy()]})
        frame.to_csv(out / f"ml-100k.{name}.inter", sep="\t", index=False)
    return out


def start_recbole(folder: Path, model: str, settings: dict) -> tuple[subprocess.Popen, Path, float]:
    """Start one RecBole run in its venv (stdout and stderr to files in ``folder``)."""
    if not RECBOLE_PYTHON.is_file():
        raise SystemExit(f"{RECBOLE_PYTHON} not found: run `bash bench/setup_peers.sh recbole` first")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1", PYTHONWARNINGS="ignore")
    log = folder / f"{model}-{len(list(folder.glob('*.out')))}"
    with open(log.with_suffix(".out"), "w") as out, open(log.with_suffix(".err"), "w") as err:
        proc = subprocess.Popen([str(RECBOLE_PYTHON), str(RUNNER), str(folder), model, json.dumps(settings)],
                                env=env, stdout=out, stderr=err, text=True)
    return proc, log, _common.load_average()


def finish_recbole(started: tuple[subprocess.Popen, Path, float], expected_rows: list[int]) -> dict:
    """Wait for a RecBole run; its JSON report plus mean seconds per training epoch and per evaluation."""
    proc, log, load_before = started
    code = proc.wait()
    if code != 0:
        raise SystemExit(f"RecBole run {log.name} failed (exit {code}):\n{log.with_suffix('.err').read_text()[-4000:]}")
    report = json.loads(log.with_suffix(".out").read_text().strip().splitlines()[-1])
    if report["rows"] != expected_rows:
        raise SystemExit(f"RecBole {report['model']} read {report['rows']} train/valid/test rows, the split has {expected_rows}")
    return report | {"load": (load_before + _common.load_average()) / 2,
                     "seconds_per_epoch": float(np.mean(report["train_seconds"])),
                     "eval_seconds": float(np.mean(report["valid_seconds"])) if report["valid_seconds"] else float("nan")}


def recbole_settings(model: str, seed: int, **extra) -> dict:
    """RecBole's config overrides of one run at the shared size (``SIZE``)."""
    settings = {"seed": seed, "embedding_size": SIZE["dim"], "train_batch_size": SIZE["batch_size"]} | extra
    if model == "LightGCN":
        settings["n_layers"] = SIZE["num_layers"]
    return settings


def ours_spec(overrides: dict, seed: int, split, meta):
    """The naive variant with ``overrides``, planned once (one thread); settings left unset take the
    plan's regime values (BPR: "ranking"). A ``ModelSpec`` named ``recause``."""
    from recause.tasks.train.config import TrainConfig
    from recause.tasks.train.plan import plan_model

    config = TrainConfig.model_validate({"variant": "naive", "use_text": False} | overrides)
    return plan_model(config, split, meta, seed=seed, threads=1, name="recause")


def respec(spec, name: str | None = None, **changes):
    """``spec`` with settings ``changes`` (size and schedule only: the plan, decided by the data, stays)."""
    from dataclasses import replace

    from recause.tasks.train.config import ResolvedTrainConfig

    config = ResolvedTrainConfig.model_validate(spec.config.model_dump() | changes)
    return replace(spec, name=name or spec.name, config=config)


def run_ours(split, meta, spec, features) -> dict:
    """Train ours, score validation and test with the harness; metrics, epochs and epoch seconds."""
    from recause.tasks.evaluate import EvaluationConfig, ranking_metrics_of
    from recause.tasks.train.fit import fit_model

    load_before = _common.load_average()
    model = fit_model(spec, split, meta, features=features if spec.config.use_text else None)
    policy, evaluation = model.relevance_policy(), EvaluationConfig(ks=[10, 20])
    metrics = {part: {k.removeprefix("ranking/"): v for k, v in ranking_metrics_of(policy, split, evaluation, part).items()}
               for part in ("val", "test")}
    return {"test": metrics["test"], "valid": metrics["val"], "plan": model.plan.note,
            "epochs": int(model.history["epochs"]), "best_epoch": int(model.history["best_epoch"]) + 1,
            "seconds_per_epoch": model.history["seconds_per_epoch"], "load": (load_before + _common.load_average()) / 2}


def time_ours(split, meta, spec, features, epochs: int) -> dict:
    """Seconds per training epoch of ``spec`` over ``epochs`` epochs (no validation)."""
    from recause.tasks.train.fit import fit_model

    timing = respec(spec, name="recause_timing", epochs=epochs, patience=epochs, val_every=epochs + 1)
    load_before = _common.load_average()
    model = fit_model(timing, split, meta, features=features if timing.config.use_text else None)
    return {"seconds_per_epoch": model.history["seconds_per_epoch"], "load": (load_before + _common.load_average()) / 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and of both sides' training")
    parser.add_argument("--ours", default=json.dumps(OURS), help="JSON overrides of TrainConfig (tune on validation only)")
    parser.add_argument("--recbole-epochs", type=int, default=400, help="RecBole's maximum epochs")
    parser.add_argument("--eval-step", type=int, default=5, help="RecBole: epochs between validation checks")
    parser.add_argument("--stopping-step", type=int, default=10, help="RecBole: checks without improvement before stopping")
    parser.add_argument("--timing-epochs", type=int, default=10, help="epochs of each timing run")
    parser.add_argument("--timing-rounds", type=int, default=2, help="alternating RecBole LightGCN / ours timing rounds")
    parser.add_argument("--out", default=None, help="write every report as JSON here")
    args = parser.parse_args()
    print(_common.header(), flush=True)

    dataset, split = movielens_split(args.seed)
    expected = [len(getattr(split, p)) for p, _ in PARTS]
    print(f"MovieLens-100K: {split.n_users} users, {split.n_items} items, train/valid/test rows {expected} (seed {args.seed})",
          flush=True)
    spec = ours_spec(json.loads(args.ours), args.seed, split, dataset.meta)
    reference = respec(spec, use_text=False, **SIZE)  # the ID-only model at RecBole LightGCN's size
    config = spec.config
    features = None
    if config.use_text:
        start = time.perf_counter()
        features = _common.text_features(split, dataset, seed=args.seed)
        print(f"text features: {time.perf_counter() - start:.1f} s", flush=True)

    reports: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="vs_recbole_") as tmp:
        folder = Path(tmp)
        export_atomic(split, folder)
        # 1. quality: RecBole's two runs in the background while ours trains here (timings of this phase overlap)
        quality = {"LightGCN": None, "BPR": None}
        for model in quality:
            settings = recbole_settings(model, args.seed, epochs=args.recbole_epochs, eval_step=args.eval_step,
                                        stopping_step=args.stopping_step)
            quality[model] = start_recbole(folder, model, settings)
        reports["ours"] = run_ours(split, dataset.meta, spec, features)
        r = reports["ours"]
        print(f"ours ({r['plan']}): {r['epochs']} epochs (best {r['best_epoch']}), val NDCG@20 "
              f"{r['valid']['ndcg_at_20']:.4f}, load {r['load']:.2f}", flush=True)
        for model, started in quality.items():
            r = reports[f"recbole_{model.lower()}"] = finish_recbole(started, expected)
            print(f"recbole {model}: {r['epochs']} epochs (best {r['best_epoch']}), val NDCG@20 "
                  f"{r['valid']['ndcg_at_20']:.4f}, {r['eval_seconds']:.3f} s per evaluation, load {r['load']:.2f}", flush=True)

        # 2. timing: one job at a time, RecBole LightGCN and ours at the same size alternating
        timing: dict[str, list[dict]] = {"recbole_lightgcn": [], "ours_reference": [], "ours": [], "recbole_bpr": []}
        for _ in range(args.timing_rounds):
            settings = recbole_settings("LightGCN", args.seed, epochs=args.timing_epochs, timing_only=True)
            timing["recbole_lightgcn"].append(finish_recbole(start_recbole(folder, "LightGCN", settings), expected))
            timing["ours_reference"].append(time_ours(split, dataset.meta, reference, None, args.timing_epochs))
        if spec.config != reference.config:
            timing["ours"].append(time_ours(split, dataset.meta, spec, features, args.timing_epochs))
        settings = recbole_settings("BPR", args.seed, epochs=args.timing_epochs, timing_only=True)
        timing["recbole_bpr"].append(finish_recbole(start_recbole(folder, "BPR", settings), expected))
    timing["ours"] = timing["ours"] or timing["ours_reference"]
    seconds = {k: float(np.mean([t["seconds_per_epoch"] for t in v])) for k, v in timing.items()}
    loads = {k: float(np.mean([t["load"] for t in v])) for k, v in timing.items()}
    for name, runs in timing.items():
        print(f"timing {name}: " + ", ".join(f"{t['seconds_per_epoch']:.3f} s/epoch (load {t['load']:.2f})" for t in runs))

    rows = []
    for name, r in reports.items():
        row = {"model": name, **{f"test_{m}": r["test"][m] for m in METRICS}, "val_ndcg_at_20": r["valid"]["ndcg_at_20"],
               "epochs": r["epochs"], "best_epoch": r["best_epoch"], "s_per_train_epoch": seconds[name], "load": loads[name]}
        rows.append(row)
    rows.append({"model": "ours_reference_size", "s_per_train_epoch": seconds["ours_reference"], "load": loads["ours_reference"]})
    print()
    print(_common.table(rows, ["model", *[f"test_{m}" for m in METRICS], "val_ndcg_at_20", "epochs", "best_epoch",
                               "s_per_train_epoch", "load"]))
    ratio = seconds["ours_reference"] / seconds["recbole_lightgcn"]
    shown = {"head", "lr", "l2", "num_layers", "negatives", "batch_size", "dim", "init_std", "dropout", "weight_decay", "epochs",
             "patience", "use_text"}
    print(f"\nours: {json.dumps(config.model_dump(include=shown))}")
    print(f"ours_reference_size: {json.dumps(reference.config.model_dump(include=shown))}")
    print(f"epoch_time_ratio = {seconds['ours_reference']:.3f} s / {seconds['recbole_lightgcn']:.3f} s (RecBole LightGCN) "
          f"at dim {SIZE['dim']}, batch {SIZE['batch_size']}, {SIZE['num_layers']} layers, 1 negative; "
          f"timing runs of {args.timing_epochs} epochs, {args.timing_rounds} alternating rounds, one thread each")
    if args.out:
        Path(args.out).write_text(json.dumps({"reports": reports, "timing": timing, "config": config.model_dump()},
                                             indent=1, default=str))
    ours, lightgcn, bpr = reports["ours"]["test"], reports["recbole_lightgcn"]["test"], reports["recbole_bpr"]["test"]
    print(f"RESULT ours_recall_at_20={ours['recall_at_20']:.4f} recbole_lightgcn_recall_at_20={lightgcn['recall_at_20']:.4f} "
          f"recbole_bpr_recall_at_20={bpr['recall_at_20']:.4f} ours_ndcg_at_20={ours['ndcg_at_20']:.4f} "
          f"recbole_lightgcn_ndcg_at_20={lightgcn['ndcg_at_20']:.4f} epoch_time_ratio={ratio:.3f}")


if __name__ == "__main__":
    main()
