"""Topic labels: class-based TF-IDF (each topic's documents read as one document, terms
weighted by how specific they are to it) over spaCy lemmas and pairs of neighbouring content words, a short
human-readable name from the top terms, and representative examples."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from nlp.text import normalize_text

CONTENT_POS = frozenset({"NOUN", "PROPN", "VERB", "ADJ"})
EXAMPLE_CHARS = 200  # examples are snippets for a list view, not whole messages
_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class TopicTerms:
    """The words that set one topic apart, best first, and a name made from them."""

    name: str
    keywords: list[str]
    scores: list[float]


def document_terms(texts: Sequence[str], nlp) -> list[list[str]]:
    """Per text: lemmas of content words (nouns, verbs, adjectives; no stop words) and
    each pair of neighbouring content words ("card payment", "cancel transfer").

    Pairs of neighbours, not the parser's noun chunks: the parser was 30% of the labelling
    time (the tagger is enough for lemmas and parts of speech), and a pair also keeps the
    verb-object phrases support topics are named by."""
    terms: list[list[str]] = []
    for doc in nlp.pipe((normalize_text(t) for t in texts), batch_size=256):
        content = [
            t.lemma_.lower() if t.is_alpha and not t.is_stop and len(t) > 1 and t.pos_ in CONTENT_POS else None
            for t in doc
        ]
        words = [w for w in content if w]
        pairs = [f"{a} {b}" for a, b in zip(content, content[1:]) if a and b and a != b]
        terms.append(words + pairs)
    return terms


def class_tfidf(
    terms: Sequence[Sequence[str]], classes: np.ndarray, count: int, *, min_frequency: int = 2
) -> tuple[sparse.csr_matrix, list[str]]:
    """(count, vocabulary) c-TF-IDF weights and the vocabulary. Term frequency is
    normalised within each topic; idf is log(1 + average topic length / term frequency
    over all topics), as in BERTopic's c-TF-IDF."""
    vocabulary: dict[str, int] = {}
    rows, cols = [], []
    for doc_terms, label in zip(terms, classes):
        if label < 0:
            continue
        for term in doc_terms:
            rows.append(int(label))
            cols.append(vocabulary.setdefault(term, len(vocabulary)))
    names = list(vocabulary)
    if not names:
        return sparse.csr_matrix((count, 0)), names
    counts = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(count, len(names)))
    counts.sum_duplicates()
    frequency = np.asarray(counts.sum(axis=0)).ravel()
    keep = np.flatnonzero(frequency >= min_frequency)
    if keep.size == 0:
        keep = np.arange(len(names))
    counts = counts[:, keep]
    names = [names[i] for i in keep]
    frequency = frequency[keep]
    lengths = np.asarray(counts.sum(axis=1)).ravel()
    average = lengths.mean() if lengths.size else 1.0
    idf = np.log(1.0 + average / frequency)
    tf = sparse.diags(1.0 / np.maximum(lengths, 1.0)) @ counts
    return sparse.csr_matrix(tf @ sparse.diags(idf)), names


def top_terms(weights: sparse.csr_matrix, vocabulary: Sequence[str], count: int) -> list[TopicTerms]:
    """The `count` best terms of each topic and a name from them."""
    results = []
    for row in range(weights.shape[0]):
        line = weights.getrow(row)
        order = line.indices[np.argsort(-line.data, kind="stable")][:count]
        scores = weights[row, order].toarray().ravel() if order.size else np.zeros(0)
        keywords = [vocabulary[i] for i in order]
        results.append(
            TopicTerms(name=topic_name(keywords), keywords=keywords, scores=[round(float(s), 4) for s in scores])
        )
    return results


def topic_name(keywords: Sequence[str]) -> str:
    """Two leading terms that do not repeat each other, e.g. 'card, arrive'; a topic
    without terms is named 'misc'."""
    chosen: list[str] = []
    for term in keywords:
        words = set(term.split())
        if any(words & set(c.split()) for c in chosen):
            continue
        chosen.append(term)
        if len(chosen) == 2:
            break
    return ", ".join(chosen) or "misc"


def slug(name: str) -> str:
    """Tag-safe form of a name: 'new card, arrive' -> 'new-card-arrive'."""
    return _SLUG.sub("-", name.lower()).strip("-") or "misc"


def unique_names(names: Iterable[str], ids: Sequence[int]) -> list[str]:
    """Names made unique by suffixing the topic id to repeats (tags must not collide)."""
    seen: dict[str, int] = {}
    for name in names:
        seen[name] = seen.get(name, 0) + 1
    return [f"{name} #{topic_id}" if seen[name] > 1 else name for name, topic_id in zip(names, ids)]


def representative_examples(
    texts: Sequence[str], embeddings: np.ndarray, members: np.ndarray, centroid: np.ndarray, count: int
) -> list[str]:
    """The `count` distinct member texts closest to the centroid, shortened to snippets."""
    if members.size == 0 or count <= 0:
        return []
    order = members[np.argsort(-(embeddings[members] @ centroid), kind="stable")]
    examples: list[str] = []
    seen: set[str] = set()
    for index in order:
        snippet = snippet_of(texts[index])
        if snippet.lower() in seen:
            continue
        seen.add(snippet.lower())
        examples.append(snippet)
        if len(examples) == count:
            break
    return examples


def snippet_of(text: str, limit: int = EXAMPLE_CHARS) -> str:
    """One line, at most `limit` characters, cut at a word boundary with an ellipsis."""
    line = normalize_text(text)  # also collapses newlines: a snippet is one line
    if len(line) <= limit:
        return line
    cut = line[: limit - 1].rsplit(" ", 1)[0]
    return cut + "…"
