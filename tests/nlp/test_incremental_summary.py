"""The incremental conversation summary (nlp.conversation.ConversationSummarizer): read after
every added message it equals the summary recomputed over the whole conversation so far,
and its running sums agree with the plain formulas (numpy mean and least-squares fit)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nlp.categories import load_categories
from nlp.conversation import ConversationSummarizer, summarize_conversation
from nlp.policy import Condition, Policy, Rule, load_policy
from nlp.schemas import (
    CategoryHit,
    Channel,
    ComplaintResult,
    CueHit,
    EmotionScore,
    MessageAnalysis,
    Role,
    SentimentResult,
    TopicScore,
    UrgencyResult,
)
from nlp.signals import Turn, compute_signals
from nlp.vocabulary import CUE_FAMILIES, SENTIMENT_LABELS, SUPPORT_EMOTIONS, URGENCY_LABELS

CATEGORIES = load_categories()
SHIPPED = load_policy()
# The shipped rules plus rules on every per-message condition the shipped ones leave out.
POLICY = SHIPPED.model_copy(
    update={
        "rules": [
            *SHIPPED.rules,
            Rule(name="test-topic", level="monitor", when=Condition(topic="billing")),
            Rule(name="test-category", level="monitor", when=Condition(category="refund_request")),
            Rule(
                name="test-urgency-p",
                level="escalate",
                when=Condition(urgency_at_least="high", urgency_probability=0.4),
            ),
        ]
    }
)
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
TEXTS = [
    "my card was charged twice",
    "sorry about that, I understand",
    "which plan should I buy",
    "which",
    "one",
    "it works now, thanks",
    "still not working",
    "I've fixed it for you",
    "agent please",
    "AGENT",
]
four_decimals = st.integers(0, 10_000).map(lambda i: i / 10_000)


@st.composite
def distribution(draw: st.DrawFn, labels: tuple[str, ...]) -> dict[str, float]:
    cuts = sorted(draw(st.lists(st.integers(0, 10_000), min_size=len(labels) - 1, max_size=len(labels) - 1)))
    edges = [0, *cuts, 10_000]
    return {label: (edges[i + 1] - edges[i]) / 10_000 for i, label in enumerate(labels)}


@st.composite
def message(draw: st.DrawFn, index: int) -> tuple[MessageAnalysis, Turn]:
    role = draw(st.sampled_from([Role.customer, Role.customer, Role.agent, Role.bot]))
    probabilities = draw(distribution(SENTIMENT_LABELS))
    score = round(probabilities["positive"] - probabilities["negative"], 4)
    customer = role == Role.customer
    urgency = draw(distribution(URGENCY_LABELS)) if customer else None
    mid = f"m{index}"
    analysis = MessageAnalysis(
        id=mid,
        role=role,
        sentiment=SentimentResult(
            label=max(probabilities, key=probabilities.__getitem__), score=score, probabilities=probabilities
        ),
        emotions=[
            EmotionScore(label=label, score=draw(four_decimals))
            for label in draw(st.lists(st.sampled_from(SUPPORT_EMOTIONS), min_size=1, max_size=3, unique=True))
        ],
        urgency=UrgencyResult(
            label=max(urgency, key=urgency.__getitem__), score=draw(four_decimals), probabilities=urgency
        )
        if urgency
        else None,
        complaint=ComplaintResult(label=draw(st.sampled_from(["yes", "no"])), score=0.5) if customer else None,
        cues=[
            CueHit(family=family, quote="a quote")
            for family in draw(st.lists(st.sampled_from(CUE_FAMILIES), max_size=2, unique=True))
        ]
        if customer
        else [],
        categories=[
            CategoryHit(name=name, quote=name)
            for name in draw(
                st.lists(st.sampled_from([c.name for c in CATEGORIES.categories]), max_size=2, unique=True)
            )
        ],
        topics=[TopicScore(id=t, name=["billing", "delivery"][t], confidence=draw(four_decimals), similarity=0.5)]
        if customer and (t := draw(st.integers(-1, 1))) >= 0
        else [],
    )
    minutes = draw(st.one_of(st.none(), st.integers(0, 120)))
    turn = Turn(
        id=mid,
        role=role,
        text=draw(st.sampled_from(TEXTS)),
        timestamp=T0 + timedelta(minutes=minutes + 10 * index) if minutes is not None else None,
    )
    return analysis, turn


@st.composite
def conversation(draw: st.DrawFn) -> list[tuple[MessageAnalysis, Turn]]:
    length = draw(st.integers(1, 14))
    return [draw(message(index)) for index in range(length)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    conversation(),
    st.sampled_from([POLICY, POLICY.model_copy(update={"experience": None})]),
    st.sampled_from([None, Channel.chat, Channel.email]),
)
def test_incremental_summary_equals_the_full_recomputation_after_every_message(messages, policy, channel):
    summarizer = ConversationSummarizer(policy, CATEGORIES)
    metadata = {"tier": "gold"}
    for count, (analysis, turn) in enumerate(messages, start=1):
        summarizer.add(analysis, turn)
        analyses, turns = [a for a, _ in messages[:count]], [t for _, t in messages[:count]]
        full = summarize_conversation(analyses, turns, policy, channel, CATEGORIES, metadata)
        # Read twice: reading changes nothing.
        assert summarizer.summary(channel, metadata) == full
        assert summarizer.summary(channel, metadata) == full


@settings(max_examples=60, deadline=None)
@given(conversation())
def test_running_sums_agree_with_the_plain_formulas(messages):
    analyses, turns = [a for a, _ in messages], [t for _, t in messages]
    signals = compute_signals(analyses, turns, POLICY.thresholds)
    customer = [a for a in analyses if a.role == Role.customer]
    if not customer:
        assert signals.sentiment is None and signals.highest_urgency is None
        return
    mean = np.array([[m.sentiment.probabilities[label] for label in SENTIMENT_LABELS] for m in customer]).mean(axis=0)
    assert signals.sentiment is not None
    assert np.allclose([signals.sentiment.probabilities[label] for label in SENTIMENT_LABELS], mean, atol=1.5e-4)
    scores = [m.sentiment.score for m in customer]
    assert signals.lowest_sentiment == min(scores)
    if len(scores) >= 2:
        slope = float(np.polyfit(np.arange(len(scores)), scores, 1)[0])
        assert abs((signals.trend.slope or 0.0) - slope) <= 1.5e-4
    rated = [m for m in customer if m.urgency is not None]
    top = max(rated, key=lambda m: (URGENCY_LABELS.index(m.urgency.label), m.urgency.score))  # type: ignore[union-attr]
    assert signals.highest_urgency is not None and signals.highest_urgency.message_id == top.id


def test_policy_with_other_rules_is_not_read_from_another_policys_matches():
    """Summarising under another policy (the backtest) gathers that policy's matches."""
    analysis = MessageAnalysis(
        id="m1",
        role=Role.customer,
        sentiment=SentimentResult(label="neutral", score=0.0, probabilities=dict.fromkeys(SENTIMENT_LABELS, 1 / 3)),
        emotions=[],
        urgency=UrgencyResult(label="critical", score=1.0, probabilities={"critical": 1.0}),
    )
    only_urgency = Policy(rules=[Rule(name="urgent", level="urgent", when=Condition(urgency_at_least="critical"))])
    summary = summarize_conversation([analysis], [Turn(id="m1", role=Role.customer, text="help")], only_urgency)
    assert summary.escalation.level == "urgent"
    assert summary.escalation.reasons[0].message_ids == ["m1"]
