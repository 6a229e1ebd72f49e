"""Top-K lists per user from a score function, without the items a user already has, each with a reason.

Pure: a score function (split user indices (B,) -> (B, n_items)), what each user already has and
the item annotations in; a DataFrame out, one row per (user, rank). :func:`candidates` keeps each
user's best ``C`` items (by blocks of users: no users × items table), and :func:`recommend` cuts the
lists from them — the stage and the served model alike, so they give the same lists.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from recause.models.metrics import top_k_items
from recause.tasks.recommend.config import RecommendConfig

Scores = Callable[[np.ndarray], np.ndarray]  # users (B,) -> (B, n_items)

UNIT = {"uplift": "estimated uplift", "relevance": "estimated P(engage | shown)", "best_intervention": "policy probability"}


@dataclass(frozen=True)
class Chosen:
    """The strategy actually used, its scores, and why it differs from the one asked for (or None)."""

    strategy: str
    scores: Scores
    label: str  # e.g. "gnn-uplift" for best_intervention, else the strategy
    fallback: str | None = None


@dataclass(frozen=True)
class ItemNotes:
    """What a person reads about each item (split item order): ids, titles, topic labels, keywords."""

    ids: np.ndarray  # (n_items,)
    titles: Sequence[str] | None = None
    topics: Sequence[str] | None = None  # topic label per item ("" without one)
    keywords: Sequence[Sequence[str]] | None = None
    item_uplift: np.ndarray | None = None  # (n_items, 3): the item's mean uplift over users, low, high (intervals.py)


def already_has(interactions: Sequence[pd.DataFrame], n_users: int, n_items: int) -> sparse.csr_matrix:
    """(n_users, n_items) boolean: the user had a positive outcome on the item in any of the frames."""
    rows = pd.concat([f.loc[f["positive"], ["user", "item"]] for f in interactions], ignore_index=True)
    data = np.ones(len(rows), dtype=bool)
    return sparse.csr_matrix((data, (rows["user"].to_numpy(), rows["item"].to_numpy())), shape=(n_users, n_items))


@dataclass(frozen=True)
class Candidates:
    """Per user the ``size`` best-scored items they do not have, best first: what every list is cut
    from, here and in the served model, so that nothing holds a users × items table.

    ``items`` (U, C) int64 split item indices, −1 past the items a user has left; ``scores`` (U, C)
    float32, NaN there; ``uplift`` (U, C) float32 τ̂ of those items, or None where it is not identified.
    Row ``u`` belongs to split user ``u``."""

    items: np.ndarray
    scores: np.ndarray
    uplift: np.ndarray | None = None

    @property
    def size(self) -> int:
        return int(self.items.shape[1])


def candidates(scores: Scores, users: np.ndarray, exclude: sparse.csr_matrix, size: int, uplift: Scores | None = None,
               block: int = 512) -> Candidates:
    """The best ``size`` items per user by ``scores`` (ties to the lower item index), without what
    ``exclude`` says they have and without non-finite scores; the score function runs on blocks of
    ``block`` users, so memory is block × n_items plus users × size."""
    if size < 1:
        raise ValueError(f"size must be a positive number of items, got {size}")
    size = min(size, exclude.shape[1])
    items = np.full((len(users), size), -1, dtype=np.int64)
    values = np.full((len(users), size), np.nan, dtype=np.float32)
    taus = np.full((len(users), size), np.nan, dtype=np.float32) if uplift is not None else None
    for start in range(0, len(users), block):
        batch = np.asarray(users[start : start + block])
        s = np.array(scores(batch), dtype=np.float64)  # a copy: the masking below must not touch the caller's
        s[~np.isfinite(s) | exclude[batch].toarray()] = -np.inf
        order = top_k_items(s, size)  # linear in n_items; ties to the lower index, as a stable sort
        picked = np.take_along_axis(s, order, axis=1)
        valid = np.isfinite(picked)  # a prefix of each row: -inf sorts last
        at = slice(start, start + len(batch))
        items[at] = np.where(valid, order, -1)
        values[at] = np.where(valid, picked, np.nan)
        if taus is not None:
            tau = np.take_along_axis(np.asarray(uplift(batch), dtype=np.float64), order, axis=1)
            taus[at] = np.where(valid, tau, np.nan)
    return Candidates(items, values, taus)


def top_k(candidates: Candidates, users: np.ndarray, exclude: sparse.csr_matrix, k: int, n_explore: int,
          seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per user: the ``k - n_explore`` best candidates, then ``n_explore`` random items among all the
    others they do not have (seeded per user, so one user's list is the same whoever else is listed).

    Returns items (U, k) (−1 where a user has fewer than k items left), their scores and τ̂ (U, k)
    (NaN for an exploration item outside the user's candidates, and where τ̂ is not identified) and
    an exploration mask (U, k)."""
    exclude = exclude.tocsr()
    n_items = exclude.shape[1]
    k = min(k, n_items)
    n_best = k - min(n_explore, k)
    if n_best > candidates.size and candidates.size < n_items:
        raise ValueError(f"{n_best} best items per user asked, but only the best {candidates.size} are kept "
                         "(recommend.candidates)")
    items = np.full((len(users), k), -1, dtype=np.int64)
    values = np.full((len(users), k), np.nan)
    taus = np.full((len(users), k), np.nan)
    explore = np.zeros((len(users), k), dtype=bool)
    for at, user in enumerate(np.asarray(users, dtype=np.int64)):
        row = candidates.items[user]
        best = row[row >= 0][:n_best]
        extra = best[:0]
        if k > len(best):
            taken = np.zeros(n_items, dtype=bool)
            taken[exclude.indices[exclude.indptr[user] : exclude.indptr[user + 1]]] = True
            taken[best] = True
            rest = np.flatnonzero(~taken)
            rng = np.random.default_rng([seed, 31, int(user)])  # per user: a list does not depend on who else is asked
            extra = rng.choice(rest, size=min(k - len(best), len(rest)), replace=False) if len(rest) else rest
        chosen = np.r_[best, extra].astype(np.int64)
        items[at, : len(chosen)] = chosen
        explore[at, len(best) : len(chosen)] = True
        hit = row[None, :] == chosen[:, None]  # (len(chosen), C): where each listed item sits among the candidates
        found = hit.any(axis=1)
        where = hit.argmax(axis=1)
        values[at, : len(chosen)] = np.where(found, candidates.scores[user, where], np.nan)
        if candidates.uplift is not None:
            taus[at, : len(chosen)] = np.where(found, candidates.uplift[user, where], np.nan)
    return items, values, taus, explore


def reason(strategy: str, label: str, score: float, explored: bool, topic: str, keywords: Sequence[str],
           uplift: float | None, item_uplift: Sequence[float] | None = None) -> str:
    """One sentence a person can read: why this item is on the list (``item_uplift``: the item's mean
    uplift over users with its interval, in probability units)."""
    if explored:
        return "exploration: an item the model would not have picked, shown so the next log holds its outcome"
    about = f"topic '{topic}'" if topic else "no text topic"
    if keywords:
        about += f" ({', '.join(keywords[:3])})"
    effect = f"; estimated uplift {uplift * 100:+.1f} points for this user" if uplift is not None and np.isfinite(uplift) else ""
    if effect and item_uplift is not None and np.all(np.isfinite(item_uplift)):
        mean, low, high = (100 * float(v) for v in item_uplift)
        effect += f", {mean:+.1f} on average over users (95% CI {low:+.1f} to {high:+.1f})"
    if strategy == "uplift":
        return f"recommending it raises this user's chance of engaging the most: {about}{effect}"
    if strategy == "relevance":
        return f"the user would most likely engage with it if shown (P = {score:.2f}): {about}{effect}"
    return f"chosen by {label}, the intervention with the best lift: {about}{effect}"


def recommend(candidates: Candidates, users: np.ndarray, user_ids: np.ndarray, exclude: sparse.csr_matrix, notes: ItemNotes,
              config: RecommendConfig, seed: int, strategy: str, label: str) -> pd.DataFrame:
    """The lists of split ``users`` (their ids ``user_ids``) as one frame with :data:`COLUMNS`, cut
    from their ``candidates`` (``uplift``: τ̂ where identified, else NaN; ``strategy`` and ``label``:
    :class:`Chosen`'s)."""
    n_explore = int(round(config.exploration * config.k))
    items, values, taus, explore = top_k(candidates, users, exclude, config.k, n_explore, seed)
    keep = items >= 0
    u, r = np.nonzero(keep)
    item = items[u, r]
    identified = candidates.uplift is not None and notes.item_uplift is not None
    bands = notes.item_uplift[item] if identified else np.full((len(item), 3), np.nan)
    topic = [notes.topics[i] if notes.topics is not None else "" for i in item]
    keywords = [list(notes.keywords[i]) if notes.keywords is not None else [] for i in item]
    return pd.DataFrame({
        "user_id": np.asarray(user_ids)[u], "rank": r + 1, "item_id": notes.ids[item],
        "title": [notes.titles[i] for i in item] if notes.titles is not None else "",
        "score": values[u, r], "uplift": taus[u, r], "item_uplift": bands[:, 0], "item_uplift_low": bands[:, 1],
        "item_uplift_high": bands[:, 2], "exploration": explore[u, r], "topic": topic,
        "keywords": [", ".join(k) for k in keywords], "strategy": label,
        "reason": [reason(strategy, label, values[a, b], explore[a, b], t, kw, taus[a, b], band)
                   for a, b, t, kw, band in zip(u, r, topic, keywords, bands)],
    })


def best_intervention(metrics: Mapping[str, object], candidates: Sequence[str]) -> tuple[str | None, str]:
    """The intervention with the largest lift whose interval excludes zero (from the contrast stage's
    metrics), among ``candidates``; else None and why."""
    rows = []
    for name in candidates:
        lift, low = metrics.get(f"interventions/{name}/lift"), metrics.get(f"interventions/{name}/ci_low")
        if isinstance(lift, float) and isinstance(low, float) and low > 0:
            rows.append((lift, name))
    if not rows:
        return None, "no intervention's lift has an interval above zero"
    return max(rows)[1], ""


COLD_REASON = "cold user: not in the training log, so the most engaged-with items overall"


def cold_start(user_ids: Sequence[object], popularity: np.ndarray, notes: ItemNotes, k: int) -> pd.DataFrame:
    """Lists for users the model does not know: the ``k`` most popular items, labelled as a fallback."""
    order = np.argsort(-popularity, kind="stable")[: min(k, len(popularity))]
    rows = []
    for user in user_ids:
        for rank, item in enumerate(order, start=1):
            rows.append({"user_id": user, "rank": rank, "item_id": notes.ids[item],
                         "title": notes.titles[item] if notes.titles is not None else "", "score": float(popularity[item]),
                         "uplift": np.nan, "item_uplift": np.nan, "item_uplift_low": np.nan, "item_uplift_high": np.nan,
                         "exploration": False, "topic": notes.topics[item] if notes.topics is not None else "",
                         "keywords": ", ".join(notes.keywords[item]) if notes.keywords is not None else "",
                         "strategy": "popularity (cold user)", "reason": COLD_REASON})
    return pd.DataFrame(rows, columns=COLUMNS)


COLUMNS = ["user_id", "rank", "item_id", "title", "score", "uplift", "item_uplift", "item_uplift_low", "item_uplift_high",
           "exploration", "topic", "keywords", "strategy", "reason"]
"""The columns of every list frame (``recommendations.parquet``, the served model's answer): ``uplift``
is τ̂ for this user; ``item_uplift*`` the item's doubly robust mean uplift over users and its 95%
interval (:mod:`recause.tasks.recommend.intervals`); NaN where uplift is not identified."""
