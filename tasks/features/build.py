"""Text features: what the language model makes of items and users (the `features` stage).

- **Item text** = title, description and categories (whatever the dataset has).
- **User text** = profile text and the user's search queries in the training log.
- **User vectors** mix the user's text embedding with the recency-weighted mean embedding of the
  items they engaged with in training (weight :math:`2^{-\\text{age}/\\text{half-life}}`), so users
  without text still get a vector, and users without history are placed by their text.
- **Keywords** (items and users): MMR over a shared phrase vocabulary (:mod:`recause.models.text.keywords`).
- **Topics**: k-means clusters of item embeddings labelled by c-TF-IDF (:mod:`recause.models.text.topics`);
  on the synthetic world their agreement with the true main topic is measured (AMI).
- **Cold start**: a seeded share of items loses all its training interactions; the content
  baseline (user vector · item vector) ranks those items for every user who engaged with one.

The embedding function is passed in (``embed(texts) -> (n, d)``), so everything here is pure;
loading the model and the on-disk cache live in :mod:`recause.tasks.features.encoder` / :mod:`recause.tasks.features.cache`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recause.models.text.keywords import mmr_keywords
from recause.models.metrics import RankingAccumulator, top_k_items
from recause.models.policies.scores import RandomPolicy
from recause.models.text.topics import class_tfidf, cluster_topics, topic_terms
from recause.tasks.data.schema import Dataset
from recause.tasks.data.split import Split
from recause.tasks.features.config import FeaturesConfig

Embed = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class TextFeatures:
    """Embeddings and text-derived annotations, aligned to the split's user and item indices.

    ``item_vectors`` (n_items, d), ``user_vectors`` (n_users, d): unit vectors (zero rows for
    entities with neither text nor history); ``item_topics`` (n_items,); ``topics`` one row per
    topic (``topic, n_items, label, terms``); keywords as lists of phrases.
    """

    item_vectors: np.ndarray
    user_vectors: np.ndarray
    item_has_text: np.ndarray
    user_has_text: np.ndarray
    item_topics: np.ndarray
    topics: pd.DataFrame
    item_keywords: list[list[str]]
    user_keywords: list[list[str]]
    metrics: dict[str, float | str | bool] = field(default_factory=dict)


def item_documents(items: pd.DataFrame) -> pd.Series:
    """One document per item: title, description and categories, skipping what is missing or repeated."""
    title = _text(items, "title")
    body = _text(items, "text")
    body_repeats_title = (title != "") & pd.Series([b.startswith(t) for b, t in zip(body, title)], index=body.index)
    parts = [title.where(~body_repeats_title, ""), body]
    if "categories" in items.columns:
        cats = _text(items, "categories").str.replace("|", ", ", regex=False)
        parts.append(("Categories: " + cats).where(cats != "", ""))
    return _join(parts)


def user_documents(users: pd.DataFrame, train: pd.DataFrame, n_users: int) -> pd.Series:
    """One document per user (split index order): profile text and the queries they searched."""
    profile = _text(users, "profile_text").to_numpy()
    queries = pd.Series("", index=range(n_users))
    if "query" in train.columns:
        rows = train.loc[train["query"].notna(), ["user", "query"]]
        if not rows.empty:
            joined = rows.groupby("user")["query"].agg(lambda q: "; ".join(dict.fromkeys(q)))
            queries.loc[joined.index] = "Searches: " + joined
    return _join([pd.Series(profile), queries])


def history_vectors(
    n_users: int, user: np.ndarray, item: np.ndarray, seconds: np.ndarray | None, item_vectors: np.ndarray, half_life_days: float
) -> tuple[np.ndarray, np.ndarray]:
    """Recency-weighted mean of engaged items' vectors per user, and whether the user has history.

    Age is measured from the user's last engagement; without timestamps every engagement weighs 1.
    """
    weights = np.ones(len(user))
    if seconds is not None and len(user):
        last = np.full(n_users, -np.inf)
        np.maximum.at(last, user, seconds)
        weights = np.exp2(-(last[user] - seconds) / (86_400.0 * half_life_days))
    summed = np.zeros((n_users, item_vectors.shape[1]))
    np.add.at(summed, user, weights[:, None] * item_vectors[item])
    has = np.bincount(user, minlength=n_users) > 0
    return _normalise(summed), has


def mix_user_vectors(text: np.ndarray, has_text: np.ndarray, history: np.ndarray, has_history: np.ndarray, text_weight: float) -> np.ndarray:
    """``text_weight``·text + (1 − text_weight)·history where both exist, else whichever exists; normalised."""
    w_text = np.where(has_text, np.where(has_history, text_weight, 1.0), 0.0)[:, None]
    w_hist = np.where(has_history, np.where(has_text, 1.0 - text_weight, 1.0), 0.0)[:, None]
    return _normalise(w_text * text + w_hist * history)


def engagements(frame: pd.DataFrame, has_timestamps: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(user, item, seconds or None) of the positive rows of a split part."""
    pos = frame[frame["positive"]]
    seconds = None
    if has_timestamps and "timestamp" in pos.columns and pos["timestamp"].notna().all():
        seconds = pos["timestamp"].astype("int64").to_numpy() / 1e9
    return pos["user"].to_numpy(), pos["item"].to_numpy(), seconds


def text_features(split: Split, dataset: Dataset, embed: Embed, config: FeaturesConfig, seed: int) -> TextFeatures | None:
    """The stage's work on a validated dataset: :func:`build_text_features` of its tables, with the
    synthetic world's true main topics (when there is one) to score the topic clusters against."""
    truth = dataset.world.main_topics(split.items.ids) if dataset.world is not None else None
    return build_text_features(
        split, dataset.items, dataset.users, embed, config,
        has_timestamps=dataset.meta.has_timestamps, true_item_topics=truth, seed=seed,
    )


def build_text_features(
    split: Split,
    items: pd.DataFrame,
    users: pd.DataFrame,
    embed: Embed,
    config: FeaturesConfig,
    *,
    has_timestamps: bool,
    true_item_topics: np.ndarray | None = None,
    seed: int = 0,
) -> TextFeatures | None:
    """Embed, annotate and evaluate the text of a split's items and users; None when there is no text.

    ``items``/``users`` are the validated tables (any order; aligned here by id).
    """
    items = items.set_index("item_id").loc[split.items.ids].reset_index()
    users = users.set_index("user_id").loc[split.users.ids].reset_index()
    item_docs = item_documents(items)
    user_docs = user_documents(users, split.train, split.n_users)
    item_has_text, user_has_text = (item_docs != "").to_numpy(), (user_docs != "").to_numpy()
    if not item_has_text.any():
        return None

    vocabulary, doc_terms = phrase_vocabulary([item_docs, user_docs], config.max_phrases)
    item_terms, user_terms = doc_terms[: split.n_items], doc_terms[split.n_items :]
    # every embedding starts before any is read: where the embedder sends them to a parallel runner they
    # run at once while this process clusters and picks keywords (the users' texts, read last, queue last)
    items_ready = _start_where(embed, item_docs, item_has_text)
    users_ready = _start_where(embed, user_docs, user_has_text, priority=-1)
    phrases_ready = _start(embed, vocabulary.tolist()) if len(vocabulary) else None
    user_candidates = user_terms + _engaged_terms(split, item_terms)

    item_vectors = items_ready()
    text_rows = np.flatnonzero(item_has_text)
    n_topics = min(config.n_topics, len(text_rows))
    item_topics = np.full(split.n_items, -1, dtype=np.int64)
    item_topics[text_rows] = cluster_topics(item_vectors[text_rows], n_topics, seed)
    weights = class_tfidf(item_terms[text_rows], item_topics[text_rows], n_topics)
    terms = topic_terms(weights, vocabulary)
    topics = pd.DataFrame(
        {
            "topic": np.arange(n_topics),
            "n_items": np.bincount(item_topics[text_rows], minlength=n_topics),
            "label": [" / ".join(t[:3]) for t in terms],
            "terms": [", ".join(t) for t in terms],
        }
    )
    phrase_vectors = phrases_ready() if phrases_ready is not None else np.zeros((0, item_vectors.shape[1]), np.float32)
    item_keywords = _phrases(vocabulary, mmr_keywords(item_vectors, phrase_vectors, item_terms, config.n_keywords, config.keyword_diversity))

    user_text = users_ready(item_vectors.shape[1])
    history, has_history = history_vectors(
        split.n_users, *engagements(split.train, has_timestamps), item_vectors, config.recency_half_life_days
    )
    user_vectors = mix_user_vectors(user_text, user_has_text, history, has_history, config.text_weight)
    user_keywords = _phrases(vocabulary, mmr_keywords(user_vectors, phrase_vectors, user_candidates, config.n_keywords, config.keyword_diversity))
    metrics: dict[str, float | str | bool] = {
        "features/has_text": True,
        "features/n_items_with_text": int(item_has_text.sum()),
        "features/n_users_with_text": int(user_has_text.sum()),
        "features/n_users_with_vector": int((np.abs(user_vectors).sum(axis=1) > 0).sum()),
        "features/n_topics": n_topics,
        "features/n_phrases": len(vocabulary),
    }
    if true_item_topics is not None:
        from sklearn.metrics import adjusted_mutual_info_score

        metrics["features/topic_ami"] = float(adjusted_mutual_info_score(true_item_topics[text_rows], item_topics[text_rows]))
    metrics |= cold_start_metrics(split, item_vectors, user_text, user_has_text, config, has_timestamps, seed)
    return TextFeatures(item_vectors, user_vectors, item_has_text, user_has_text, item_topics, topics, item_keywords, user_keywords, metrics)


def cold_start_metrics(
    split: Split,
    item_vectors: np.ndarray,
    user_text: np.ndarray,
    user_has_text: np.ndarray,
    config: FeaturesConfig,
    has_timestamps: bool,
    seed: int,
    k: int = 20,
) -> dict[str, float]:
    """Recall/NDCG@k of the content baseline on items with no training interactions, against random.

    A seeded ``cold_item_fraction`` of the items that have positives becomes cold: their training
    rows are removed from every user's history, and each user's positives on cold items (in any part
    of the split) are the targets; only cold items are ranked.
    """
    positives = pd.concat([p[p["positive"]] for p in (split.train, split.val, split.test)])
    eligible = np.unique(positives["item"].to_numpy())
    n_cold = int(round(config.cold_item_fraction * len(eligible)))
    if n_cold < k + 1:
        return {}
    cold = np.sort(np.random.default_rng([seed, 11]).choice(eligible, size=n_cold, replace=False))
    is_cold = np.zeros(split.n_items, dtype=bool)
    is_cold[cold] = True
    warm_train = split.train[~is_cold[split.train["item"].to_numpy()]]
    history, has_history = history_vectors(
        split.n_users, *engagements(warm_train, has_timestamps), item_vectors, config.recency_half_life_days
    )
    users_vec = mix_user_vectors(user_text, user_has_text, history, has_history, config.text_weight)
    targets = positives[is_cold[positives["item"].to_numpy()]][["user", "item"]].drop_duplicates()
    column = np.full(split.n_items, -1)
    column[cold] = np.arange(n_cold)
    users = np.unique(targets["user"].to_numpy())
    rows = np.searchsorted(users, targets["user"].to_numpy())
    cols = column[targets["item"].to_numpy()]
    out: dict[str, float] = {"features/n_cold_items": float(n_cold), "features/n_cold_users": float(len(users))}
    random = RandomPolicy(split.n_items, seed)
    for name, scores in (("content", users_vec[users] @ item_vectors[cold].T), ("random", random.scores(users)[:, cold])):
        acc = RankingAccumulator([k])
        acc.add(top_k_items(scores, k), rows, cols)
        result = acc.result()
        suffix = "" if name == "content" else "_random"
        out[f"features/cold_recall_at_{k}{suffix}"] = result[f"recall_at_{k}"]
        out[f"features/cold_ndcg_at_{k}{suffix}"] = result[f"ndcg_at_{k}"]
    return out


def phrase_vocabulary(corpora: list[pd.Series], max_phrases: int, max_word_share: float = 0.5):
    """Candidate 1–2-gram phrases of the concatenated ``corpora`` and the (n_docs, n_phrases) counts.

    English stop words are dropped, and so are each corpus's own: words in more than
    ``max_word_share`` of a corpus's documents (template words such as "categories" in every item
    description, or "lately" in every profile, say nothing about one document), with every
    phrase containing one.
    """
    from scipy import sparse
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    texts = pd.concat(corpora, ignore_index=True).fillna("").tolist()
    empty = (np.array([], dtype=object), sparse.csr_matrix((len(texts), 0)))
    if not any(texts):
        return empty
    frequent: set[str] = set()
    for corpus in corpora:
        docs = [t for t in corpus.fillna("").tolist() if t]
        if len(docs) < 20:
            continue
        words = CountVectorizer(stop_words="english", binary=True)
        try:
            share = np.asarray(words.fit_transform(docs).mean(axis=0)).ravel()
        except ValueError:  # nothing but stop words
            continue
        frequent |= set(words.get_feature_names_out()[share > max_word_share])
    stop = sorted(ENGLISH_STOP_WORDS | frequent)
    for min_df in (2, 1):
        try:
            vectorizer = CountVectorizer(stop_words=stop, ngram_range=(1, 2), min_df=min_df, max_features=max_phrases)
            counts = vectorizer.fit_transform(texts).tocsr()
            return vectorizer.get_feature_names_out(), counts
        except ValueError:  # every phrase below min_df (tiny corpora)
            continue
    return empty


def _engaged_terms(split: Split, item_terms):
    """(n_users, n_phrases): phrases of the items each user engaged with in training."""
    from scipy import sparse

    pos = split.train[split.train["positive"]]
    engaged = sparse.csr_matrix(
        (np.ones(len(pos)), (pos["user"].to_numpy(), pos["item"].to_numpy())), shape=(split.n_users, split.n_items)
    )
    return (engaged @ item_terms).tocsr()


def _start(embed: Embed, texts: list[str], priority: int = 0) -> Callable[[], np.ndarray]:
    """``embed(texts)`` started (the embedder's ``start`` where it has one, else computed now); the
    returned function gives the (n, d) vectors."""
    start = getattr(embed, "start", None)
    if start is not None:
        return start(texts, priority)
    vectors = embed(texts)
    return lambda: vectors


def _start_where(embed: Embed, documents: pd.Series, mask: np.ndarray, priority: int = 0) -> Callable[[int | None], np.ndarray]:
    """The ``mask``-ed documents' embedding started; the returned function gives (len(documents), d)
    vectors with zero rows where ``mask`` is false (``d`` the given width when none is marked)."""
    pending = _start(embed, documents[mask].tolist(), priority) if mask.any() else None

    def placed(dim: int | None = None) -> np.ndarray:
        vectors = pending() if pending is not None else np.zeros((0, dim or 0), np.float32)
        out = np.zeros((len(documents), vectors.shape[1] if pending is not None else dim), dtype=np.float32)
        out[mask] = vectors
        return out

    return placed


def _phrases(vocabulary: np.ndarray, picks: np.ndarray) -> list[list[str]]:
    return [[str(vocabulary[j]) for j in row if j >= 0] for row in picks]


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series("", index=frame.index)
    return frame[column].astype("string").fillna("").str.strip().astype(object)


def _join(parts: list[pd.Series]) -> pd.Series:
    """Join non-empty parts row-wise as sentences ("A. B."), vectorised over rows."""
    out = pd.Series("", index=range(len(parts[0])), dtype=object)
    for part in parts:
        part = part.reset_index(drop=True).str.rstrip(".")
        out = out.where(part == "", out.where(out == "", out + ". ") + part)
    return out.where(out == "", out + ".")


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norm > 0, norm, 1.0)).astype(np.float32)
