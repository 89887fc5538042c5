"""The escalation policy: thresholds, rules, routes and response styles, read from a YAML
file (the shipped default is `nlp/default_policy.yaml`) and validated at start-up.

A rule fires when every condition in its `when` holds; the recommendation's level is the
highest any fired rule asks for. Unknown keys are errors, named with their path
(`rules.3.when.urgncy_at_least`), so a typo never silently disables a rule."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from nlp.experience import ExperienceModel
from nlp.vocabulary import CUE_FAMILIES, DEFAULT_ROUTES, NO_ROUTE, RuleLevel, UrgencyLevel
from nlp.yaml_config import ConfigFileError, StrictModel, check_unique, read_validated

DEFAULT_POLICY_FILE = Path(__file__).with_name("default_policy.yaml")


class PolicyError(ConfigFileError):
    """The policy file is missing, not YAML, or does not validate."""


class Thresholds(StrictModel):
    trend_min_change: float = Field(0.3, gt=0, le=2, description="first-to-last customer change that counts as a trend")
    sharp_drop: float = Field(
        0.8, gt=0, le=2, description="fall between consecutive customer turns that counts as sharp"
    )
    negative_emotion_min_score: float = Field(
        0.3, ge=0, le=1, description="weakest emotion reported as strongest negative"
    )
    repeat_similarity: float = Field(
        0.6, gt=0, le=1, description="word overlap at which a customer turn repeats the previous one"
    )
    apology_patterns: list[str] = Field(
        default_factory=lambda: [
            r"\bsorry\b",
            r"\bapologi[sz]e",
            r"\bmy apologies\b",
            r"\bi understand\b",
            r"\bi hear you\b",
            r"\bthat must be\b",
        ],
        description="regexes (case-insensitive) marking an agent apology or acknowledgement",
    )


class Condition(StrictModel):
    """Conditions of a rule; all that are set must hold."""

    cue: str | None = Field(None, description="a customer message carries this risk cue family")
    urgency_at_least: UrgencyLevel | None = None
    urgency_probability: float | None = Field(
        None, ge=0, le=1, description="with urgency_at_least: P(urgency >= level) must reach this instead of the label"
    )
    sentiment_at_most: float | None = Field(None, ge=-1, le=1, description="the customer's overall sentiment score")
    end_sentiment_at_most: float | None = Field(None, ge=-1, le=1, description="the last customer turn's score")
    trend: Literal["improving", "stable", "worsening"] | None = None
    sharp_drop: bool | None = None
    emotion: str | None = Field(None, description="a negative support emotion, or 'any_negative'")
    emotion_score_at_least: float | None = Field(None, ge=0, le=1)
    repeated_to_bot: bool | None = None
    longest_wait_minutes_at_least: float | None = Field(None, ge=0)
    first_response_minutes_at_least: float | None = Field(None, ge=0)
    agent_acknowledged: bool | None = None
    min_customer_messages: int | None = Field(None, ge=1)
    complaint: bool | None = Field(None, description="a customer message is a complaint (the complaint head)")
    category: str | None = Field(None, description="a customer message matched this tag category")
    topic: str | None = Field(None, description="a customer message's topic, by name or id (with a topic model)")
    metadata: dict[str, str | list[str]] | None = Field(
        None,
        description="the conversation's metadata: every key present and equal to the value, or to one of a "
        "list of values, compared as text (e.g. `{tier: [gold, platinum]}`)",
    )

    @field_validator("cue")
    @classmethod
    def _known_cue(cls, value: str | None) -> str | None:
        if value is not None and value not in CUE_FAMILIES:
            raise ValueError(f"unknown cue family {value!r}; known: {', '.join(CUE_FAMILIES)}")
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata_keys(cls, value: dict[str, str | list[str]] | None) -> dict[str, str | list[str]] | None:
        if value is not None and (not value or any(not key or values == [] for key, values in value.items())):
            raise ValueError("metadata needs at least one key, and each key a value or a non-empty list")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Condition:
        if not self.model_dump(exclude_none=True):
            raise ValueError("a rule needs at least one condition")
        if self.urgency_probability is not None and self.urgency_at_least is None:
            raise ValueError("urgency_probability needs urgency_at_least")
        if self.emotion_score_at_least is not None and self.emotion is None:
            raise ValueError("emotion_score_at_least needs emotion")
        return self


class Rule(StrictModel):
    name: str = Field(min_length=1, max_length=80)
    level: RuleLevel
    route_to: str = NO_ROUTE
    when: Condition
    confidence: float = Field(0.8, gt=0, le=1, description="confidence of rule-only conditions (cues, timing)")
    detail: str = Field("", description="what a support lead reads in the reason")
    route_by_category: bool = Field(
        False,
        description="route by what the conversation is about (the policy's category_routes) where a customer "
        "message matched one of those categories; route_to otherwise. For rules that read only the models "
        "(urgency, sentiment), which say how pressing a matter is but not which team can resolve it",
    )


class Policy(StrictModel):
    version: Literal[1] = 1
    thresholds: Thresholds = Thresholds()
    routes: list[str] = Field(default_factory=lambda: list(DEFAULT_ROUTES))
    rules: list[Rule] = Field(default_factory=list)
    category_routes: dict[str, str] = Field(
        default_factory=dict,
        description="tag category -> the team that resolves it, in priority order; read by rules with "
        "route_by_category",
    )
    response_styles: dict[str, str] = Field(default_factory=dict, description="negative emotion -> response style")
    default_response_style: str = "friendly and efficient"
    experience: ExperienceModel | None = Field(
        None, description="fitted experience-score weights (nlp/experience.py); absent: the hand-set formula"
    )

    @model_validator(mode="after")
    def _rules_consistent(self) -> Policy:
        check_unique([rule.name for rule in self.rules], "rule")
        for index, rule in enumerate(self.rules):
            if rule.route_to not in self.routes:
                raise ValueError(
                    f"rules.{index} ({rule.name}): route_to {rule.route_to!r} is not in routes {self.routes}"
                )
        for category, route in self.category_routes.items():
            if route not in self.routes or route == NO_ROUTE:
                raise ValueError(f"category_routes.{category}: {route!r} is not a team of routes {self.routes}")
        return self


def load_policy(path: str | Path | None = None) -> Policy:
    """Read and validate a policy file (the shipped default when `path` is None)."""
    return read_validated(Path(path) if path else DEFAULT_POLICY_FILE, Policy, "policy file", PolicyError)
