"""The risk-cue patterns as data: per cue family, spaCy Matcher token patterns, PhraseMatcher
phrases and regexes, in a YAML file validated at start-up like the policy and the tag
categories (the shipped default is `nlp/default_cues.yaml`; `CONVINTEL_CUES_FILE` names a
copy). `nlp.cues.CueDetector` runs them and decides on the parse which matches count; the
file's own comments describe each field."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field
from spacy.schemas import validate_token_pattern

from nlp.vocabulary import CueFamily
from nlp.yaml_config import ConfigFileError, StrictModel, read_validated

DEFAULT_CUES_FILE = Path(__file__).with_name("default_cues.yaml")


class CueError(ConfigFileError):
    """The cues file is missing, not YAML, or does not validate."""


def _valid_token_pattern(pattern: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`pattern` if spaCy's Matcher accepts it; else ValueError with spaCy's first complaint, its
    path shortened to the token and attribute ("token 0: LOWER.IN: Input should be a valid list")."""
    problems = validate_token_pattern(pattern)
    if problems:
        # spaCy's message: "[pattern -> 0 -> LOWER -> TokenPatternString -> IN] Input should be ..."
        where, _, what = problems[0].partition("] ")
        steps = [s for s in where.lstrip("[").split(" -> ")[1:] if re.fullmatch(r"[A-Z_]+|\d+", s)]
        token = f"token {steps[0]}: " if steps else ""
        raise ValueError(f"not a spaCy token pattern: {token}{'.'.join(steps[1:]) + ': ' if steps[1:] else ''}{what}")
    return pattern


def _joined(value: Any) -> Any:
    """A regex written as a list of strings, to split a long one over lines, joined into one."""
    if isinstance(value, list) and all(isinstance(piece, str) for piece in value):
        return "".join(value)
    return value


def _compiles(value: str) -> str:
    try:
        re.compile(value, re.I)
    except re.error as exc:
        raise ValueError(f"regex {value!r} does not compile: {exc}") from None
    return value


def _lower_case(value: str) -> str:
    if value != value.lower() or not value.strip():
        raise ValueError(f"{value!r}: words here are compared with lower-cased text, so must be lower case")
    return value


TokenPattern = Annotated[list[dict[str, Any]], AfterValidator(_valid_token_pattern)]
Regex = Annotated[str, BeforeValidator(_joined), AfterValidator(_compiles)]
LowerWord = Annotated[str, AfterValidator(_lower_case)]
# A bare clause is read as the runs of letters a-z in its lower-cased text.
LetterWord = Annotated[str, Field(pattern=r"^[a-z]+$")]
Phrase = Annotated[str, Field(pattern=r"\S")]


class BareClause(StrictModel):
    """A clause (text between punctuation marks) made only of `words` and `filler`, holding at
    least one of `words`, is a cue on its own: "agent", "human. agent. person", "No. Manager."."""

    words: list[LetterWord] = Field(min_length=1)
    filler: list[LetterWord] = Field(default_factory=list)


class FamilyCues(StrictModel):
    """What marks one family's cues; any one match is a candidate the parse then confirms."""

    patterns: list[TokenPattern] = Field(default_factory=list, description="spaCy Matcher token patterns")
    negated_patterns: list[TokenPattern] = Field(
        default_factory=list, description="token patterns whose negation is the cue (a negation does not cancel them)"
    )
    phrases: list[Phrase] = Field(default_factory=list, description="spaCy PhraseMatcher phrases, case-insensitive")
    regexes: list[Regex] = Field(default_factory=list, description="Python regexes, case-insensitive")
    negated_regexes: list[Regex] = Field(default_factory=list, description="regexes whose negation is the cue")
    not_followed_by: dict[LowerWord, list[LowerWord]] = Field(
        default_factory=dict, description="a match ending with the key does not count before one of these words"
    )
    bare_clause: BareClause | None = None


class CueConfig(StrictModel):
    version: int = Field(1, ge=1, le=1)
    sets: dict[str, list[str]] = Field(
        default_factory=dict, description="word lists for YAML anchors that patterns alias; not read otherwise"
    )
    families: dict[CueFamily, FamilyCues]


def load_cues(path: str | Path | None = None) -> CueConfig:
    """Read and validate a cues file (the shipped default when `path` is None)."""
    return read_validated(Path(path) if path else DEFAULT_CUES_FILE, CueConfig, "cues file", CueError)


__all__ = ["DEFAULT_CUES_FILE", "BareClause", "CueConfig", "CueError", "FamilyCues", "load_cues"]
