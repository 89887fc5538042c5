"""The experience score (0-100, predicted customer satisfaction) and its per-signal
breakdown, from conversation signals the analyzer already computes.

Two formulas:

* **fitted** (a policy with an `experience:` section; the shipped policy has one): a
  linear model over the named features below, its weights fitted to customer satisfaction
  on STC-3 by `python -m training.experience_fit` (docs/escalation.md#experience-score):
      satisfaction = intercept + sum(weight[f] * feature[f])      (STC-3's S scale, -2..2)
      score = 100 * (satisfaction - scale.low) / (scale.high - scale.low), clipped to [0, 100]
* **hand-set** (a policy without the section: teams' own policies keep today's score):
      50 + 35 * (last customer sentiment score, in [-1, 1])
         + 15 if resolved, - 15 if unresolved
         - 5 for each effort cue (repeat-contact cue, repeated-to-bot turn), at most - 15
         - 10 if the longest wait was over 15 minutes, - 5 if over 5 minutes
      clipped to [0, 100].

Either way the score is rounded to an integer, and with no customer turns it is 50. The
breakdown maps `base` and each feature to its contribution in score points; before
rounding and clipping they add up to the score."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from nlp.schemas import Resolution
from nlp.yaml_config import StrictModel

if TYPE_CHECKING:
    from nlp.signals import ConversationSignals

NEUTRAL_SCORE = 50
EFFORT_CAP_CUES = 3  # effort cues counted (the hand-set formula's - 15 cap)
WAIT_CAP_MINUTES = 60.0  # longest wait counted, so one stalled ticket cannot dominate
# The hand-set formula's constants.
HANDSET_SENTIMENT_POINTS = 35
HANDSET_RESOLUTION_POINTS = 15
EFFORT_PENALTY, EFFORT_CAP = 5, 15
LONG_WAIT_SECONDS, MEDIUM_WAIT_SECONDS = 15 * 60, 5 * 60
_BREAKDOWN_DECIMALS = 2


class ExperienceWeights(StrictModel):
    """One weight per feature, in satisfaction units per unit of the feature; a feature not
    listed weighs 0. The field names are the feature names (an unknown one is an error)."""

    last_sentiment: float = Field(0.0, description="the last customer turn's sentiment score, -1..1")
    mean_sentiment: float = Field(0.0, description="the customer's overall sentiment score (mean distribution), -1..1")
    min_sentiment: float = Field(0.0, description="the lowest customer turn's sentiment score, -1..1")
    sentiment_slope: float = Field(
        0.0, description="least-squares slope of customer sentiment per customer turn; 0 with one turn"
    )
    resolved: float = Field(0.0, description="1 when the resolution is resolved, else 0")
    unresolved: float = Field(0.0, description="1 when the resolution is unresolved, else 0")
    effort_cues: float = Field(
        0.0, description=f"repeat-contact cues plus turns repeated to a bot, at most {EFFORT_CAP_CUES}"
    )
    negative_emotion: float = Field(0.0, description="score of the strongest negative emotion, 0 when none")
    urgency: float = Field(0.0, description="score (expected level, 0..1) of the most urgent customer turn")
    customer_turns: float = Field(0.0, description="number of customer turns")
    agent_acknowledged: float = Field(0.0, description="1 when an agent apologised or acknowledged, else 0")
    longest_wait_minutes: float = Field(
        0.0, description=f"longest customer wait for an agent reply, minutes, at most {WAIT_CAP_MINUTES:g}; 0 untimed"
    )


FEATURES: tuple[str, ...] = tuple(ExperienceWeights.model_fields)
"""The experience features, in the order the fit and the policy file list them."""


class ExperienceScale(StrictModel):
    """Satisfaction `low` maps to score 0 and `high` to 100 (linearly, then clipped)."""

    low: float = -2.0
    high: float = 2.0

    @model_validator(mode="after")
    def _ordered(self) -> ExperienceScale:
        if self.high <= self.low:
            raise ValueError(f"high ({self.high}) must be above low ({self.low})")
        return self

    @property
    def points(self) -> float:
        """Score points per satisfaction unit."""
        return 100.0 / (self.high - self.low)


class ExperienceModel(StrictModel):
    """The policy's `experience:` section: a fitted linear score."""

    intercept: float = Field(description="predicted satisfaction when every feature is 0")
    weights: ExperienceWeights
    scale: ExperienceScale = ExperienceScale()


def experience_features(signals: ConversationSignals, resolved: Resolution) -> dict[str, float]:
    """Every feature's value (FEATURES order); all 0 without customer turns."""
    if not signals.customer:
        return dict.fromkeys(FEATURES, 0.0)
    effort = _effort(signals)
    wait = signals.timing.longest_wait_seconds or 0.0
    emotion, urgency = signals.strongest_negative_emotion, signals.highest_urgency
    return {
        "last_sentiment": signals.customer[-1].sentiment.score,
        "mean_sentiment": signals.sentiment.score if signals.sentiment else 0.0,
        "min_sentiment": signals.lowest_sentiment if signals.lowest_sentiment is not None else 0.0,
        "sentiment_slope": signals.trend.slope or 0.0,
        "resolved": float(resolved.label == "resolved"),
        "unresolved": float(resolved.label == "unresolved"),
        "effort_cues": float(min(effort, EFFORT_CAP_CUES)),
        "negative_emotion": emotion.score if emotion else 0.0,
        "urgency": urgency.score if urgency else 0.0,
        "customer_turns": float(len(signals.customer)),
        "agent_acknowledged": float(signals.timing.agent_acknowledged),
        "longest_wait_minutes": min(wait / 60.0, WAIT_CAP_MINUTES),
    }


def fitted_experience(model: ExperienceModel, features: dict[str, float]) -> tuple[int, dict[str, float]]:
    """(score, breakdown) of the fitted formula on feature values."""
    points = model.scale.points
    weights = model.weights.model_dump()
    breakdown = {"base": (model.intercept - model.scale.low) * points}
    breakdown.update({name: weights[name] * features[name] * points for name in FEATURES})
    return _clipped(sum(breakdown.values())), _rounded(breakdown)


def handset_experience(signals: ConversationSignals, resolved: Resolution) -> tuple[int, dict[str, float]]:
    """(score, breakdown) of the hand-set formula (module docstring)."""
    effort = _effort(signals)
    wait = signals.timing.longest_wait_seconds or 0
    breakdown = {
        "base": float(NEUTRAL_SCORE),
        "last_sentiment": HANDSET_SENTIMENT_POINTS * signals.customer[-1].sentiment.score,
        "resolved": float(HANDSET_RESOLUTION_POINTS if resolved.label == "resolved" else 0),
        "unresolved": float(-HANDSET_RESOLUTION_POINTS if resolved.label == "unresolved" else 0),
        "effort_cues": -float(min(EFFORT_PENALTY * effort, EFFORT_CAP)),
        "longest_wait_minutes": -10.0 if wait > LONG_WAIT_SECONDS else -5.0 if wait > MEDIUM_WAIT_SECONDS else 0.0,
    }
    return _clipped(sum(breakdown.values())), _rounded(breakdown)


def experience(
    signals: ConversationSignals, resolved: Resolution, model: ExperienceModel | None
) -> tuple[int, dict[str, float]]:
    """(score, breakdown): the fitted formula when the policy has one, else the hand-set one."""
    if not signals.customer:
        return NEUTRAL_SCORE, {"base": float(NEUTRAL_SCORE)}
    if model is None:
        return handset_experience(signals, resolved)
    return fitted_experience(model, experience_features(signals, resolved))


def _effort(signals: ConversationSignals) -> int:
    """Effort the customer had to spend: repeat-contact cues plus turns repeated to a bot."""
    return sum(1 for c in signals.risk_cues if c.family == "repeat_contact") + len(signals.repeated_to_bot)


def _clipped(score: float) -> int:
    return int(round(min(max(score, 0.0), 100.0)))


def _rounded(breakdown: dict[str, float]) -> dict[str, float]:
    return {name: round(value, _BREAKDOWN_DECIMALS) + 0.0 for name, value in breakdown.items()}
