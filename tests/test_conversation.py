"""Conversation summary and the first escalation policy, on hand-built message analyses
(no model involved, so each rule is checked exactly)."""

from __future__ import annotations

from nlp.conversation import summarize_conversation
from nlp.policy import AnalysisPolicy
from nlp.schemas import EmotionScore, MessageAnalysis, Role, SentimentResult, UrgencyResult

POLICY = AnalysisPolicy()


def message(mid: str, score: float, *, role=Role.customer, urgency="low", critical=0.0, emotions=()) -> MessageAnalysis:
    negative, positive = max(-score, 0.0), max(score, 0.0)
    label = "negative" if score < -0.2 else "positive" if score > 0.2 else "neutral"
    probs = {"low": 1.0, "medium": 0.0, "high": 0.0, "critical": critical}
    return MessageAnalysis(
        id=mid, role=role,
        sentiment=SentimentResult(label=label, score=score, probabilities={
            "negative": negative, "neutral": 1 - negative - positive, "positive": positive}),
        emotions=[EmotionScore(label=l, score=s) for l, s in emotions] or [EmotionScore(label="neutral", score=0.9)],
        urgency=UrgencyResult(label=urgency, score=0.0, probabilities=probs),
    )


def test_calm_conversation_needs_nothing():
    summary = summarize_conversation([message("a", 0.1), message("b", 0.5, role=Role.agent), message("c", 0.6)], POLICY)
    assert summary.customer_messages == 2
    assert summary.sentiment_trend.label == "improving"
    assert summary.escalation.level == "none" and not summary.escalation.recommended
    assert summary.tags == ["sentiment:neutral", "trend:improving", "urgency:low"]


def test_worsening_to_very_negative_escalates_with_evidence():
    summary = summarize_conversation([message("a", 0.4), message("b", -0.8)], POLICY)
    assert summary.sentiment_trend.label == "worsening"
    assert summary.sentiment_trend.change == -1.2
    assert summary.escalation.level == "escalate" and summary.escalation.recommended
    reason = next(r for r in summary.escalation.reasons if r.rule == "sentiment.worsening")
    assert reason.message_ids == ["a", "b"]


def test_critical_urgency_is_urgent_and_first_reason():
    summary = summarize_conversation(
        [message("a", -0.3, urgency="high"), message("b", -0.2, urgency="critical", critical=0.9)], POLICY)
    assert summary.escalation.level == "urgent"
    assert summary.escalation.reasons[0].rule == "urgency.critical"
    assert summary.escalation.reasons[0].message_ids == ["b"]
    assert summary.highest_urgency.label == "critical" and summary.highest_urgency.message_id == "b"


def test_anger_escalates_only_when_customer_is_negative_overall():
    angry = [("anger", 0.8)]
    assert summarize_conversation([message("a", -0.7, emotions=angry)], POLICY).escalation.level == "escalate"
    # Same anger score, but the customer is positive overall (e.g. angry at a third party).
    assert summarize_conversation(
        [message("a", 0.6, emotions=angry), message("b", 0.7)], POLICY).escalation.level != "escalate"


def test_strongest_negative_emotion_ignores_positive_and_weak_ones():
    summary = summarize_conversation([
        message("a", -0.1, emotions=[("gratitude", 0.95), ("confusion", 0.2)]),
        message("b", -0.3, emotions=[("frustration", 0.55), ("anxiety", 0.4)]),
    ], POLICY)
    assert summary.strongest_negative_emotion.label == "frustration"
    assert summary.strongest_negative_emotion.message_id == "b"
    assert summary.escalation.level == "monitor"


def test_agent_messages_do_not_drive_customer_signals():
    summary = summarize_conversation([message("a", -0.9, role=Role.agent, urgency="critical", critical=1.0)], POLICY)
    assert summary.customer_messages == 0
    assert summary.sentiment is None and summary.highest_urgency is None
    assert summary.escalation.level == "none"
