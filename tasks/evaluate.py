"""The evaluation harness: the metrics every policy and model is scored by.

- **Full ranking** (``per_user`` splits): every item is scored for every user with a held-out
  positive; items that were positives in training (and, for test, validation) are excluded, as
  RecBole does; Recall / NDCG / MRR / Hit / Precision at each k (``ranking/...``).
- **Debiasing** (``randomized`` splits): scores of the randomly exposed (user, item) pairs;
  global AUC and per-user NDCG@5 over each user's random items, relevance = positive (``debias/...``).
- **Causal** (synthetic world, test only): the full catalogue is ranked (the next period's slate;
  the world's effects do not depend on the past) and scored against ground truth — CP@10, the
  mean true uplift of the top 10 (``causal/cp_at_10``), and the exact value of showing the top-K
  slate (``policy/true_value``: outcome per slot; ``policy/true_incremental_value``: outcome
  caused per slot).

Policies are scored in blocks of users (:func:`block_users`: ``user_batch``, or by default as many as keep a
block of float64 scores within :data:`BLOCK_BYTES`), so memory is a few blocks, whatever the catalogue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from recause.models.metrics import RankingAccumulator, auc, causal_precision, grouped_ndcg, mask_seen, top_k_items
from recause.models.policies.scores import Policy
from recause.models.world.scm import SyntheticWorld
from recause.tasks.choice import MIN_POSITIVES, SIMPLE_BASELINE, ModelChoice, auc_advantage, choose, too_few_positives
from recause.tasks.config import Section
from recause.tasks.data.schema import DatasetMeta
from recause.tasks.data.split import Split
from recause.tasks.shards import MapShards, in_order
from recause.tasks.train.select import paired_bootstrap

Part = Literal["val", "test"]


@dataclass(frozen=True)
class PolicySet:
    """Policies one stage built for the harness, and why the others could not be built.

    ``prefix`` namespaces their metrics in the summary (``baseline/popularity/...``,
    ``gnn/gnn_causal/...``); ``oracles`` read the ground truth and are never selected as the model.
    """

    prefix: str
    policies: dict[str, Policy]
    skipped: dict[str, str] = field(default_factory=dict)
    oracles: frozenset[str] = frozenset()


class EvaluationConfig(Section):
    """Cut-offs and block size of the evaluation harness."""

    ks: list[int] = Field([10, 20], description="Cut-offs of the full-ranking metrics.")
    debias_k: int = Field(5, ge=1, description="Cut-off of NDCG on the randomized test split.")
    causal_k: int = Field(10, ge=1, description="Cut-off of causal precision CP@K.")
    user_batch: int | None = Field(
        None, ge=1, description="Users scored per block (memory: user_batch × n_items floats); by default as many as "
        "keep a block within 8 MiB (524 users at 2,000 items).")

    @field_validator("ks")
    @classmethod
    def _positive_ks(cls, value: list[int]) -> list[int]:
        if not value or any(k < 1 for k in value):
            raise ValueError(f"ks must be a non-empty list of positive cut-offs, got {value}")
        return sorted(set(value))


BLOCK_BYTES = 8 * 2**20
"""A block of scores at most this large by default. Measured on the default world (2,000 items, 11 policies, in
order, paired): 2,048-user blocks (31 MiB) took 3.8–4.8 s, 512-user blocks 2.6–2.7 s and 256-user ones 2.5–2.6 s.
The large blocks' memory came fresh from the kernel, zeroed, at every block (~300,000 page faults a pass against
~5,000 at 512 users); the smaller ones reuse the heap."""


def block_users(config: EvaluationConfig, n_items: int) -> int:
    """Users per scored block: ``config.user_batch``, else the most whose (users, n_items) float64 scores fit
    :data:`BLOCK_BYTES` (at least one)."""
    return config.user_batch or max(1, BLOCK_BYTES // (8 * max(1, n_items)))


def selection_metric(split: Split, config: EvaluationConfig) -> str:
    """The validation metric that picks the best policy: NDCG at the largest k, or debiased AUC."""
    return f"ranking/ndcg_at_{max(config.ks)}" if split.kind == "per_user" else "debias/auc"


def evaluate_policy(
    policy: Policy, split: Split, config: EvaluationConfig, part: Part, world: SyntheticWorld | None = None
) -> dict[str, float]:
    """All metrics the split supports for ``policy`` on ``part``; causal ones when ``world`` is given."""
    out: dict[str, float] = {}
    if split.kind == "per_user":
        out |= ranking_metrics_of(policy, split, config, part)
    else:
        out |= debias_metrics_of(policy, split, config, part)
    if world is not None and part == "test":
        out |= causal_metrics_of(policy, split, world, config)
    return out


def ranking_metrics_of(policy: Policy, split: Split, config: EvaluationConfig, part: Part) -> dict[str, float]:
    acc = ranking_accumulator(policy, split, config, part)
    return {} if acc is None else {f"ranking/{k}": v for k, v in acc.result().items()}


def ranking_accumulator(policy: Policy, split: Split, config: EvaluationConfig, part: Part,
                        keep_per_user: bool = False) -> RankingAccumulator | None:
    """The full-ranking metrics of ``policy`` on ``part``, summed over its users with a held-out
    positive in ascending user order (so two policies' per-user values align); None when it has none."""
    seen_parts = [split.train] if part == "val" else [split.train, split.val]
    seen = pd.concat([p.loc[p["positive"], ["user", "item"]] for p in seen_parts])
    target = getattr(split, part)
    target = target.loc[target["positive"], ["user", "item"]].drop_duplicates()
    seen_codes = seen["user"].to_numpy() * split.n_items + seen["item"].to_numpy()
    target = target[~np.isin(target["user"].to_numpy() * split.n_items + target["item"].to_numpy(), seen_codes)]
    if target.empty:
        return None
    seen_u, seen_i = _sorted_pairs(seen)
    tgt_u, tgt_i = _sorted_pairs(target)
    users = np.unique(tgt_u)
    acc = RankingAccumulator(config.ks, keep_per_user)
    for block in _blocks(users, block_users(config, split.n_items)):
        scores = policy.scores(block)
        s_rows, s_cols = _pairs_in_block(seen_u, seen_i, block)
        top = top_k_items(mask_seen(scores, s_rows, s_cols), max(config.ks))
        t_rows, t_cols = _pairs_in_block(tgt_u, tgt_i, block)
        acc.add(top, t_rows, t_cols)
    return acc


def debias_metrics_of(policy: Policy, split: Split, config: EvaluationConfig, part: Part) -> dict[str, float]:
    rows = getattr(split, part)
    if rows.empty:
        return {}
    scores, labels, user = debias_scores(policy, split, config, part)
    out: dict[str, float] = {"debias/n_rows": float(len(rows)), "debias/n_positives": float(labels.sum())}
    if 0 < labels.sum() < len(labels):
        out["debias/auc"] = auc(scores, labels)
    if labels.sum() > 0:
        out[f"debias/ndcg_at_{config.debias_k}"] = grouped_ndcg(scores, labels.astype(np.float64), user, config.debias_k)
    return out


def debias_scores(policy: Policy, split: Split, config: EvaluationConfig,
                  part: Part) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``policy``'s scores of the rows of ``part`` (randomized splits), their labels (1 = positive)
    and users, all (n_rows,) in the rows' order."""
    rows = getattr(split, part)
    user, item = rows["user"].to_numpy(), rows["item"].to_numpy()
    order = np.argsort(user, kind="stable")
    user_sorted = user[order]
    scores = np.empty(len(rows))
    for block in _blocks(np.unique(user), block_users(config, split.n_items)):
        lo = np.searchsorted(user_sorted, block[0], side="left")
        hi = np.searchsorted(user_sorted, block[-1], side="right")
        sel = order[lo:hi]  # blocks are contiguous runs of the sorted users
        block_scores = policy.scores(block)
        scores[sel] = block_scores[np.searchsorted(block, user[sel]), item[sel]]
    return scores, rows["positive"].to_numpy(dtype=np.int64), user


def causal_metrics_of(policy: Policy, split: Split, world: SyntheticWorld, config: EvaluationConfig) -> dict[str, float]:
    """CP@K and exact policy value against the world's ground truth (all users, full catalogue)."""
    world_users = split.users.ids.astype(np.int64)
    world_items = split.items.ids.astype(np.int64)
    slate = world.config.slate_size
    k = max(config.causal_k, slate)
    cp_sum, value, caused = 0.0, 0.0, 0.0
    weights = world.session_weights(world_users)
    users = np.arange(split.n_users)
    for block in _blocks(users, block_users(config, split.n_items)):
        top = world_items[top_k_items(policy.scores(block), k)]
        tau_top = world.uplift(np.repeat(world_users[block], config.causal_k), top[:, : config.causal_k].ravel(), pairs=True)
        cp_sum += causal_precision(tau_top.reshape(len(block), config.causal_k)) * len(block)
        v, c = world.slate_values(world_users[block], top[:, :slate])
        value += float(weights[block] @ v)
        caused += float(weights[block] @ c)
    return {
        f"causal/cp_at_{config.causal_k}": cp_sum / split.n_users,
        "policy/true_value": value,
        "policy/true_incremental_value": caused,
    }


def logging_policy_truth(world: SyntheticWorld, split: Split) -> dict[str, float]:
    """Exact value of the world's stochastic logging policy: the control later interventions beat or not."""
    truth = world.logging_policy_value(split.users.ids.astype(np.int64))
    return {"truth/logging_policy/value": truth.value, "truth/logging_policy/incremental_value": truth.incremental}


@dataclass(frozen=True)
class Evaluation:
    """Metrics of every baseline (test), the validation metric used to choose, and the choice;
    ``reference`` holds ground-truth numbers that belong to no policy (e.g. the logging policy's value)."""

    test: dict[str, dict[str, float]]
    val: dict[str, dict[str, float]]
    selected_by: str
    best: str | None
    skipped: dict[str, str]
    reference: dict[str, float] = field(default_factory=dict)
    prefixes: dict[str, str] = field(default_factory=dict)
    choice: ModelChoice | None = None

    def table(self) -> pd.DataFrame:
        """One row per (policy, part) with every metric: the stage's CSV."""
        rows = [{"policy": name, "part": "test", **m} for name, m in self.test.items()]
        rows += [{"policy": name, "part": "val", **m} for name, m in self.val.items()]
        return pd.DataFrame(rows)

    def summary(self, meta: DatasetMeta, config: EvaluationConfig) -> dict[str, float | str | bool]:
        """Flat summary: ``<prefix>/<name>/<metric>`` for every policy (``baseline/`` or ``gnn/``),
        plain names for the best non-oracle on validation."""
        out: dict[str, float | str | bool] = {}
        for name, metrics in self.test.items():
            prefix = self.prefixes.get(name, "baseline")
            out |= {f"{prefix}/{name}/{k}": v for k, v in metrics.items()}
            out |= {f"{prefix}/{name}/val/{k}": v for k, v in self.val.get(name, {}).items() if k == self.selected_by}
        for name, reason in self.skipped.items():
            out[f"{self.prefixes.get(name, 'baseline')}/{name}/skipped"] = reason
        if self.best is not None:
            out |= self.test[self.best]
            out["model/name"] = self.best
            out["model/selected_by"] = f"val/{self.selected_by}"
        if self.choice is not None:
            out |= self.choice.summary()
        cp = f"causal/cp_at_{config.causal_k}"
        if cp in self.test.get("oracle_uplift", {}):
            out[f"{cp}_oracle"] = self.test["oracle_uplift"][cp]
        out["causal/identifiable"] = meta.has_unexposed_outcomes
        return out | self.reference


def policy_metrics(policy: Policy, split: Split, config: EvaluationConfig,
                   world: SyntheticWorld | None) -> tuple[dict[str, float], dict[str, float]]:
    """One policy's shard of :func:`evaluate_policies`: its (test, validation) metrics (pure, no randomness)."""
    return evaluate_policy(policy, split, config, "test", world), evaluate_policy(policy, split, config, "val")


def evaluate_policies(
    policy_sets: Sequence[PolicySet], split: Split, config: EvaluationConfig, world: SyntheticWorld | None,
    map_shards: MapShards = in_order,
) -> Evaluation:
    """Score every policy on validation and test; pick the model of record: the best non-oracle on
    validation, unless its advantage over popularity is within its bootstrap interval (:func:`model_choice`).

    One shard per policy (:func:`policy_metrics`, through ``map_shards``: :mod:`recause.tasks.shards`).
    On the synthetic world the evaluation also carries the logging policy's exact value
    (:func:`logging_policy_truth`) as a reference.
    """
    metric = selection_metric(split, config)
    policies = {name: p for s in policy_sets for name, p in s.policies.items()}
    oracles = frozenset().union(*(s.oracles for s in policy_sets))
    scored = map_shards(policy_metrics, list(policies.values()), {"split": split, "config": config, "world": world})
    reference = logging_policy_truth(world, split) if world is not None else {}  # while the shards run, where they run elsewhere
    test = {name: t for name, (t, _) in zip(policies, scored)}
    val = {name: v for name, (_, v) in zip(policies, scored)}
    candidates = {n: v[metric] for n, v in val.items() if n not in oracles and metric in v}
    leader = max(candidates, key=candidates.__getitem__) if candidates else None
    choice = model_choice(leader, policies, split, config, metric, set(candidates)) if leader is not None else None
    skipped = {name: reason for s in policy_sets for name, reason in s.skipped.items()}
    prefixes = {name: s.prefix for s in policy_sets for name in [*s.policies, *s.skipped]}
    return Evaluation(test, val, metric, choice.name if choice else None, skipped, reference, prefixes, choice)


def model_choice(leader: str, policies: dict[str, Policy], split: Split, config: EvaluationConfig, metric: str,
                 scored: set[str]) -> ModelChoice:
    """The validation ``leader`` or, when its advantage over popularity is within its bootstrap
    interval, popularity (:mod:`recause.tasks.choice`); ``scored``: the policies with a validation ``metric``."""
    if leader == SIMPLE_BASELINE or SIMPLE_BASELINE not in scored:
        return choose(leader, None, metric, "")
    candidate, baseline = policies[leader], policies[SIMPLE_BASELINE]
    if split.kind == "per_user":
        name = metric.removeprefix("ranking/")
        ours, theirs = (ranking_accumulator(p, split, config, "val", keep_per_user=True) for p in (candidate, baseline))
        values = ours.per_user(name)
        return choose(leader, paired_bootstrap(values, theirs.per_user(name)), metric, f"{values.size} validation users")
    scores, labels, users = debias_scores(candidate, split, config, "val")
    if labels.sum() < MIN_POSITIVES:
        return too_few_positives(leader, int(labels.sum()), metric)
    base_scores, _, _ = debias_scores(baseline, split, config, "val")
    return choose(leader, auc_advantage(scores, base_scores, labels, users), metric,
                  f"{np.unique(users).size} validation users")


def _blocks(users: np.ndarray, size: int) -> list[np.ndarray]:
    return [users[s : s + size] for s in range(0, len(users), size)]


def _sorted_pairs(pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    u, i = pairs["user"].to_numpy(), pairs["item"].to_numpy()
    order = np.argsort(u, kind="stable")
    return u[order], i[order]


def _pairs_in_block(users_sorted: np.ndarray, items: np.ndarray, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row within ``block``, item) of the pairs whose user is in ``block`` (sorted, contiguous in the sort)."""
    lo = np.searchsorted(users_sorted, block[0], side="left")
    hi = np.searchsorted(users_sorted, block[-1], side="right")
    u, i = users_sorted[lo:hi], items[lo:hi]
    keep = np.isin(u, block)
    return np.searchsorted(block, u[keep]), i[keep]
