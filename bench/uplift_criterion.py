"""Which validation signal tracks the uplift ranking's true quality? The selection criterion of issue 11.

On one synthetic world (default: seed 0, the tuning seed — never a reported one) the causal GNN is
trained for a fixed number of epochs with the settings of ``bench/causal_synthetic.py`` (early
stopping off), and after every epoch the validation signals that need no ground truth are set
beside the truth:

- ``val/outcome_loss``: the held-out likelihood of the outcome heads (the old monitor);
- ``val/auuc_ipw`` and ``val/auuc_ipw_at_50``: the inverse-propensity Qini area of the uplift
  ranking on the validation log, full catalogue and top 50 (:class:`recause.tasks.train.data.UpliftCriterion`),
  and ``val/auuc_ipw_clip_C``: the full area with the impressions' inverse propensities capped at C;
- ``val/ndcg_at_20``: the relevance ranking's NDCG (not an uplift signal; for reference);
- the truth: CP@10 of the uplift ranking, PEHE, and the normalised AUUC against the world's τ.

Per criterion: the epoch it would select, the true CP@10 and PEHE there, the share of the best
epoch's CP@10 it reaches, and the Spearman correlation of the criterion with CP@10 over epochs; and the
run's rule, ``EpochChoice`` (``val/auuc_ipw``'s best among the epochs from ``val/outcome_loss``'s best on,
replayed on the epochs run; the run also stops 10 checks after that best and averages the window).

Run: ``.venv/bin/python bench/uplift_criterion.py [--seed 0] [--epochs 15]``. Ends with a ``RESULT`` line.
"""

from __future__ import annotations

import _common  # noqa: F401  (one thread, offline, recause importable: before numpy and torch)

import argparse
import json

import numpy as np

from causal_synthetic import CAUSAL

CLIPS = (100, 20)
CRITERIA = {"val/outcome_loss": "min", "val/auuc_ipw": "max", "val/auuc_ipw_at_50": "max",
            **{f"val/auuc_ipw_clip_{c}": "max" for c in CLIPS}, "val/ndcg_at_20": "max"}


def truth_callback(world, split, evaluation, rows: list[dict]):
    """A Lightning callback appending, after each validation epoch, the validation metrics and the truth."""
    import lightning as L

    from recause.models.metrics import qini_area
    from recause.models.policies.scores import FunctionPolicy
    from recause.tasks.evaluate import causal_metrics_of
    from recause.tasks.train.report import truth_metrics

    users, items = split.users.ids.astype(np.int64), split.items.ids.astype(np.int64)

    class Truth(L.Callback):
        # on_validation_end: after the module's own epoch-end hook has logged the full-ranking metrics
        # (callbacks' on_validation_epoch_end runs before it and would see the previous epoch's)
        def on_validation_end(self, trainer, module) -> None:
            if trainer.sanity_checking:
                return
            module.forget_states()
            uplift = lambda u: module.scores(u, "exposed") - module.scores(u, "unexposed")  # noqa: E731
            row = {"epoch": trainer.current_epoch + 1,
                   **{k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}}
            row["cp_at_10"] = causal_metrics_of(FunctionPolicy("gnn", uplift), split, world, evaluation)["causal/cp_at_10"]
            row["pehe"] = truth_metrics(world, split, uplift)["causal/pehe"]
            area = oracle = 0.0
            for s in range(0, split.n_users, 512):
                block = np.arange(s, min(s + 512, split.n_users))
                tau = world.uplift(users[block], items)
                area += qini_area(uplift(block), tau)
                oracle += qini_area(tau, tau)
            row["auuc"] = area / oracle
            rows.append(row)
            module.forget_states()

    return Truth()


def Variants(split):  # noqa: N802  (a callback factory)
    """Logs the criterion's variants beside the monitor (the module logs only ``val/auuc_ipw``):
    the top-50 area, and the full area with impressions' inverse propensities capped at 100 and 20."""
    import lightning as L

    from recause.tasks.train.data import UpliftCriterion

    full = UpliftCriterion(split, propensity_head=True)
    variants = {"val/auuc_ipw_at_50": UpliftCriterion(split, propensity_head=True, depths=(50,)),
                **{f"val/auuc_ipw_clip_{c}": UpliftCriterion(split, propensity_head=True, max_weight=c) for c in CLIPS}}

    class Log(L.Callback):
        def on_validation_epoch_end(self, trainer, module) -> None:
            if not trainer.sanity_checking:
                for name, criterion in variants.items():
                    values = next(iter(criterion.per_user(module.scores).values()))
                    module.log(name, float(values.mean()))
                    module.log(f"{name}_se", float(values.std(ddof=1) / np.sqrt(len(values))))
                values = full.per_user(module.scores)[None]
                module.log("val/auuc_ipw_se", float(values.std(ddof=1) / np.sqrt(len(values))))

    return Log()


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1]) if len(a) > 2 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="world seed (0 = the tuning seed)")
    parser.add_argument("--confounding", type=float, default=1.0)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--out", default=None, help="write the per-epoch rows as JSON here")
    args = parser.parse_args()
    print(_common.header(), flush=True)
    from recause.models.world.scm import WorldConfig
    from recause.tasks.data.split import SplitConfig, split_dataset
    from recause.tasks.data.synthetic import load_synthetic
    from recause.tasks.evaluate import EvaluationConfig
    from recause.tasks.train.config import TrainConfig
    from recause.tasks.train.fit import train_model

    dataset = load_synthetic(WorldConfig(confounding=args.confounding), seed=args.seed)
    split = split_dataset(dataset, SplitConfig(), seed=args.seed)
    features = _common.text_features(split, dataset, seed=args.seed)
    rows: list[dict] = []
    config = TrainConfig(variant="causal", **(CAUSAL | {"epochs": args.epochs, "patience": 10_000, "patience_rows": None}))
    train_model(split, dataset.meta, config, features=features, seed=args.seed, threads=1,
                callbacks=[truth_callback(dataset.world, split, EvaluationConfig(), rows), Variants(split)])
    columns = ["epoch", *CRITERIA, "val/auuc_ipw_se", *[f"val/auuc_ipw_clip_{c}_se" for c in CLIPS], "cp_at_10", "pehe", "auuc"]
    print(_common.table(rows, columns))
    cp = np.array([r["cp_at_10"] for r in rows])
    summary = []
    for name, mode in CRITERIA.items():
        values = np.array([r.get(name, np.nan) for r in rows])
        if np.isnan(values).all():
            continue
        pick = int(np.nanargmin(values) if mode == "min" else np.nanargmax(values))
        sign = -1.0 if mode == "min" else 1.0
        summary.append({"criterion": name, "epoch": rows[pick]["epoch"], "cp_at_10": cp[pick], "share_of_best_cp": cp[pick] / cp.max(),
                        "pehe": rows[pick]["pehe"], "spearman_with_cp": spearman(sign * values, cp)})
    # the run's rule (EpochChoice): val/auuc_ipw's best among the epochs from val/outcome_loss's best on
    from recause.tasks.train.callbacks import EpochChoice

    pick, _ = EpochChoice.replay([r["val/outcome_loss"] for r in rows], [[r["val/auuc_ipw"]] for r in rows],
                                 [r["epoch"] - 1 for r in rows]).choose()
    best = max(summary, key=lambda r: (r["share_of_best_cp"], r["spearman_with_cp"]))
    summary.append({"criterion": "EpochChoice", "epoch": rows[pick]["epoch"], "cp_at_10": cp[pick],
                    "share_of_best_cp": cp[pick] / cp.max(), "pehe": rows[pick]["pehe"], "spearman_with_cp": float("nan")})
    print(_common.table(summary, ["criterion", "epoch", "cp_at_10", "share_of_best_cp", "pehe", "spearman_with_cp"]))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"epochs": rows, "criteria": summary}, f, indent=1)
    print("RESULT " + " ".join(f"{r['criterion'].split('/')[-1]}_share={r['share_of_best_cp']:.3f}" for r in summary)
          + f" best_criterion={best['criterion']} seed={args.seed}")


if __name__ == "__main__":
    main()
