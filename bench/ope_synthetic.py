"""Off-policy estimates against the synthetic world's exact ground truth, over many seeds.

    .venv/bin/python bench/ope_synthetic.py [--seeds 20] [--first-seed 0] [--n-bootstrap 500]

World (``recause.models.world.scm``): 2,000 users, 100 items, 10 topics, slates of 5, ~10 sessions per user
(≈100,000 impressions per seed), ε = 0.1 logging exploration, everything else at the defaults.
Why this size: with 100 items every propensity is ≥ ε/100 = 0.001, and the evaluation policies are
stochastic (softmax), so importance weights stay moderate; a 2,000-item catalogue with
deterministic top-K policies would give weights up to 20,000 and make any importance-weighted
claim meaningless at this sample size.

Evaluation policies (per user, the same distribution in every slot, like the logging policy):
``logging`` (the control), ``uniform``, ``popularity`` (softmax of standardised log click counts in
the log, T=0.5), ``relevance`` (oracle: softmax of standardised logit p1, T=0.5), ``uplift``
(oracle: softmax of standardised τ, T=0.5) and ``uplift-mix`` (0.3 uplift + 0.7 logging).
Truth: ``world.policy_value_of_distribution`` (expected outcome per slot, session-weighted) — the
estimand of the position-wise estimators on these logs.

Reward model (observable features only): cross-fitted (2 folds) logistic regression on one-hot
user id, one-hot slot, one-hot item id and the item's standardised log impression count
(``recause.models.ope.reward_models.CrossFittedLogistic``, C=1).

Reports per estimator the mean and max relative error, the coverage of 95% bootstrap intervals,
and per seed the Kendall τ between estimated and true lifts over the logging policy (DR, paired
bootstrap). Seeds 0..19 are the evaluation seeds; the settings above were chosen on seeds 100+.
Ends with ``RESULT dr_mean_relative_error=... dr_max_relative_error=... dr_coverage=...
kendall_tau_mean=... kendall_tau_min=...``.
"""

from __future__ import annotations

import _common  # noqa: F401  (one thread, offline, recause importable: before numpy)

import argparse
import time

import numpy as np

from _ope import estimators
from recause.models.ope.comparison import compare_policies, estimate_all
from recause.models.ope.reward_models import CrossFittedLogistic
from recause.models.policies.bandit import softmax_action_dist
from recause.models.world.scm import SyntheticWorld, WorldConfig

CONFIG = WorldConfig(n_users=2000, n_items=100, n_topics=10, slate_size=5, mean_sessions=10.0)
TEMPERATURE = 0.5
ESTIMATORS = estimators()


def _standardise(x: np.ndarray) -> np.ndarray:
    """Per-row z-scores (the policies' temperature applies to standardised scores)."""
    return (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)


def policies(world: SyntheticWorld, item_clicks: np.ndarray) -> dict[str, np.ndarray]:
    """Per-user slot distributions (n_users, n_items) of the evaluation policies."""
    users, items = np.arange(world.n_users), np.arange(world.n_items)
    p1 = world.p_outcome_if_exposed(users, items)
    tau = world.uplift(users, items)
    logging = world.logging_policy(users)
    popularity = np.broadcast_to(np.log1p(item_clicks)[None, :], p1.shape)

    def soft(scores: np.ndarray) -> np.ndarray:
        return softmax_action_dist(_standardise(scores), 1, TEMPERATURE)[:, :, 0]

    uplift = soft(tau)
    return {
        "logging": logging,
        "uniform": np.full_like(p1, 1.0 / world.n_items),
        "popularity": soft(popularity),
        "relevance": soft(np.log(p1 / (1 - p1))),
        "uplift": uplift,
        "uplift-mix": 0.3 * uplift + 0.7 * logging,
    }


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's τ-a between two score vectors (no ties expected)."""
    i, j = np.triu_indices(len(a), k=1)
    return float(np.mean(np.sign(a[i] - a[j]) * np.sign(b[i] - b[j])))


def run_seed(seed: int, n_bootstrap: int) -> dict:
    """One world: every estimator's estimate of every policy, the DR lifts over logging, and the truth."""
    from scipy import sparse

    world = SyntheticWorld.create(CONFIG, seed=seed)
    logs = world.simulate_logs()
    shown = logs[logs["exposed"]]
    user = shown["user_id"].to_numpy(np.int64)
    item = shown["item_id"].to_numpy(np.int64)
    slot = shown["position"].to_numpy(np.int64) - 1
    n, k = len(shown), CONFIG.slate_size
    logged = dict(reward=shown["outcome"].to_numpy(np.float64), action=item,
                  pscore=shown["propensity"].to_numpy(np.float64), position=np.zeros(n, dtype=np.int64))

    # reward model on observable ids: context = [one-hot user, one-hot slot], action features = one-hot item
    rows = np.arange(n)
    context = sparse.csr_matrix(
        (np.ones(2 * n), (np.r_[rows, rows], np.r_[user, world.n_users + slot])), shape=(n, world.n_users + k)
    )
    shows = np.log1p(np.bincount(item, minlength=world.n_items))  # item popularity in the log
    item_features = np.c_[np.eye(world.n_items), (shows - shows.mean()) / shows.std()]
    model = CrossFittedLogistic(n_actions=world.n_items, n_folds=2, random_state=seed, max_iter=1000, C=1.0)
    q_hat = model.fit_predict(context, item, logged["reward"], action_context=item_features)  # (n, n_items, 1)

    clicks = np.bincount(item, weights=logged["reward"], minlength=world.n_items)
    per_user = policies(world, clicks)
    users = np.arange(world.n_users)
    truth = {name: world.policy_value_of_distribution(np.repeat(d[:, :, None], k, axis=2), users).value
             for name, d in per_user.items()}
    dists = {name: d[user][:, :, None] for name, d in per_user.items()}  # (n, n_items, 1): each impression its slot

    estimates = {name: estimate_all(ESTIMATORS, action_dist=d, estimated_rewards_by_reg_model=q_hat,
                                    n_bootstrap_samples=n_bootstrap, random_state=seed, **logged)
                 for name, d in dists.items()}
    lifts = compare_policies(ESTIMATORS["dr"], dists, "logging", estimated_rewards_by_reg_model=q_hat,
                             n_bootstrap_samples=n_bootstrap, random_state=seed, **logged)
    names = [p for p in dists if p != "logging"]
    est_lift = np.array([lifts[p].difference.value for p in names])
    true_lift = np.array([truth[p] - truth["logging"] for p in names])
    lift_covered = [lifts[p].difference.covers(truth[p] - truth["logging"]) for p in names]
    max_weight = max(float((d[user, item] / logged["pscore"]).max()) for d in per_user.values())
    return {"n": n, "truth": truth, "estimates": estimates, "tau": kendall_tau(est_lift, true_lift),
            "lift_covered": lift_covered, "max_weight": max_weight, "true_lift": dict(zip(names, true_lift)),
            "est_lift": dict(zip(names, est_lift))}


def relative_errors(results: list[dict], estimator: str, policy_names: list[str]) -> np.ndarray:
    """(n_seeds, n_policies) |V̂ − V| / V of one estimator."""
    return np.array([[abs(r["estimates"][p][estimator].value - r["truth"][p]) / r["truth"][p] for p in policy_names]
                     for r in results])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--n-bootstrap", type=int, default=500)
    args = parser.parse_args()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    start = time.perf_counter()
    results = [run_seed(s, args.n_bootstrap) for s in seeds]
    seconds = time.perf_counter() - start
    policy_names = list(results[0]["truth"])

    print(f"Synthetic world {CONFIG.n_users} users x {CONFIG.n_items} items, K={CONFIG.slate_size}, "
          f"seeds {seeds.start}..{seeds.stop - 1}, ~{int(np.mean([r['n'] for r in results])):,} impressions/seed, "
          f"n_bootstrap={args.n_bootstrap}, {seconds:.0f} s")
    print("true value per slot (seed-mean): "
          + ", ".join(f"{p} {np.mean([r['truth'][p] for r in results]):.4f}" for p in policy_names))
    print(f"max importance weight over policies and seeds: {max(r['max_weight'] for r in results):.1f}\n")
    print(f"{'estimator':<16} {'mean rel.err':>12} {'max rel.err':>12} {'coverage':>9}   mean rel.err per policy")
    summary = {}
    for est in ESTIMATORS:
        rel = relative_errors(results, est, policy_names)
        cov = np.array([[r["estimates"][p][est].covers(r["truth"][p]) for p in policy_names] for r in results])
        summary[est] = (rel.mean(), rel.max(), cov.mean())
        per_policy = " ".join(f"{p}={v:.3f}" for p, v in zip(policy_names, rel.mean(axis=0)))
        print(f"{est:<16} {rel.mean():>12.4f} {rel.max():>12.4f} {cov.mean():>9.3f}   {per_policy}")
    taus = np.array([r["tau"] for r in results])
    lift_cov = np.mean([c for r in results for c in r["lift_covered"]])
    lift_names = list(results[0]["true_lift"])
    print("\nlift over logging (DR, paired bootstrap), seed-mean true vs estimated: "
          + ", ".join(f"{p} {np.mean([r['true_lift'][p] for r in results]):+.4f}"
                      f"/{np.mean([r['est_lift'][p] for r in results]):+.4f}" for p in lift_names))
    print(f"Kendall tau (estimated vs true lift ordering, {len(lift_names)} policies): mean {taus.mean():.3f}, "
          f"min {taus.min():.3f}, seeds with tau >= 0.8: {(taus >= 0.8).sum()}/{len(taus)}; lift CI coverage {lift_cov:.3f}")
    dr_mean, dr_max, dr_cov = summary["dr"]
    dr_rel = relative_errors(results, "dr", policy_names).ravel()
    print(f"DR relative error <= 0.05 in {(dr_rel <= 0.05).mean():.3f} of {dr_rel.size} (seed, policy) cases")
    print(f"RESULT dr_mean_relative_error={dr_mean:.4f} dr_max_relative_error={dr_max:.4f} "
          f"dr_share_within_0.05={(dr_rel <= 0.05).mean():.3f} dr_coverage={dr_cov:.3f} "
          f"lift_coverage={lift_cov:.3f} kendall_tau_mean={taus.mean():.3f} kendall_tau_min={taus.min():.3f}")


if __name__ == "__main__":
    main()
