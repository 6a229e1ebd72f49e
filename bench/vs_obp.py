"""Recause's off-policy estimators side by side with Open Bandit Pipeline 0.5.7, on identical inputs.

    bash bench/setup_peers.sh obp                 # once: obp in .venv-obp
    .venv/bin/python bench/vs_obp.py [--seeds 10] [--n-bootstrap 1000]

1. In obp's venv (a subprocess running this file in ``generate`` mode): obp's
   ``SyntheticBanditDataset`` (10 actions, context dim 5, binary logistic rewards, linear behaviour
   policy), 10,000 logged rounds per seed, three evaluation policies (an ``IPWLearner`` with logistic
   regression trained on a separate 10,000 rounds, ε-greedy and softmax of the true expected
   reward), obp's ``RegressionModel`` (logistic, 3-fold cross-fitting), the true policy values;
   and obp's OBD quickstart (Bernoulli TS from the ZOZOTOWN prior, random logs, the same reward
   model as the quickstart). Everything is saved as .npz in a temporary folder.
2. obp (``evaluate`` mode, its venv) and Recause (this process) estimate every policy with the same
   estimators and the same bootstrap settings; each side times its own loop over seeds and policies
   (estimates + bootstrap intervals; one thread).
3. The table compares estimates (must agree to 1e-9), intervals (identical resamples; obp keeps the
   self-normaliser fixed inside the bootstrap, Recause re-normalises, so SN estimators are compared
   on the point estimate only), the tuned λ, Recause's reward model against obp's, and wall time.

Ends with ``RESULT max_abs_diff=... time_ratio=... obd_dr_relative_error=...``; the last is from
``bench/obd_ope.py`` (our BTS distribution and reward model on the Open Bandit Dataset).
"""

from __future__ import annotations

import _common  # noqa: F401  (one thread, offline, recause importable: before numpy)

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _ope import GRID_OS, GRID_SWITCH, LAMBDA_CLIP, LAMBDA_OS, LAMBDA_SWITCH, obp_matched_estimators

OBP_PYTHON = _common.ROOT / ".venv-obp" / "bin" / "python"
DATA = _common.DATA / "open-bandit"
N_ACTIONS, DIM_CONTEXT, N_ROUNDS = 10, 5, 10_000
POLICIES = ("ipw-learner", "eps-greedy", "softmax")
SELF_NORMALISED = ("snipw", "sndr")
TUNED = ("switch-dr-slope", "dr-os-mse")


# ------------------------------------------------------------------------------------ obp side (its venv)
def obp_estimators() -> list:
    """obp's instances of the ten estimators of :func:`_ope.obp_matched_estimators`, with the same λ and grids."""
    from obp.ope import (
        DirectMethod,
        DoublyRobust,
        DoublyRobustWithShrinkage,
        DoublyRobustWithShrinkageTuning,
        InverseProbabilityWeighting,
        SelfNormalizedDoublyRobust,
        SelfNormalizedInverseProbabilityWeighting,
        SwitchDoublyRobust,
        SwitchDoublyRobustTuning,
    )

    return [
        DirectMethod(),
        InverseProbabilityWeighting(),
        InverseProbabilityWeighting(lambda_=LAMBDA_CLIP, estimator_name="ipw-clip"),
        SelfNormalizedInverseProbabilityWeighting(),
        DoublyRobust(),
        SelfNormalizedDoublyRobust(),
        SwitchDoublyRobust(lambda_=LAMBDA_SWITCH),
        DoublyRobustWithShrinkage(lambda_=LAMBDA_OS),
        SwitchDoublyRobustTuning(lambdas=list(GRID_SWITCH), tuning_method="slope", estimator_name="switch-dr-slope"),
        DoublyRobustWithShrinkageTuning(lambdas=list(GRID_OS), tuning_method="mse", estimator_name="dr-os-mse"),
    ]


def obp_generate(folder: Path, seeds: int) -> None:
    """obp's synthetic inputs of every seed and its OBD quickstart, saved as .npz in ``folder``."""
    from obp.dataset import (
        OpenBanditDataset,
        SyntheticBanditDataset,
        linear_behavior_policy,
        logistic_reward_function,
    )
    from obp.ope import OffPolicyEvaluation, RegressionModel
    from obp.policy import BernoulliTS, IPWLearner
    from obp.utils import softmax
    from sklearn.linear_model import LogisticRegression

    for seed in range(seeds):
        dataset = SyntheticBanditDataset(
            n_actions=N_ACTIONS, dim_context=DIM_CONTEXT, reward_type="binary",
            reward_function=logistic_reward_function, behavior_policy_function=linear_behavior_policy,
            random_state=seed,
        )
        train = dataset.obtain_batch_bandit_feedback(n_rounds=N_ROUNDS)
        test = dataset.obtain_batch_bandit_feedback(n_rounds=N_ROUNDS)
        learner = IPWLearner(n_actions=N_ACTIONS, base_classifier=LogisticRegression(C=100, max_iter=10000, random_state=12345))
        learner.fit(context=train["context"], action=train["action"], reward=train["reward"], pscore=train["pscore"])
        q_true = test["expected_reward"]
        greedy = np.eye(N_ACTIONS)[q_true.argmax(axis=1)]
        dists = {
            "ipw-learner": learner.predict(context=test["context"]).astype(np.float64),
            "eps-greedy": (0.7 * greedy + 0.3 / N_ACTIONS)[:, :, None],
            "softmax": softmax(10.0 * q_true)[:, :, None],
        }
        model = RegressionModel(n_actions=N_ACTIONS, base_model=LogisticRegression(C=100, max_iter=10000, random_state=12345))
        q_hat = model.fit_predict(context=test["context"], action=test["action"], reward=test["reward"],
                                  n_folds=3, random_state=12345)
        arrays = dict(context=test["context"], action=test["action"], reward=test["reward"], pscore=test["pscore"],
                      position=np.zeros(N_ROUNDS, dtype=int), q_hat=q_hat)
        for name, dist in dists.items():
            arrays[f"dist_{name}"] = dist
            arrays[f"truth_{name}"] = np.array(dataset.calc_ground_truth_policy_value(expected_reward=q_true, action_dist=dist))
        np.savez(folder / f"seed_{seed}.npz", **arrays)

    # obp's OBD quickstart, exactly (obp reads plain CSVs: the shared .csv.gz are unpacked beside)
    obd = folder / "obd"
    for policy in ("random", "bts"):
        (obd / policy / "all").mkdir(parents=True, exist_ok=True)
        (obd / policy / "all" / "all.csv").write_bytes(_gunzip(DATA / policy / "all" / "all.csv.gz"))
        (obd / policy / "all" / "item_context.csv").write_bytes((DATA / policy / "all" / "item_context.csv").read_bytes())
    dataset = OpenBanditDataset(behavior_policy="random", campaign="all", data_path=obd)
    feedback = dataset.obtain_batch_bandit_feedback()
    bts = BernoulliTS(n_actions=dataset.n_actions, len_list=dataset.len_list, is_zozotown_prior=True, campaign="all",
                      random_state=12345)
    action_dist = bts.compute_batch_action_dist(n_sim=100_000, n_rounds=feedback["n_rounds"])
    model = RegressionModel(n_actions=dataset.n_actions, len_list=dataset.len_list, action_context=dataset.action_context,
                            base_model=LogisticRegression(max_iter=1000, random_state=12345))
    q_hat = model.fit_predict(context=feedback["context"], action=feedback["action"], reward=feedback["reward"],
                              position=feedback["position"], pscore=feedback["pscore"], n_folds=3, random_state=12345)
    values = OffPolicyEvaluation(bandit_feedback=feedback, ope_estimators=obp_estimators()).estimate_policy_values(
        action_dist=action_dist, estimated_rewards_by_reg_model=q_hat)
    np.savez(folder / "obd.npz", action=feedback["action"], reward=feedback["reward"], pscore=feedback["pscore"],
             position=feedback["position"], action_dist=action_dist[:1], q_hat=q_hat,
             labels=np.array(list(values)), values=np.array([float(v) for v in values.values()]))


def _gunzip(path: Path) -> bytes:
    import gzip

    return gzip.decompress(path.read_bytes())


def obp_evaluate(folder: Path, seeds: int, n_bootstrap: int) -> dict:
    """obp's estimates, intervals and tuned λ of every (seed, policy, estimator); its timed loop's seconds."""
    from obp.ope import OffPolicyEvaluation

    inputs = [dict(np.load(folder / f"seed_{s}.npz")) for s in range(seeds)]
    results: dict = {}
    start = time.perf_counter()
    for seed, arrays in enumerate(inputs):
        feedback = {k: arrays[k] for k in ("action", "reward", "pscore", "position", "context")}
        for policy in POLICIES:
            estimators = obp_estimators()  # fresh: a tuned obp estimator keeps its first λ for good
            ope = OffPolicyEvaluation(bandit_feedback=feedback, ope_estimators=estimators)
            model_inputs = dict(action_dist=arrays[f"dist_{policy}"], estimated_rewards_by_reg_model=arrays["q_hat"])
            values = ope.estimate_policy_values(**model_inputs)
            intervals = ope.estimate_intervals(**model_inputs, n_bootstrap_samples=n_bootstrap, random_state=seed)
            for e in estimators:
                ci = list(intervals[e.estimator_name].values())
                results[f"{seed}/{policy}/{e.estimator_name}"] = {
                    "value": float(values[e.estimator_name]), "mean": float(ci[0]), "low": float(ci[1]), "high": float(ci[2]),
                    "lambda": float(getattr(e, "best_hyperparam", np.nan)),
                }
    return {"seconds": time.perf_counter() - start, "results": results}


# ------------------------------------------------------------------------------------ Recause side
def our_evaluate(folder: Path, seeds: int, n_bootstrap: int) -> dict:
    """Our estimates and intervals of every (seed, policy, estimator), the timed loop's seconds, the tuned λ."""
    from recause.models.ope.comparison import estimate_all
    from recause.models.ope.estimators import check_inputs

    inputs = [dict(np.load(folder / f"seed_{s}.npz")) for s in range(seeds)]
    estimators = obp_matched_estimators()
    results: dict = {}
    start = time.perf_counter()
    for seed, arrays in enumerate(inputs):
        logged = {k: arrays[k] for k in ("reward", "action", "pscore", "position")}
        for policy in POLICIES:
            dist = arrays[f"dist_{policy}"]
            out = estimate_all(estimators, action_dist=dist, estimated_rewards_by_reg_model=arrays["q_hat"],
                               n_bootstrap_samples=n_bootstrap, random_state=seed, **logged)
            for label, est in out.items():
                results[f"{seed}/{policy}/{label}"] = {"value": est.value, "mean": est.mean, "low": est.low, "high": est.high}
    seconds = time.perf_counter() - start
    for seed, arrays in enumerate(inputs):  # the tuned λ (outside the timing: estimate_all already tuned)
        for policy in POLICIES:
            data = check_inputs(arrays["reward"], arrays["action"], arrays[f"dist_{policy}"], arrays["pscore"],
                                arrays["position"], arrays["q_hat"])
            for label in TUNED:
                results[f"{seed}/{policy}/{label}"]["lambda"] = estimators[label].select(data).lambda_
    return {"seconds": seconds, "results": results}


def our_reward_model_gap(folder: Path, seeds: int) -> float:
    """Max |q̂ ours − q̂ obp| of the cross-fitted logistic reward model over every seed's rounds."""
    from recause.models.ope.reward_models import CrossFittedLogistic

    gap = 0.0
    for seed in range(seeds):
        arrays = np.load(folder / f"seed_{seed}.npz")
        model = CrossFittedLogistic(n_actions=N_ACTIONS, n_folds=3, random_state=12345, max_iter=10000, C=100.0)
        q = model.fit_predict(arrays["context"], arrays["action"], arrays["reward"])
        gap = max(gap, float(np.abs(q - arrays["q_hat"]).max()))
    return gap


def our_obd_gap(folder: Path) -> float:
    """Max |estimate ours − obp's| of every estimator on obp's own OBD quickstart inputs."""
    from recause.models.ope.comparison import estimate_all

    arrays = np.load(folder / "obd.npz")
    n = arrays["reward"].shape[0]
    dist = np.broadcast_to(arrays["action_dist"], (n,) + arrays["action_dist"].shape[1:])
    ours = estimate_all(obp_matched_estimators(), reward=arrays["reward"], action=arrays["action"], pscore=arrays["pscore"],
                        position=arrays["position"], action_dist=dist, estimated_rewards_by_reg_model=arrays["q_hat"],
                        n_bootstrap_samples=1)
    return max(abs(ours[str(label)].value - float(v)) for label, v in zip(arrays["labels"], arrays["values"]))


def run_obp(mode: str, folder: Path, *extra: str) -> str:
    """This file in ``mode`` (generate / evaluate) inside obp's venv, one thread; its stdout."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    done = subprocess.run([str(OBP_PYTHON), __file__, mode, str(folder), *extra], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"obp {mode} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def compare(obp: dict, ours: dict) -> dict[str, float]:
    """Largest estimate and interval gaps, and the count of tuned λ that differ, over every common key."""
    value_gap = interval_gap = 0.0
    lambda_mismatch = 0
    for key, theirs in obp["results"].items():
        mine = ours["results"][key]
        label = key.rsplit("/", 1)[1]
        value_gap = max(value_gap, abs(mine["value"] - theirs["value"]))
        if label not in SELF_NORMALISED:
            interval_gap = max(interval_gap, *(abs(mine[k] - theirs[k]) for k in ("mean", "low", "high")))
        if label in TUNED:
            lambda_mismatch += int(mine["lambda"] != theirs["lambda"])
    return {"value_gap": value_gap, "interval_gap": interval_gap, "lambda_mismatch": lambda_mismatch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--n-bootstrap", type=int, default=1000)
    args = parser.parse_args()
    if not OBP_PYTHON.exists():
        sys.exit(f"{OBP_PYTHON} not found: run `bash bench/setup_peers.sh obp` first")
    with tempfile.TemporaryDirectory(prefix="recause-vs-obp-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        run_obp("generate", folder, str(args.seeds))
        print(f"inputs generated by obp in {time.perf_counter() - t0:.1f} s ({args.seeds} seeds x {len(POLICIES)} policies)")
        obp = json.loads(run_obp("evaluate", folder, str(args.seeds), str(args.n_bootstrap)))
        ours = our_evaluate(folder, args.seeds, args.n_bootstrap)
        gaps = compare(obp, ours)
        reward_gap = our_reward_model_gap(folder, args.seeds)
        obd_gap = our_obd_gap(folder)
        truths = {p: np.mean([float(np.load(folder / f"seed_{s}.npz")[f"truth_{p}"]) for s in range(args.seeds)])
                  for p in POLICIES}

    from obd_ope import run as run_obd  # task 1: our BTS + reward model on the Open Bandit Dataset

    obd = run_obd(n_sim=100_000, seed=12345, n_bootstrap=1000, quiet=True)
    ratio = ours["seconds"] / obp["seconds"]
    n_keys = len(obp["results"])
    print(f"\nobp 0.5.7 vs Recause: {args.seeds} seeds x {len(POLICIES)} policies x {len(obp_matched_estimators())} estimators "
          f"= {n_keys} estimates, n_bootstrap={args.n_bootstrap}, one thread")
    print(f"{'check':<58} {'value':>14}")
    rows = [
        ("max |estimate diff| (all 10 estimators)", f"{gaps['value_gap']:.3e}"),
        ("max |interval diff| (mean/low/high; all but snipw, sndr)", f"{gaps['interval_gap']:.3e}"),
        ("tuned lambda mismatches (switch-dr slope, dr-os mse)", f"{gaps['lambda_mismatch']}"),
        ("max |q_hat diff| reward model (ours vs obp RegressionModel)", f"{reward_gap:.3e}"),
        ("max |estimate diff| on obp's OBD inputs (BTS, slates)", f"{obd_gap:.3e}"),
        ("obp wall time, s", f"{obp['seconds']:.2f}"),
        ("Recause wall time, s", f"{ours['seconds']:.2f}"),
        ("time ratio (Recause / obp)", f"{ratio:.3f}"),
    ]
    for name, value in rows:
        print(f"{name:<58} {value:>14}")
    print("mean true policy values: " + ", ".join(f"{p} {v:.4f}" for p, v in truths.items()))
    print(f"RESULT max_abs_diff={gaps['value_gap']:.3e} interval_max_abs_diff={gaps['interval_gap']:.3e} "
          f"time_ratio={ratio:.3f} obd_dr_relative_error={obd['dr_relative_error']:.3f}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("generate", "evaluate"):
        folder = Path(sys.argv[2])
        if sys.argv[1] == "generate":
            obp_generate(folder, int(sys.argv[3]))
        else:
            print(json.dumps(obp_evaluate(folder, int(sys.argv[3]), int(sys.argv[4]))))
    else:
        main()
