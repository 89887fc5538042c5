"""Tag categories: each kind of match, roles and conditions, the YAML validation errors,
and the categories reaching the conversation's tags through the analyzer."""

from __future__ import annotations

import pytest

from nlp.categories import CategoryError, CategoryMatcher, conversation_categories, load_categories
from nlp.schemas import Channel, Role
from nlp.spacy_pipeline import load_pipeline
from tests.nlp.test_conversation import message

CONFIG = """
version: 1
categories:
  - name: refund
    match: {keywords: [refund]}
  - name: double_charge
    match: {phrases: [charged twice]}
  - name: order_number
    match: {regexes: ['order\\s+#?\\d{5,}']}
  - name: locked
    match:
      patterns: [[{LOWER: account}, {LOWER: {IN: [is, was]}, OP: "?"}, {LOWER: locked}]]
  - name: apology
    roles: [agent]
    match: {keywords: [sorry]}
  - name: angry_email
    channels: [email]
    sentiment: [negative]
    match: {keywords: [unacceptable]}
"""


@pytest.fixture(scope="module")
def matcher(tmp_path_factory) -> CategoryMatcher:
    path = tmp_path_factory.mktemp("categories") / "categories.yaml"
    path.write_text(CONFIG)
    return CategoryMatcher(load_pipeline(), load_categories(path))


def found(matcher: CategoryMatcher, text: str, role: Role = Role.customer) -> dict[str, str]:
    return {s.name: text[s.start : s.end] for s in matcher.match_doc(load_pipeline()(text), role)}


@pytest.mark.parametrize(
    "text, name, quote",
    [
        ("I want a REFUND today", "refund", "REFUND"),
        ("You charged twice for one order", "double_charge", "charged twice"),
        ("Where is order #1234567?", "order_number", "order #1234567"),
        ("My account was locked overnight", "locked", "account was locked"),
        ("my account locked again", "locked", "account locked"),
    ],
)
def test_each_kind_of_match(matcher, text, name, quote):
    assert found(matcher, text).get(name) == quote


def test_keywords_are_whole_words(matcher):
    assert "refund" not in found(matcher, "Is this ticket refundable?")


def test_roles_limit_who_can_match(matcher):
    assert "apology" not in found(matcher, "sorry to bother you", Role.customer)
    assert found(matcher, "I'm so sorry about the delay", Role.agent) == {"apology": "sorry"}
    assert "refund" not in found(matcher, "A refund is on its way", Role.agent)


def test_channel_and_sentiment_conditions_hold_at_conversation_level(matcher, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG)
    config = load_categories(path)
    from nlp.schemas import CategoryHit

    negative = message("m1", -0.8).model_copy(
        update={"categories": [CategoryHit(name="angry_email", quote="unacceptable")]}
    )
    positive = message("m1", 0.8).model_copy(
        update={"categories": [CategoryHit(name="angry_email", quote="unacceptable")]}
    )
    assert [c.name for c in conversation_categories([negative], config, Channel.email)] == ["angry_email"]
    assert conversation_categories([negative], config, Channel.chat) == []
    assert conversation_categories([positive], config, Channel.email) == []


@pytest.mark.parametrize(
    "text, named",
    [
        ("version: 1\ncategories:\n  - name: x\n    match: {keywrds: [a]}\n", "categories.0.match.keywrds"),
        ("version: 1\ncategories:\n  - name: x\n    match: {}\n", "at least one keyword"),
        ("version: 1\ncategories:\n  - name: x\n    match: {regexes: ['(unclosed']}\n", "does not compile"),
        (
            "version: 1\ncategories:\n  - name: x\n    sentiment: [furious]\n    match: {keywords: [a]}\n",
            "categories.0.sentiment",
        ),
        (
            "version: 1\ncategories:\n  - name: x\n    roles: [robot]\n    match: {keywords: [a]}\n",
            "categories.0.roles.0",
        ),
        ("version: 1\ncategories:\n  - name: Bad Name\n    match: {keywords: [a]}\n", "categories.0.name"),
        (
            "version: 1\ncategories:\n  - {name: x, match: {keywords: [a]}}\n  - {name: x, match: {keywords: [b]}}\n",
            "repeated",
        ),
        ("[not, a, mapping]\n", "expected a mapping"),
    ],
)
def test_validation_errors_name_the_bad_key(tmp_path, text, named):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(CategoryError, match=r"categories file .*bad.yaml") as error:
        load_categories(path)
    assert named in str(error.value)


def test_bad_spacy_pattern_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\ncategories:\n  - name: x\n    match: {patterns: [[{LOWR: a}]]}\n")
    with pytest.raises(CategoryError, match=r"x.match.patterns"):
        CategoryMatcher(load_pipeline(), load_categories(path))


def test_shipped_categories_reach_tags_with_redacted_quotes(analyzer):
    from nlp.inspection import TextInspector
    from nlp.redaction import Redactor
    from nlp.schemas import Transcript

    inspector = TextInspector(redactor=Redactor(), categories=load_categories())
    saved = analyzer.inspector
    analyzer.inspector = inspector
    try:
        result = analyzer.analyze(
            Transcript.model_validate(
                {
                    "channel": "chat",
                    "messages": [
                        {
                            "id": "a",
                            "role": "customer",
                            "text": "You charged twice my card 4111 1111 1111 1111, I want a refund.",
                        },
                        {"id": "b", "role": "agent", "text": "I'm sorry about that, let me check."},
                    ],
                }
            )
        )
    finally:
        analyzer.inspector = saved
    names = [c.name for c in result.conversation.categories]
    assert names[:2] == ["billing_dispute", "refund_request"] and "agent_apology" in names
    assert {"category:billing_dispute", "category:refund_request", "category:agent_apology"} <= set(
        result.conversation.tags
    )
    assert [c.name for c in result.messages[0].categories] == ["billing_dispute", "refund_request"]
    assert "4111" not in result.model_dump_json()
