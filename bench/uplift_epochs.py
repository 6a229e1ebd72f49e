"""Where the causal GNN's uplift ranking loses to the oracle, on the tuning world only (issue 11).

Two questions, answered against the synthetic world's truth on seed 0 (never a reported seed):

1. **Which checks to keep.** Each training seed trains the uplift regime (``CAUSAL`` of
   ``bench/causal_synthetic.py``, its patience replaced) for ``--epochs`` epochs without early stopping and keeps, at every
   validation check, τ̂ = f1 − f0 on the full users × items grid, the validation outcome likelihood and
   each validation user's ``val/auuc_ipw``. Early stopping at patience p on the likelihood is then
   replayed on those records, and three ways of turning the checks into one ranking are scored by
   CP@10 over the oracle's:

   - ``chosen``: the run's rule (:class:`~recause.tasks.train.callbacks.EpochChoice` on the replayed
     checks: the criterion's best among the checks from the likelihood's best on);
   - ``top3``: τ̂ averaged over the three checks of that window best on the criterion;
   - ``window``: τ̂ averaged over every check of that window (a snapshot ensemble; what ``gnn.snapshots``
     does, averaging each head's scores, at the regime's patience 10).

2. **Which part of τ is missed.** The chosen check's τ̂ and the true τ are split like a two-way table,
   τ(u,i) = m_u + g_i + e_ui (user mean, item effect, interaction). CP@10 only ranks items within a
   user, so m_u does not matter; the hybrids ``model g + true e`` and ``true g + model e`` (the model's
   part rescaled to the true part's spread) say which part costs the ranking more.

Run: ``.venv/bin/python bench/uplift_epochs.py [--confoundings 1 2] [--train-seeds 0 100 200 300 400]``;
prints one row per (confounding, training seed), the means and minima per rule and patience, and
``RESULT`` lines with the mean of each rule at each confounding.
"""

from __future__ import annotations

import _common  # noqa: F401  (one thread, offline, recause importable: before numpy and torch)

import argparse
import json
import time

import numpy as np

from causal_synthetic import CAUSAL

RULES = ("chosen", "top3", "window")


def window_end(losses: np.ndarray, patience: int) -> int:
    """The last check early stopping on ``losses`` (minimised) with ``patience`` checks would run."""
    for j in range(len(losses)):
        if j - int(np.argmin(losses[: j + 1])) >= patience:
            return j
    return len(losses) - 1


def rule_scores(taus: np.ndarray, losses: np.ndarray, values: np.ndarray, patience: int) -> dict[str, np.ndarray]:
    """Per rule, the (n_users, n_items) ranking score from checks ``taus`` (C, n_users, n_items), their
    likelihoods ``losses`` (C,) and per-user criterion ``values`` (C, n_val_users), stopped at ``patience``."""
    from recause.tasks.train.callbacks import EpochChoice

    end = window_end(losses, patience)
    choice = EpochChoice.replay(losses[: end + 1], values[: end + 1])
    best, _ = choice.choose()
    window = np.array(choice.window())
    top = window[np.argsort(-values[window].mean(axis=1), kind="stable")[:3]]
    return {"chosen": taus[best], "top3": taus[top].mean(axis=0), "window": taus[window].mean(axis=0)}


def two_way(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(item effect (1, n_items), interaction (n_users, n_items)) of a users × items table."""
    centred = x - x.mean(axis=1, keepdims=True)
    item = centred.mean(axis=0, keepdims=True)
    return item, centred - item


def record_checks(split, meta, features, train_seed: int, epochs: int):
    """Train without early stopping; per check: τ̂ (float32 grid), the outcome likelihood, per-user criterion."""
    import lightning as L

    from recause.tasks.train.config import TrainConfig
    from recause.tasks.train.data import UpliftCriterion
    from recause.tasks.train.fit import train_model

    criterion = UpliftCriterion(split, propensity_head=True)
    users = np.arange(split.n_users)
    taus, losses, values = [], [], []

    class Checks(L.Callback):
        def on_validation_end(self, trainer, module) -> None:
            if trainer.sanity_checking:
                return
            module.forget_states()
            taus.append(np.concatenate([module.scores(b, "exposed") - module.scores(b, "unexposed")
                                        for b in np.array_split(users, max(1, len(users) // 512))]).astype(np.float32))
            losses.append(float(trainer.callback_metrics["val/outcome_loss"]))
            values.append(criterion.per_user(module.scores)[None])
            module.forget_states()

    config = TrainConfig(variant="causal", **(CAUSAL | {"epochs": epochs, "patience": epochs, "patience_rows": None}))
    train_model(split, meta, config, features=features, seed=train_seed, threads=1, callbacks=[Checks()])
    return np.stack(taus), np.array(losses), np.stack(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="the tuning world's seed (0; never a reported one)")
    parser.add_argument("--confoundings", type=float, nargs="+", default=[1.0, 2.0])
    parser.add_argument("--train-seeds", type=int, nargs="+", default=[0, 100, 200, 300, 400])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--patiences", type=int, nargs="+", default=[6, 8, 10, 15], help="the regime's was 6 before the snapshot ensemble, is 10 with it")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    print(_common.header(), flush=True)
    from recause.models.policies.scores import FunctionPolicy
    from recause.models.world.scm import WorldConfig
    from recause.tasks.data.split import SplitConfig, split_dataset
    from recause.tasks.data.synthetic import load_synthetic
    from recause.tasks.evaluate import EvaluationConfig, causal_metrics_of

    rows = []
    for confounding in args.confoundings:
        dataset = load_synthetic(WorldConfig(confounding=confounding), seed=args.seed)
        split = split_dataset(dataset, SplitConfig(), seed=args.seed)
        features = _common.text_features(split, dataset, seed=args.seed)
        world, evaluation = dataset.world, EvaluationConfig()
        tau = world.uplift(split.users.ids.astype(np.int64), split.items.ids.astype(np.int64))
        cp_of = lambda score: causal_metrics_of(FunctionPolicy("s", lambda u: score[u]), split, world,  # noqa: E731
                                                evaluation)["causal/cp_at_10"]
        oracle = cp_of(tau)
        true_item, true_inter = two_way(tau)
        for train_seed in args.train_seeds:
            start = time.perf_counter()
            taus, losses, values = record_checks(split, dataset.meta, features, train_seed, args.epochs)
            row = {"confounding": confounding, "train_seed": train_seed, "checks": len(losses),
                   "train_seconds": time.perf_counter() - start,
                   "best_check_cp": max(cp_of(t) for t in taus) / oracle}
            for p in args.patiences:
                for rule, score in rule_scores(taus, losses, values, p).items():
                    row[f"{rule}@{p}"] = cp_of(score) / oracle
            item, inter = two_way(rule_scores(taus, losses, values, 6)["chosen"].astype(np.float64))  # the old rule's
            row |= {"item_corr": float(np.corrcoef(item.ravel(), true_item.ravel())[0, 1]),
                    "interaction_corr": float(np.corrcoef(inter.ravel(), true_inter.ravel())[0, 1]),
                    "model_g+true_e": cp_of(item * true_item.std() / item.std() + true_inter) / oracle,
                    "true_g+model_e": cp_of(true_item + inter * true_inter.std() / inter.std()) / oracle}
            rows.append(row)
            print(json.dumps(row), flush=True)
    columns = [f"{r}@{p}" for p in args.patiences for r in RULES]
    for confounding in args.confoundings:
        these = [r for r in rows if r["confounding"] == confounding]
        summary = [{"stat": stat, **{c: float(f([r[c] for r in these])) for c in columns}} for stat, f in (("mean", np.mean), ("min", np.min))]
        print(f"confounding {confounding}, {len(these)} training seeds, CP@10 / oracle")
        print(_common.table(summary, ["stat", *columns]))
        print(_common.table(these, ["train_seed", "checks", "best_check_cp", "item_corr", "interaction_corr",
                                    "model_g+true_e", "true_g+model_e"]))
        means = " ".join(f"{c}={summary[0][c]:.3f}" for c in columns)
        print(f"RESULT confounding={confounding} seed={args.seed} train_seeds={len(these)} {means}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
