"""Conversation summary, escalation policy and insights on hand-built message analyses
(no model involved, so each rule is checked exactly)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nlp.conversation import summarize_conversation
from nlp.policy import Policy, PolicyError, load_policy
from nlp.schemas import (
    CategoryHit,
    ComplaintResult,
    CueHit,
    EmotionScore,
    MessageAnalysis,
    Role,
    SentimentResult,
    TopicScore,
    UrgencyResult,
)
from nlp.signals import Turn, word_overlap

# The shipped rules and thresholds with the hand-set experience score, which the
# insights tests below check (the fitted one: tests/nlp/test_experience.py).
POLICY = load_policy().model_copy(update={"experience": None})
T0 = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)


def message(
    mid: str, score: float = 0.0, *, role=Role.customer, urgency="low", p_high=0.0, p_critical=0.0, emotions=(), cues=()
) -> MessageAnalysis:
    negative, positive = max(-score, 0.0), max(score, 0.0)
    label = "negative" if score < -0.2 else "positive" if score > 0.2 else "neutral"
    probs = {"low": 1.0 - p_high - p_critical, "medium": 0.0, "high": p_high, "critical": p_critical}
    return MessageAnalysis(
        id=mid,
        role=role,
        sentiment=SentimentResult(
            label=label,
            score=score,
            probabilities={"negative": negative, "neutral": 1 - negative - positive, "positive": positive},
        ),
        emotions=[EmotionScore(label=label, score=s) for label, s in emotions]
        or [EmotionScore(label="neutral", score=0.9)],
        urgency=UrgencyResult(label=urgency, score=0.0, probabilities=probs),
        cues=[CueHit(family=f, quote=q) for f, q in cues],
    )


def summarize(
    *analyses: MessageAnalysis,
    texts: dict[str, str] | None = None,
    minutes: dict[str, int] | None = None,
    policy: Policy = POLICY,
    metadata: dict | None = None,
):
    """The conversation of `analyses` (texts and minutes after T0 by message id, the
    conversation's `metadata`), summarised under `policy`."""
    texts, minutes = texts or {}, minutes or {}
    turns = [
        Turn(
            id=a.id,
            role=a.role,
            text=texts.get(a.id, "some text"),
            timestamp=T0 + timedelta(minutes=minutes[a.id]) if a.id in minutes else None,
        )
        for a in analyses
    ]
    return summarize_conversation(list(analyses), turns, policy, metadata=metadata)


def test_calm_conversation_needs_nothing():
    summary = summarize(message("a", 0.1), message("b", 0.5, role=Role.agent), message("c", 0.6))
    assert summary.customer_messages == 2
    assert summary.sentiment_trend.label == "improving"
    assert summary.escalation.level == "none" and not summary.escalation.recommended
    assert summary.escalation.route_to == "none"
    assert summary.escalation.response_style.style == "friendly and efficient"
    assert summary.tags == ["sentiment:neutral", "trend:improving", "urgency:low"]


@pytest.mark.parametrize(
    "family,level,route",
    [
        ("safety", "urgent", "supervisor"),
        ("security", "urgent", "security"),
        ("legal", "escalate", "supervisor"),
        ("cancellation", "escalate", "retention"),
        ("public_complaint", "escalate", "senior_agent"),
        ("human_request", "escalate", "supervisor"),
    ],
)
def test_each_cue_family_sets_level_route_and_quotes_evidence(family, level, route):
    summary = summarize(message("a", -0.1), message("b", -0.2, cues=[(family, "the quoted phrase")]))
    escalation = summary.escalation
    assert (escalation.level, escalation.route_to, escalation.recommended) == (level, route, True)
    reason = escalation.reasons[0]
    assert f"cue:{family}" in reason.signals
    assert reason.evidence[0].message_id == "b" and reason.evidence[0].quote == "the quoted phrase"
    assert f"risk:{family}" in summary.tags
    assert summary.insights.interaction_type == "high_emotion" and summary.insights.automation_fit == "low"


def test_repeat_contact_escalates_only_when_unhappy():
    cue = [("repeat_contact", "third time I'm writing")]
    assert summarize(message("a", -0.6, cues=cue)).escalation.level == "escalate"
    assert summarize(message("a", 0.3, cues=cue)).escalation.level == "monitor"


def test_urgency_rules_use_probabilities():
    critical = summarize(message("a", -0.3, urgency="critical", p_critical=0.7))
    assert critical.escalation.level == "urgent" and critical.escalation.reasons[0].rule == "critical_urgency"
    assert critical.escalation.confidence == pytest.approx(0.7)
    # Labelled critical but unsure: not urgent on this alone.
    unsure = summarize(message("a", -0.3, urgency="critical", p_high=0.3, p_critical=0.35))
    assert unsure.escalation.level == "escalate"


def test_worsening_with_sharp_drop_escalates_with_trajectory():
    summary = summarize(message("a", 0.4), message("b", 0.3), message("c", -0.8))
    trend = summary.sentiment_trend
    assert trend.label == "worsening" and trend.change == pytest.approx(-1.2)
    assert trend.slope < 0
    assert [(d.from_message_id, d.to_message_id) for d in trend.sharp_drops] == [("b", "c")]
    assert summary.escalation.level == "escalate"
    assert "sharp_drop_to_negative" in [r.rule for r in summary.escalation.reasons]


def test_anger_escalates_only_when_customer_is_negative_overall():
    angry = [("anger", 0.8)]
    negative = summarize(message("a", -0.7, emotions=angry))
    assert negative.escalation.level == "escalate"
    assert negative.escalation.response_style.emotion == "anger"
    assert negative.escalation.response_style.style == "empathetic and steady"
    # Same anger score, but the customer is positive overall (e.g. angry at a third party).
    assert summarize(message("a", 0.6, emotions=angry), message("b", 0.7)).escalation.level != "escalate"


@pytest.mark.parametrize(
    "emotion,style",
    [
        ("frustration", "calm and validating"),
        ("anxiety", "reassuring and clear"),
        ("disappointment", "supportive and proactive"),
        ("confusion", "clear step-by-step"),
    ],
)
def test_response_style_follows_the_emotion_map(emotion, style):
    summary = summarize(message("a", -0.1, emotions=[(emotion, 0.55)]))
    assert summary.escalation.response_style.style == style
    assert summary.escalation.level == "monitor"


def test_timing_cues_and_long_wait():
    a, b = message("a", -0.1), message("b", 0.0, role=Role.agent)
    c, d = message("c", -0.2), message("d", 0.0, role=Role.agent)
    summary = summarize(
        a, b, c, d, minutes={"a": 0, "b": 3, "c": 4, "d": 24}, texts={"d": "So sorry for the wait, I understand."}
    )
    timing = summary.timing
    assert timing.first_response_seconds == 180
    assert timing.longest_wait_seconds == 20 * 60 and timing.longest_wait_message_id == "c"
    assert timing.agent_acknowledged is True
    assert "long_wait" in [r.rule for r in summary.escalation.reasons]
    no_times = summarize(a, b)
    assert no_times.timing.first_response_seconds is None and not no_times.timing.agent_acknowledged


def test_customer_repeating_to_a_bot():
    turns = [
        message("a", -0.1),
        message("b", 0, role=Role.bot),
        message("c", -0.3),
        message("d", 0, role=Role.bot),
        message("e", -0.4),
    ]
    texts = {
        "a": "I want to talk to an agent",
        "b": "I can help with billing.",
        "c": "agent please",
        "d": "Sorry, I didn't get that.",
        "e": "AGENT",
    }
    summary = summarize(*turns, texts=texts)
    assert summary.repeated_to_bot == ["c", "e"]
    assert summary.escalation.level == "escalate" and "bot:repeated" in summary.tags
    # A person answering in between breaks the loop.
    texts_with_agent = {**texts, "b": "Hi, I'm Sam from support."}
    with_agent = [turns[0], message("b", 0, role=Role.agent), *turns[2:3]]
    assert summarize(*with_agent, texts=texts_with_agent).repeated_to_bot == []
    assert word_overlap("agent please", "AGENT") == 1.0 and word_overlap("", "x") == 0.0


def test_agent_messages_do_not_drive_customer_signals():
    summary = summarize(
        message("a", -0.9, role=Role.agent, urgency="critical", p_critical=1.0, cues=[("legal", "lawyer")])
    )
    assert summary.customer_messages == 0
    assert summary.sentiment is None and summary.highest_urgency is None and summary.risk_cues == []
    assert summary.escalation.level == "none"
    assert summary.insights.experience_score == 50


def test_resolution_and_experience_score():
    resolved = summarize(
        message("a", -0.4),
        message("b", 0.1, role=Role.agent),
        message("c", 0.8),
        texts={"c": "That worked, thank you!"},
    )
    assert resolved.insights.resolution.label == "resolved" and resolved.insights.resolution.message_id == "c"
    assert resolved.insights.experience_score == round(50 + 35 * 0.8 + 15)
    unresolved = summarize(
        message("a", -0.4),
        message("b", 0.1, role=Role.agent),
        message("c", -0.6),
        texts={"c": "It's still not working."},
    )
    assert unresolved.insights.resolution.label == "unresolved"
    assert unresolved.insights.experience_score == round(50 - 35 * 0.6 - 15)
    assert summarize(message("a", 0.0)).insights.resolution.label == "unknown"


def test_interaction_types():
    advisory = summarize(message("a", 0.1), texts={"a": "Which plan would you recommend for a family of four?"})
    assert advisory.insights.interaction_type == "advisory" and advisory.insights.automation_fit == "high"
    proactive = summarize(message("x", 0.0, role=Role.agent), message("a", 0.2))
    assert proactive.insights.interaction_type == "proactive"


POLICY_ERRORS = [
    ("rules:\n  - name: x\n    level: urgent\n    when: {urgncy_at_least: high}\n", "rules.0.when.urgncy_at_least"),
    ("rules:\n  - name: x\n    level: critical\n    when: {cue: legal}\n", "rules.0.level"),
    ("rules:\n  - name: x\n    level: urgent\n    when: {cue: lawsuits}\n", "unknown cue family 'lawsuits'"),
    ("rules:\n  - name: x\n    level: urgent\n    when: {}\n", "at least one condition"),
    ("rules:\n  - name: x\n    level: urgent\n    route_to: nowhere\n    when: {cue: legal}\n", "route_to 'nowhere'"),
    ("thresholds: {trend_min_change: -1}\n", "thresholds.trend_min_change"),
    ("colour: blue\n", "colour"),
    ("rules:\n  - name: x\n    level: urgent\n    when: {metadata: {}}\n", "metadata needs at least one key"),
    ("rules:\n  - name: x\n    level: urgent\n    when: {metadata: {tier: []}}\n", "a non-empty list"),
    ("rules:\n  - name: x\n    level: urgent\n    when: {complaint: maybe}\n", "complaint"),
    ("rules: [\n", "not valid YAML"),
    ("- a list\n", "mapping at the top level"),
]


@pytest.mark.parametrize("text,named", POLICY_ERRORS, ids=[e[1] for e in POLICY_ERRORS])
def test_policy_validation_names_the_bad_key(tmp_path, text, named):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert named in str(caught.value) and str(path) in str(caught.value)


def test_missing_policy_file(tmp_path):
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "nope.yaml")


def test_agent_messages_carry_no_urgency_and_are_not_counted(analyzer):
    """Urgency is a property of the customer's messages: an agent's routine verification
    question gets none, and the conversation's highest urgency reads only the customer's."""
    from nlp.schemas import Transcript

    transcript = Transcript.model_validate(
        {
            "messages": [
                {"role": "customer", "text": "How do I change my delivery address?"},
                {"role": "agent", "text": "URGENT: please confirm your date of birth right now to verify the account"},
                {"role": "bot", "text": "Your request is being processed."},
            ]
        }
    )
    result = analyzer.analyze(transcript)
    customer, agent, bot = result.messages
    assert customer.urgency is not None and agent.urgency is None and bot.urgency is None
    assert result.conversation.highest_urgency.message_id == customer.id


def with_rule(**when) -> Policy:
    """The shipped policy plus one `escalate` rule with these conditions, first in line."""
    rule = {"name": "extra", "level": "escalate", "route_to": "senior_agent", "when": when, "detail": "extra rule"}
    return Policy.model_validate({**POLICY.model_dump(), "rules": [rule, *POLICY.model_dump()["rules"]]})


def test_a_metadata_rule_fires_only_for_the_matching_tier():
    policy = with_rule(metadata={"tier": ["gold", "platinum"]}, sentiment_at_most=-0.3)
    unhappy = message("m1", -0.8)
    assert summarize(unhappy, policy=policy, metadata={"tier": "gold"}).escalation.level == "escalate"
    fired = summarize(unhappy, policy=policy, metadata={"tier": "platinum"}).escalation.reasons[0]
    assert fired.rule == "extra" and "metadata:tier" in fired.signals
    for other in ({"tier": "bronze"}, {}, {"plan": "gold"}):
        reasons = summarize(unhappy, policy=policy, metadata=other).escalation.reasons
        assert "extra" not in [r.rule for r in reasons], other
    assert "extra" not in [
        r.rule for r in summarize(message("m1", 0.5), policy=policy, metadata={"tier": "gold"}).escalation.reasons
    ]


def test_complaint_category_and_topic_conditions():
    complaint = message("m1").model_copy(update={"complaint": ComplaintResult(label="yes", score=0.9)})
    assert summarize(complaint, policy=with_rule(complaint=True)).escalation.reasons[0].message_ids == ["m1"]
    assert "extra" not in [
        r.rule for r in summarize(message("m1"), policy=with_rule(complaint=True)).escalation.reasons
    ]
    refund = message("m1").model_copy(update={"categories": [CategoryHit(name="refund_request", quote="refund")]})
    reason = summarize(refund, policy=with_rule(category="refund_request")).escalation.reasons[0]
    assert reason.rule == "extra" and reason.evidence[0].quote == "refund"
    topical = message("m1").model_copy(
        update={"topics": [TopicScore(id=7, name="card_arrival", confidence=0.9, similarity=0.8)]}
    )
    for name in ("card_arrival", "7"):
        assert summarize(topical, policy=with_rule(topic=name)).escalation.reasons[0].rule == "extra"
    assert "extra" not in [r.rule for r in summarize(topical, policy=with_rule(topic="refunds")).escalation.reasons]


def test_model_only_rules_route_by_what_the_conversation_is_about():
    """Urgency says how pressing a matter is, not who can fix it: a rule with route_by_category
    takes the team of the first of the policy's category_routes a customer message matched."""
    urgent = message("m1", -0.5, p_high=0.9)
    assert summarize(urgent).escalation.route_to == "senior_agent"
    outage = urgent.model_copy(update={"categories": [CategoryHit(name="service_outage", quote="is down")]})
    assert summarize(outage).escalation.route_to == "technical"
    both = urgent.model_copy(
        update={
            "categories": [
                CategoryHit(name="service_outage", quote="is down"),
                CategoryHit(name="billing_dispute", quote="charged twice"),
            ]
        }
    )
    assert summarize(both).escalation.route_to == "billing", "category_routes lists billing first"
    # A cue rule keeps its own team whatever the conversation is about.
    legal = outage.model_copy(update={"cues": [CueHit(family="legal", quote="my solicitor")]})
    assert summarize(legal).escalation.route_to == "supervisor"


def test_category_routes_must_name_a_team(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("category_routes: {billing_dispute: none}\n")
    with pytest.raises(PolicyError, match="category_routes.billing_dispute"):
        load_policy(path)


def test_strong_emotion_then_a_satisfied_end_is_not_flagged():
    """Angry at first, thankful after the fix: the state is the conversation's end."""
    angry = message("a", -0.1, emotions=[("anger", 0.8)])
    assert summarize(angry, message("b", -0.1)).escalation.level == "monitor"
    assert summarize(angry, message("b", 0.7)).escalation.level == "none"
