"""Beyond the mean: what each policy shows (coverage, exposure Gini, novelty, diversity) and a
contrastive two-sample critic that tries to tell an intervention's world from the control's.

The critic (:func:`recause.models.critic.two_sample_auc`) reads, per user, a list the policy
would show and what the reward model predicts for it; its held-out AUC is 0.5 when the two worlds
look the same and approaches 1 as they differ — in any respect, not only in the mean.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from recause.models.critic import two_sample_auc
from recause.models.metrics import coverage, exposure_counts, gini
from recause.models.ope.reward_models import CrossFitted
from recause.tasks.contrast.config import ContrastConfig
from recause.tasks.contrast.estimation import Rounds, reward_context


def sample_lists(probabilities: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """(n_users, k) items, each slot drawn independently from the user's row of ``probabilities``."""
    cdf = np.cumsum(probabilities, axis=1)
    cdf /= cdf[:, -1:]
    n, n_items = probabilities.shape
    flat = (cdf + np.arange(n)[:, None]).ravel()
    rows = np.repeat(np.arange(n), k)
    hits = np.searchsorted(flat, rows + rng.random(n * k) * (1 - 1e-12), side="right")
    return np.minimum(hits - rows * n_items, n_items - 1).reshape(n, k)


def beyond_accuracy(lists: np.ndarray, n_items: int, log_popularity: np.ndarray, item_vectors: np.ndarray | None) -> dict[str, float]:
    """Coverage, exposure Gini, novelty and (with text) intra-list diversity of what a policy shows.

    ``lists``: (n_users, k) items a stochastic policy drew (:func:`sample_lists`). Novelty = mean
    −log2 of the listed items' share of training engagements; diversity = 1 − mean pairwise cosine
    within a list.
    """
    k = lists.shape[1]
    share = np.exp(log_popularity) / np.exp(log_popularity).sum()
    out = {
        f"coverage_at_{k}": coverage(lists, n_items),
        f"gini_at_{k}": gini(exposure_counts(lists, n_items)),
        f"novelty_at_{k}": float(-np.log2(share[lists]).mean()),
    }
    if item_vectors is not None and k > 1:
        v = item_vectors[lists]  # (U, k, d)
        sims = np.einsum("ukd,ujd->ukj", v, v)
        off = (sims.sum(axis=(1, 2)) - np.einsum("ukk->u", sims)) / (k * (k - 1))
        out[f"diversity_at_{k}"] = float(1.0 - off.mean())
    return out


def critic_features(
    probabilities: np.ndarray, users: np.ndarray, q: np.ndarray, item_repr: np.ndarray,
    user_repr: np.ndarray | None, popularity_z: np.ndarray, k: int, rng: np.random.Generator,
) -> np.ndarray:
    """One row per user: what the policy shows them (a sampled list of k) and what q̂ predicts.

    Columns: mean item representation of the list, q̂ mean/std/max over the list, mean popularity z,
    and the user's own representation (the same in both worlds; it lets the critic condition on who).
    """
    lists = sample_lists(probabilities, k, rng)
    q_list = np.take_along_axis(q, lists, axis=1)
    columns = [item_repr[lists].mean(axis=1), q_list.mean(axis=1, keepdims=True), q_list.std(axis=1, keepdims=True),
               q_list.max(axis=1, keepdims=True), popularity_z[lists].mean(axis=1, keepdims=True)]
    if user_repr is not None:
        columns.append(user_repr[users])
    return np.concatenate(columns, axis=1)


def critic_auc(
    shown: Mapping[str, np.ndarray], users: np.ndarray, control: str, rounds: Rounds, reward_model: CrossFitted, n_users: int,
    item_repr: np.ndarray, user_repr: np.ndarray | None, popularity_z: np.ndarray, config: ContrastConfig, seed: int,
) -> dict[str, float]:
    """Held-out AUC of the two-sample critic, intervention vs control, on the same sampled ``users``.

    ``shown``: policy name -> (n_users, n_items) first-slot probabilities for ``users``.
    """
    rng = np.random.default_rng([seed, 17])
    # a fixed Gaussian projection to 32 dimensions keeps the critic small and fast (Johnson–Lindenstrauss)
    item_repr = item_repr @ rng.standard_normal((item_repr.shape[1], 32)) / np.sqrt(32) if item_repr.shape[1] > 32 else item_repr
    if user_repr is not None and user_repr.shape[1] > 32:
        user_repr = user_repr @ rng.standard_normal((user_repr.shape[1], 32)) / np.sqrt(32)
    slots = np.zeros(len(users), dtype=np.int64)
    one_round = Rounds(users, np.zeros(len(users), np.int64), slots, np.zeros(len(users)), np.ones(len(users)), rounds.n_slots, rounds.control)
    q = reward_model.predict_with_fold(reward_context(one_round, n_users))
    k = min(config.k, item_repr.shape[0])
    features = {name: critic_features(p, users, q, item_repr, user_repr, popularity_z, k, rng) for name, p in shown.items()}
    return {
        name: two_sample_auc(features[control], x, epochs=config.critic_epochs, seed=seed)
        for name, x in features.items() if name != control
    }
