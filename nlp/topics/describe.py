"""What a topic says about itself: its keywords and name (c-TF-IDF over a seeded sample of
its documents), its representative examples and most representative message (redacted,
as every quote that leaves the library is), and a readable label that pairs the two.
Used by the fit and by curation (a split names its parts the same way)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from nlp.redaction import Redactor
from nlp.topics.clustering import centroids_of
from nlp.topics.config import TopicFitConfig
from nlp.topics.labels import (
    TopicTerms,
    class_tfidf,
    document_terms,
    representative_examples,
    slug,
    snippet_of,
    top_terms,
    unique_names,
)
from nlp.topics.model import TopicEntry

LABEL_KEYWORDS = 3  # a label is read at a glance: three terms, then the message
LABEL_CHARS = 120  # the representative message in a label is a one-line quote


def readable_label(keywords: Sequence[str], representative: str) -> str:
    """'card, activate, app — “How do I activate my new card?”' (keywords alone when the
    topic has no message, the message alone when it has no keywords, '' with neither)."""
    terms = ", ".join(keywords[:LABEL_KEYWORDS])
    quote = f"“{snippet_of(representative, LABEL_CHARS)}”" if representative else ""
    return " — ".join(part for part in (terms, quote) if part)


def label_terms(
    texts: Sequence[str], labels: np.ndarray, count: int, config: TopicFitConfig, nlp=None
) -> list[TopicTerms]:
    """c-TF-IDF terms per topic, over a seeded sample of each topic's documents (see
    `label_sample` and `label_budget`)."""
    if count == 0:
        return []
    if nlp is None:
        from nlp.spacy_pipeline import load_term_pipeline

        nlp = load_term_pipeline()
    rng = np.random.default_rng(config.seed)
    per_topic = max(min(config.label_sample, config.label_budget // count), 3)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(count + 1))
    chosen = []
    for k in range(count):
        members = order[bounds[k] : bounds[k + 1]]
        if members.size > per_topic:
            members = np.sort(rng.choice(members, per_topic, replace=False))
        chosen.append(members)
    rows = np.concatenate(chosen)
    terms = document_terms([texts[i] for i in rows], nlp)
    weights, vocabulary = class_tfidf(terms, labels[rows], count)
    return top_terms(weights, vocabulary, config.top_terms)


def describe_topics(
    texts: Sequence[str],
    embeddings: np.ndarray,
    labels: np.ndarray,
    ids: Sequence[int],
    config: TopicFitConfig,
    *,
    nlp=None,
    redactor: Redactor | None = None,
    fixed_names: Mapping[int, str] | None = None,
    centroids: np.ndarray | None = None,
) -> tuple[list[TopicEntry], np.ndarray]:
    """Entries and (k, dim) centroids for topics 0..k-1 of `labels` (k = len(ids)).
    `fixed_names` (topic index -> name) names seeded topics; `centroids` replaces the
    members' mean (a seeded topic's centre is its seed)."""
    count = len(ids)
    fixed_names = fixed_names or {}
    if centroids is None:
        centroids = centroids_of(embeddings, labels, count)
    terms = label_terms(texts, labels, count, config, nlp)
    sizes = np.bincount(labels[labels >= 0], minlength=count)
    names = unique_names([fixed_names.get(k, terms[k].name) for k in range(count)], ids)
    examples = [
        representative_examples(texts, embeddings, np.flatnonzero(labels == k), centroids[k], config.examples)
        for k in range(count)
    ]
    redacted = redact_all(examples, redactor)
    entries = [
        TopicEntry(
            id=ids[k],
            name=names[k],
            tag=slug(names[k]),
            keywords=terms[k].keywords,
            size=int(sizes[k]),
            examples=redacted[k],
            representative=redacted[k][0] if redacted[k] else "",
            # A seed no message reached yet has neither keywords nor messages: its name is its label.
            label=readable_label(terms[k].keywords, redacted[k][0] if redacted[k] else "") or names[k],
            seeded=k in fixed_names,
            pinned_name=k in fixed_names,
        )
        for k in range(count)
    ]
    return entries, centroids


def redact_all(groups: Sequence[Sequence[str]], redactor: Redactor | None) -> list[list[str]]:
    """Each group of snippets redacted, in one spaCy pass over all of them."""
    flat = [text for group in groups for text in group]
    if not flat:
        return [[] for _ in groups]
    redacted = iter((redactor or Redactor()).redact_many(flat))
    return [[next(redacted).text for _ in group] for group in groups]
