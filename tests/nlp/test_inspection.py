"""The text inspector's token screen: a message is parsed only when its tokens hold a cue
candidate, and NER runs only where something is redacted, yet every answer equals the one
from running every spaCy component on every message. Entities never depend on the parse:
every redaction path reads the recogniser run alone (nlp.spacy_pipeline.entity_docs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nlp.categories import CategoryConfig, load_categories
from nlp.cues import _PHRASES, _SETS
from nlp.inspection import TextInspector
from nlp.redaction import Redactor
from nlp.schemas import Role
from tests.nlp.test_cues import NEGATIVE, POSITIVE

DATA = Path(__file__).resolve().parents[2] / "data"


def _corpus() -> list[tuple[str, Role]]:
    rows = [(text, Role.customer) for _, text in POSITIVE + NEGATIVE]
    for line in (DATA / "escalation" / "conversations.jsonl").read_text(encoding="utf-8").splitlines():
        rows += [(m["text"], Role(m["role"])) for m in json.loads(line)["messages"]]
    for line in (DATA / "urgency" / "messages_a.jsonl").read_text(encoding="utf-8").splitlines()[:150]:
        rows.append((json.loads(line)["text"], Role.customer))
    return rows


CORPUS = _corpus()
POS_CATEGORY = CategoryConfig.model_validate(
    {
        "categories": [
            {"name": "named_rival", "match": {"patterns": [[{"LOWER": {"IN": ["to", "with"]}}, {"POS": "PROPN"}]]}},
            {"name": "refund", "match": {"keywords": ["refund"]}, "roles": ["customer", "agent"]},
        ]
    }
)


def _inspectors(categories: CategoryConfig) -> tuple[TextInspector, TextInspector]:
    made = [TextInspector(redactor=Redactor(), categories=categories, screen_tokens=screen) for screen in (True, False)]
    return made[0], made[1]


@pytest.fixture(scope="module")
def shipped() -> tuple[TextInspector, TextInspector]:
    return _inspectors(load_categories())


@pytest.mark.parametrize("redact", [True, False])
def test_screened_inspection_equals_parsing_everything(shipped, redact):
    screened, reference = shipped
    texts, roles = [t for t, _ in CORPUS], [r for _, r in CORPUS]
    got = screened.inspect(texts, roles, redact=redact)
    assert got == reference.inspect(texts, roles, redact=redact)
    assert sum(bool(i.cues) for i in got) > 100  # the corpus exercises the cue path, not only the screen
    if redact:
        assert any(i.redacted_text != t for i, t in zip(got, texts))
    else:
        assert all(i.redacted_text == t for i, t in zip(got, texts))


def test_every_redaction_path_reads_the_same_entities(shipped):
    """The inspector (parsed or not) and the redactor redact alike. "n’t x" is a text whose
    entities differed once a parse had set its sentence boundaries."""
    texts = [t for t, _ in CORPUS] + ["n’t x", "lol Sue not you"]
    roles = [r for _, r in CORPUS] + [Role.customer, Role.customer]
    expected = [r.text for r in Redactor().redact_many(texts)]
    assert sum(e != t for e, t in zip(expected, texts)) > 10
    for inspector in shipped:
        assert [i.redacted_text for i in inspector.inspect(texts, roles)] == expected


def test_categories_that_read_the_parse_are_matched_on_a_parse():
    screened, reference = _inspectors(POS_CATEGORY)
    assert screened.categories.needs_parse and not TextInspector(categories=load_categories()).categories.needs_parse
    texts = ["I'm moving to Vodafone next week", "I'm moving to a new flat", "a refund please", "Refund issued."]
    roles = [Role.customer, Role.customer, Role.customer, Role.agent]
    got = screened.inspect(texts, roles, redact=False)
    assert got == reference.inspect(texts, roles, redact=False)
    assert [c.name for c in got[0].categories] == ["named_rival"] and not got[1].categories
    assert [c.name for c in got[3].categories] == ["refund"]


def _spy_on_pipe(inspector: TextInspector, monkeypatch) -> list[tuple[int, tuple[str, ...]]]:
    """Record (number of Docs, components left out) for each spaCy pipe call."""
    runs: list[tuple[int, tuple[str, ...]]] = []
    pipe = inspector.nlp.pipe

    def spy(docs, disable=()):
        docs = list(docs)
        runs.append((len(docs), tuple(disable)))
        return pipe(docs, disable=disable)

    monkeypatch.setattr(inspector.nlp, "pipe", spy)
    return runs


def ran(runs: list[tuple[int, tuple[str, ...]]], component: str) -> int:
    return sum(n for n, skipped in runs if component not in skipped)


def test_messages_without_candidates_skip_the_parser(shipped, monkeypatch):
    screened, _ = shipped
    runs = _spy_on_pipe(screened, monkeypatch)
    texts = ["What time do you open on Sunday?", "I'm cancelling my account today.", "Thanks, that works."]
    found = screened.inspect(texts, [Role.customer] * 3, redact=False)
    assert [bool(i.cues) for i in found] == [False, True, False]
    assert ran(runs, "parser") == 1  # only the cancellation was parsed
    assert ran(runs, "ner") == 0  # and its quote is the detector's own words: nothing to redact
    runs.clear()
    screened.inspect(texts, [Role.customer] * 3, redact=True)
    assert ran(runs, "ner") == 3  # stored text is redacted: NER on all
    assert ran(runs, "parser") == 1


def test_cue_quotes_beyond_the_detectors_words_are_redacted(shipped, monkeypatch):
    screened, reference = shipped
    runs = _spy_on_pipe(screened, monkeypatch)
    texts = ["I'm cancelling my account today.", "Let me speak with Mary's manager"]
    literal, free = screened.inspect(texts, [Role.customer] * 2, redact=False)
    assert [c.quote for c in literal.cues] == ["I'm cancelling my account"]
    [quote] = [c.quote for c in free.cues if c.family == "human_request"]
    assert "Mary" not in quote and "[person]" in quote
    assert ran(runs, "ner") == 1  # the second message only, after its parse found the cue
    assert [literal, free] == reference.inspect(texts, [Role.customer] * 2, redact=False)


def test_pattern_quotes_are_redacted_and_keyword_quotes_kept_without_ner(shipped, monkeypatch):
    screened, _ = shipped
    delivery = "The parcel for Mary Johnson at 14 Baker Street is late"  # a regex category: quote can hold anything
    keyword = "I want a refund for Mary Johnson"  # a keyword category: the quote is the configured word
    runs = _spy_on_pipe(screened, monkeypatch)
    late, refund = screened.inspect([delivery, keyword], [Role.customer] * 2, redact=False)
    [quote] = [c.quote for c in late.categories if c.name == "delivery_problem"]
    assert "Mary" not in quote and "[person]" in quote and late.redacted_text == delivery
    assert [(c.name, c.quote) for c in refund.categories] == [("refund_request", "refund")]
    assert ran(runs, "ner") == 1  # for the regex quote only


_WORDS = sorted(
    {w for words in _SETS.values() for w in words.split()}
    | {w for phrases in _PHRASES.values() for p in phrases.split(",") for w in p.split()}
    | {"not", "if", "never", "Sue", "John", "London", "?", "!", ".", ",", "lol", "how", "do", "can", "you"}
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.sampled_from(_WORDS), min_size=1, max_size=14).map(" ".join), min_size=1, max_size=4))
def test_screen_never_hides_a_cue_in_random_cue_word_salad(shipped, texts):
    screened, reference = shipped
    roles = [Role.customer] * len(texts)
    assert screened.inspect(texts, roles) == reference.inspect(texts, roles)
