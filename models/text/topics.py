"""Topics as clusters of item embeddings, each labelled by its most distinctive terms.

Clusters: k-means on the unit-norm embeddings (cosine geometry). Labels: class-based TF-IDF
(c-TF-IDF, Grootendorst 2022, as in BERTopic): all documents of a topic form one class document;
term t in class c weighs :math:`W_{t,c} = \\mathrm{tf}_{t,c} \\cdot \\log(1 + A / f_t)`, with
:math:`\\mathrm{tf}_{t,c}` the term's share of the class's words, :math:`f_t` its count over all
classes and A the mean number of words per class.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse


def cluster_topics(vectors: np.ndarray, n_topics: int, seed: int = 0) -> np.ndarray:
    """Topic id of every row of ``vectors`` (n, d): k-means with ``min(n_topics, n)`` clusters."""
    from sklearn.cluster import KMeans

    k = max(1, min(n_topics, len(vectors)))
    return KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(vectors).astype(np.int64)


def class_tfidf(doc_terms: sparse.csr_matrix, labels: np.ndarray, n_topics: int) -> np.ndarray:
    """c-TF-IDF weights, shape (n_topics, n_terms). ``doc_terms``: (n_docs, n_terms) counts."""
    membership = sparse.csr_matrix(
        (np.ones(len(labels)), (labels, np.arange(len(labels)))), shape=(n_topics, len(labels))
    )
    counts = np.asarray((membership @ doc_terms).todense(), dtype=np.float64)  # (T, V)
    words = counts.sum(axis=1, keepdims=True)
    tf = counts / np.maximum(words, 1.0)
    mean_words = words.mean()
    idf = np.log(1.0 + mean_words / np.maximum(counts.sum(axis=0), 1.0))
    return tf * idf[None, :]


def topic_terms(weights: np.ndarray, vocabulary: np.ndarray, n_terms: int = 5) -> list[list[str]]:
    """The ``n_terms`` heaviest terms of each topic, heaviest first (terms with weight 0 dropped)."""
    order = np.argsort(-weights, axis=1, kind="stable")[:, :n_terms]
    return [[str(vocabulary[j]) for j in row if weights[t, j] > 0] for t, row in enumerate(order)]
