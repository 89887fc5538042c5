"""Topic coherence: mean NPMI (Bouma, 2009) of each topic's top keywords, counted over the
documents of the corpus the topics were fitted on (a document holds a term when it holds
every word of it; NPMI of a pair that never co-occurs is -1).

Both tools' keywords are scored on the same footing: each document's set of words is its
lower-cased tokens plus their spaCy lemmas, so convintel's lemmas ("charge") and noun
chunks ("card payment") and BERTopic's surface words ("charged") are all found."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse


def document_words(texts: Sequence[str], nlp=None) -> list[frozenset[str]]:
    """Per text, the lower-cased alphabetic tokens and their lemmas."""
    if nlp is None:
        from nlp.spacy_pipeline import load_term_pipeline

        nlp = load_term_pipeline()
    words = []
    for doc in nlp.pipe(texts, batch_size=256):
        words.append(frozenset(w for t in doc if t.is_alpha for w in (t.lower_, t.lemma_.lower())))
    return words


def npmi_coherence(topics: Sequence[Sequence[str]], documents: Sequence[frozenset[str]], top: int = 10) -> float:
    """Mean over topics of the mean NPMI of their top-`top` keyword pairs (topics with
    fewer than two keywords are skipped; NaN when none is left)."""
    vocabulary: dict[str, int] = {}
    for doc in documents:
        for word in doc:
            vocabulary.setdefault(word, len(vocabulary))
    rows = [i for i, doc in enumerate(documents) for _ in doc]
    cols = [vocabulary[w] for doc in documents for w in doc]
    incidence = sparse.csr_matrix(
        (np.ones(len(rows), dtype=bool), (rows, cols)), shape=(len(documents), len(vocabulary))
    )
    incidence = incidence.tocsc()
    n = len(documents)
    scores = []
    for keywords in topics:
        present = [_documents_with(term, incidence, vocabulary, n) for term in list(keywords)[:top]]
        pairs = []
        for i in range(len(present)):
            for j in range(i + 1, len(present)):
                pairs.append(_npmi(present[i], present[j], n))
        if pairs:
            scores.append(float(np.mean(pairs)))
    return float(np.mean(scores)) if scores else float("nan")


def _documents_with(term: str, incidence: sparse.csc_matrix, vocabulary: dict[str, int], n: int) -> np.ndarray:
    """Boolean (n,) mask of the documents holding every word of `term`."""
    mask = np.ones(n, dtype=bool)
    for word in term.lower().split():
        column = vocabulary.get(word)
        if column is None:
            return np.zeros(n, dtype=bool)
        hit = np.zeros(n, dtype=bool)
        hit[incidence.indices[incidence.indptr[column] : incidence.indptr[column + 1]]] = True
        mask &= hit
    return mask


def _npmi(a: np.ndarray, b: np.ndarray, n: int) -> float:
    joint = np.count_nonzero(a & b) / n
    if joint == 0:
        return -1.0
    p_a, p_b = np.count_nonzero(a) / n, np.count_nonzero(b) / n
    if joint == 1.0:
        return 1.0
    return float(np.log(joint / (p_a * p_b)) / -np.log(joint))
