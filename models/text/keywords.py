"""Keywords by embedding similarity with a diversity step (maximal marginal relevance).

The scoring is KeyBERT's (Grootendorst, 2020): a candidate phrase scores its cosine similarity
to the document, and phrases are picked greedily by MMR (Carbonell & Goldstein, 1998),

.. math:: \\arg\\max_{c \\notin S} \\; (1-\\lambda)\\,\\cos(d, c) - \\lambda \\max_{s \\in S} \\cos(c, s).

KeyBERT itself embeds every candidate of every document separately; for a catalogue the
candidates come from one shared vocabulary, so here each phrase is embedded once and all
documents are scored in batched matrix products — the same keywords for a fraction of the
encoder calls. That is why this is a small implementation and not the library.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse


def mmr_keywords(
    doc_vectors: np.ndarray,
    phrase_vectors: np.ndarray,
    doc_phrases: sparse.csr_matrix,
    top_n: int = 5,
    diversity: float = 0.5,
    batch: int = 512,
) -> np.ndarray:
    """Indices of each document's keywords, best first; -1 where it has fewer candidates.

    Parameters
    ----------
    doc_vectors : (n_docs, d) unit vectors.
    phrase_vectors : (n_phrases, d) unit vectors of the candidate phrases.
    doc_phrases : (n_docs, n_phrases) sparse; non-zero where the phrase is a candidate for the doc.
    top_n : keywords per document.
    diversity : λ in [0, 1]; 0 = plain similarity ranking, 1 = maximal spread.

    Returns
    -------
    (n_docs, top_n) int64.
    """
    if not 0.0 <= diversity <= 1.0:
        raise ValueError(f"diversity must lie in [0, 1], got {diversity}")
    if doc_phrases.shape != (len(doc_vectors), len(phrase_vectors)):
        raise ValueError(
            f"doc_phrases has shape {doc_phrases.shape}, expected ({len(doc_vectors)}, {len(phrase_vectors)})"
        )
    out = np.full((len(doc_vectors), top_n), -1, dtype=np.int64)
    for start in range(0, len(doc_vectors), batch):
        rows = slice(start, start + batch)
        candidate = doc_phrases[rows].toarray() > 0  # (B, V)
        relevance = np.where(candidate, doc_vectors[rows] @ phrase_vectors.T, -np.inf)  # (B, V)
        redundancy = np.full(relevance.shape, -np.inf)
        for step in range(top_n):
            score = relevance if step == 0 else (1 - diversity) * relevance - diversity * redundancy
            pick = np.argmax(score, axis=1)
            valid = np.isfinite(score[np.arange(len(pick)), pick])
            out[rows, step] = np.where(valid, pick, -1)
            relevance[np.arange(len(pick)), pick] = -np.inf
            redundancy = np.maximum(redundancy, phrase_vectors[pick] @ phrase_vectors.T)
    return out
