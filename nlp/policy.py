"""Thresholds that turn model scores into conversation-level judgements.

One dataclass holds every number the summary, tags and escalation rules use, so a team
can tune them in one place (the service builds it from settings)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AnalysisPolicy:
    # Sentiment trend: last customer turn minus first; beyond this it is a trend.
    trend_min_change: float = 0.3
    # A negative emotion is reported as the conversation's strongest only above this score.
    negative_emotion_min_score: float = 0.3

    # Escalation rules (first version; issue 5 replaces these with a policy file).
    urgent_min_critical_probability: float = 0.5
    escalate_on_urgency: str = "high"
    anger_escalate_score: float = 0.6
    worsening_escalate_end_score: float = -0.5
    monitor_negative_score: float = -0.25
    monitor_negative_emotion_score: float = 0.5
