"""Escalation recommendations from the policy's rules over a conversation's signals.

Each rule that fires becomes a reason naming the rule, what it read (cue, model, timing)
and its evidence (message ids and quoted phrases). The level is the highest any fired
rule asks for; route and confidence come from the fired rules at that level."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from nlp.policy import Condition, Policy, Rule
from nlp.schemas import Escalation, EscalationReason, Evidence, MessageAnalysis, ResponseStyle, Role
from nlp.signals import ConversationSignals, urgency_at_least
from nlp.vocabulary import (
    ESCALATION_LEVELS,
    NEGATIVE_SUPPORT_EMOTIONS,
    NO_ROUTE,
    RECOMMENDED_LEVELS,
    URGENCY_LABELS,
    EscalationLevel,
)


@dataclass
class ConditionResult:
    """One condition that held: what it read, its evidence and how sure it is."""

    signal: str
    confidence: float
    evidence: list[Evidence] = field(default_factory=list)


@dataclass
class Matched:
    """Evidence of the messages a condition holds for, in order, and its strongest value."""

    evidence: list[Evidence] = field(default_factory=list)
    best: float = -math.inf

    def add(self, evidence: Evidence, value: float) -> None:
        self.evidence.append(evidence)
        self.best = max(self.best, value)


@dataclass
class RuleMatches:
    """What a rule's per-message conditions (cue, urgency, emotion, category, topic) hold
    for, gathered one customer message at a time: checking the rule then reads these lists
    instead of passing over every message again."""

    cue: list[Evidence] = field(default_factory=list)
    urgency: Matched = field(default_factory=Matched)
    """Valued by P(urgency >= level)."""
    emotion: Matched = field(default_factory=Matched)
    """One entry per wanted emotion at or above the floor, valued by its score."""
    category: list[Evidence] = field(default_factory=list)
    topic: list[Evidence] = field(default_factory=list)

    def add(self, condition: Condition, message: MessageAnalysis, evidence: Evidence) -> None:
        """Take in one customer message (`evidence`: the message, without a quote)."""
        if condition.cue is not None:
            self.cue += [
                Evidence(message_id=message.id, quote=c.quote) for c in message.cues if c.family == condition.cue
            ]
        if condition.urgency_at_least is not None:
            level = condition.urgency_at_least
            probability = urgency_at_least(message, level)
            if condition.urgency_probability is not None:
                holds = probability >= condition.urgency_probability
            else:
                holds = message.urgency is not None and URGENCY_LABELS.index(
                    message.urgency.label
                ) >= URGENCY_LABELS.index(level)
            if holds:
                self.urgency.add(evidence, probability)
        if condition.emotion is not None:
            wanted = NEGATIVE_SUPPORT_EMOTIONS if condition.emotion == "any_negative" else {condition.emotion}
            floor = condition.emotion_score_at_least or 0.0
            for emotion in message.emotions:
                if emotion.label in wanted and emotion.score >= floor:
                    self.emotion.add(evidence, emotion.score)
        if condition.category is not None:
            self.category += [
                Evidence(message_id=message.id, quote=c.quote)
                for c in message.categories
                if c.name == condition.category
            ]
        if condition.topic is not None and any(condition.topic in (t.name, str(t.id)) for t in message.topics):
            self.topic.append(evidence)


def _per_message(condition: Condition) -> bool:
    """Whether the condition reads individual customer messages (`RuleMatches`)."""
    return any(
        value is not None
        for value in (condition.cue, condition.urgency_at_least, condition.emotion, condition.category, condition.topic)
    )


class PolicyMatches:
    """Every rule's `RuleMatches`, kept up to date one customer message at a time."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.rules = [RuleMatches() for _ in policy.rules]
        self._reading = [
            (rule.when, matches) for rule, matches in zip(policy.rules, self.rules) if _per_message(rule.when)
        ]

    def add(self, message: MessageAnalysis) -> None:
        """Take in the conversation's next message (only customer messages count)."""
        if message.role != Role.customer or not self._reading:
            return
        evidence = Evidence(message_id=message.id)  # one object shared by every list it joins
        for condition, matches in self._reading:
            matches.add(condition, message, evidence)

    @classmethod
    def of(cls, policy: Policy, messages: Iterable[MessageAnalysis]) -> PolicyMatches:
        matches = cls(policy)
        for message in messages:
            matches.add(message)
        return matches


def _check(
    condition: Condition, rule: Rule, signals: ConversationSignals, matches: RuleMatches
) -> list[ConditionResult] | None:
    """Results for every set condition, or None as soon as one does not hold."""
    results: list[ConditionResult] = []
    customer = signals.customer
    if condition.cue is not None:
        if not matches.cue:
            return None
        results.append(ConditionResult(f"cue:{condition.cue}", rule.confidence, list(matches.cue)))
    if condition.urgency_at_least is not None:
        if not matches.urgency.evidence:
            return None
        results.append(ConditionResult("model:urgency", matches.urgency.best, list(matches.urgency.evidence)))
    if condition.sentiment_at_most is not None:
        if signals.sentiment is None or signals.sentiment.score > condition.sentiment_at_most:
            return None
        results.append(ConditionResult("model:sentiment", signals.sentiment.probabilities["negative"]))
    if condition.end_sentiment_at_most is not None:
        if not customer or customer[-1].sentiment.score > condition.end_sentiment_at_most:
            return None
        results.append(
            ConditionResult(
                "model:sentiment",
                customer[-1].sentiment.probabilities["negative"],
                [Evidence(message_id=customer[-1].id)],
            )
        )
    if condition.trend is not None:
        if signals.trend.label != condition.trend:
            return None
        ends = [Evidence(message_id=customer[0].id), Evidence(message_id=customer[-1].id)] if customer else []
        results.append(ConditionResult("model:sentiment_trend", rule.confidence, ends))
    if condition.sharp_drop is not None:
        drops = signals.trend.sharp_drops
        if bool(drops) != condition.sharp_drop:
            return None
        results.append(
            ConditionResult(
                "model:sentiment_drop", rule.confidence, [Evidence(message_id=d.to_message_id) for d in drops]
            )
        )
    if condition.emotion is not None:
        if not matches.emotion.evidence:
            return None
        results.append(ConditionResult("model:emotion", matches.emotion.best, list(matches.emotion.evidence)))
    if condition.repeated_to_bot is not None:
        if bool(signals.repeated_to_bot) != condition.repeated_to_bot:
            return None
        results.append(
            ConditionResult(
                "pattern:repeated_to_bot",
                rule.confidence,
                [Evidence(message_id=mid) for mid in signals.repeated_to_bot],
            )
        )
    timing = signals.timing
    if condition.longest_wait_minutes_at_least is not None:
        wait = timing.longest_wait_seconds
        if wait is None or wait < condition.longest_wait_minutes_at_least * 60:
            return None
        results.append(
            ConditionResult(
                "timing:longest_wait", rule.confidence, [Evidence(message_id=timing.longest_wait_message_id)]
            )
        )
    if condition.first_response_minutes_at_least is not None:
        first = timing.first_response_seconds
        if first is None or first < condition.first_response_minutes_at_least * 60:
            return None
        results.append(ConditionResult("timing:first_response", rule.confidence))
    if condition.agent_acknowledged is not None:
        if timing.agent_acknowledged != condition.agent_acknowledged:
            return None
        results.append(ConditionResult("pattern:agent_acknowledged", rule.confidence))
    if condition.min_customer_messages is not None:
        if len(customer) < condition.min_customer_messages:
            return None
        results.append(ConditionResult("count:customer_messages", rule.confidence))
    if condition.complaint is not None:
        if bool(signals.complaints) != condition.complaint:
            return None
        results.append(
            ConditionResult("model:complaint", rule.confidence, [Evidence(message_id=i) for i in signals.complaints])
        )
    if condition.category is not None:
        if not matches.category:
            return None
        results.append(ConditionResult(f"category:{condition.category}", rule.confidence, list(matches.category)))
    if condition.topic is not None:
        if not matches.topic:
            return None
        results.append(ConditionResult(f"topic:{condition.topic}", rule.confidence, list(matches.topic)))
    if condition.metadata is not None:
        if not all(
            _metadata_matches(signals.metadata.get(key), expected) for key, expected in condition.metadata.items()
        ):
            return None
        results.append(ConditionResult("metadata:" + ",".join(condition.metadata), rule.confidence))
    return results


def _metadata_matches(value: object, expected: str | list[str]) -> bool:
    """A metadata value equals the expected text, or one of a list of them (as text: a tier
    sent as 2 matches "2"); a missing key never matches."""
    if value is None:
        return False
    allowed = [expected] if isinstance(expected, str) else expected
    return str(value) in allowed


def _reason(rule: Rule, results: list[ConditionResult]) -> EscalationReason:
    evidence: dict[tuple[str, str | None], Evidence] = {}
    for result in results:
        for item in result.evidence:
            evidence.setdefault((item.message_id, item.quote), item)
    message_ids = list(dict.fromkeys(item.message_id for item in evidence.values()))
    return EscalationReason(
        rule=rule.name,
        level=rule.level,
        detail=rule.detail or rule.name,
        signals=[r.signal for r in results],
        message_ids=message_ids,
        evidence=list(evidence.values()),
    )


def response_style(signals: ConversationSignals, policy: Policy) -> ResponseStyle:
    """The style for the strongest negative emotion (the support teams' emotion map)."""
    emotion = signals.strongest_negative_emotion
    if emotion is not None and emotion.label in policy.response_styles:
        return ResponseStyle(emotion=emotion.label, style=policy.response_styles[emotion.label])
    return ResponseStyle(emotion=None, style=policy.default_response_style)


def route_for(rule: Rule, signals: ConversationSignals, policy: Policy) -> str:
    """The rule's route, or, for a rule that routes by category, the team of the first of the
    policy's `category_routes` that a customer message matched (the rule's route if none did)."""
    if not rule.route_by_category:
        return rule.route_to
    matched = {category.name for message in signals.customer for category in message.categories}
    return next((route for category, route in policy.category_routes.items() if category in matched), rule.route_to)


def recommend_escalation(
    signals: ConversationSignals, policy: Policy, matches: PolicyMatches | None = None
) -> Escalation:
    """Apply every rule and return the recommendation with its reasons, highest level
    first. `matches`: the rules' per-message matches kept while the conversation grew
    (None: gathered here from the customer's messages)."""
    if matches is None or matches.policy is not policy:
        matches = PolicyMatches.of(policy, signals.customer)
    fired: list[tuple[Rule, float, EscalationReason]] = []
    for rule, rule_matches in zip(policy.rules, matches.rules):
        results = _check(rule.when, rule, signals, rule_matches)
        if results is not None:
            fired.append((rule, min(r.confidence for r in results), _reason(rule, results)))
    fired.sort(key=lambda item: -ESCALATION_LEVELS.index(item[0].level))  # stable: policy order kept
    level: EscalationLevel
    if fired:
        level = fired[0][0].level
        top = [item for item in fired if item[0].level == level]
        route, confidence = route_for(top[0][0], signals, policy), max(c for _, c, _ in top)
    else:
        level, route = "none", NO_ROUTE
        # Nothing fired: as sure as the customer's messages are far from high urgency.
        confidence = 1.0 - signals.peak_high_urgency
    return Escalation(
        recommended=level in RECOMMENDED_LEVELS,
        level=level,
        route_to=route if level in RECOMMENDED_LEVELS else NO_ROUTE,
        confidence=round(float(confidence), 4),
        response_style=response_style(signals, policy),
        reasons=[reason for _, _, reason in fired],
    )
