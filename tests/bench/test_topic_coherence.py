"""The bench's coherence figure: NPMI of topic keywords over the fitted corpus."""

from __future__ import annotations

import pytest

from bench.topic_coherence import document_words, npmi_coherence

DOCS = [
    frozenset({"card", "lost", "stolen"}),
    frozenset({"card", "lost"}),
    frozenset({"refund", "order"}),
    frozenset({"refund", "order", "late"}),
]


def test_words_that_always_co_occur_score_one_and_never_minus_one():
    assert npmi_coherence([["refund", "order"]], DOCS) == pytest.approx(1.0)
    assert npmi_coherence([["card", "refund"]], DOCS) == pytest.approx(-1.0)
    assert npmi_coherence([["refund", "order"], ["card", "refund"]], DOCS) == pytest.approx(0.0)


def test_a_multi_word_keyword_needs_all_its_words_and_lemmas_count():
    # "lost card" is in documents 0 and 1, exactly where "card" is.
    assert npmi_coherence([["lost card", "card"]], DOCS) == pytest.approx(1.0)
    words = document_words(["My cards were charged twice"])
    assert {"card", "cards", "charge", "charged"} <= words[0]
