"""Rule-based tag categories, like Contact Lens categories: a support team names what it
wants tagged (keywords, phrases, regexes, spaCy `Matcher` token patterns) and under which
conditions (who said it, on which channel, with which sentiment), in a YAML file validated
at start-up (the shipped default is `nlp/default_categories.yaml`).

Matching happens once per message, on the same spaCy parse as risk cues and redaction:
each message lists the categories whose words it contains (`MessageAnalysis.categories`).
The conversation keeps those whose channel and sentiment conditions hold too, and tags
them `category:<name>`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc

from nlp.schemas import CategoryHit, Channel, ConversationCategory, MessageAnalysis, Role
from nlp.yaml_config import ConfigFileError, StrictModel, check_unique, read_validated

DEFAULT_CATEGORIES_FILE = Path(__file__).with_name("default_categories.yaml")
# Matcher token attributes the tokenizer alone sets: patterns using only these match an
# unparsed Doc exactly as a parsed one. Any other (POS, LEMMA, DEP, ENT_TYPE, ...) needs the parse.
TOKENIZER_ATTRS = frozenset(
    "ORTH TEXT LOWER LENGTH IS_ALPHA IS_ASCII IS_DIGIT IS_LOWER IS_UPPER IS_TITLE IS_PUNCT"
    " IS_SPACE IS_STOP IS_BRACKET IS_QUOTE IS_LEFT_PUNCT IS_RIGHT_PUNCT IS_CURRENCY LIKE_NUM"
    " LIKE_URL LIKE_EMAIL SHAPE PREFIX SUFFIX SPACY OP".split()
)
SENTIMENT_LABELS = ("negative", "neutral", "positive")


class CategoryError(ConfigFileError):
    """The categories file is missing, not YAML, or does not validate."""


class CategoryMatch(StrictModel):
    """What a message must contain; any one of these is enough."""

    keywords: list[str] = Field(default_factory=list, description="whole words, case-insensitive")
    phrases: list[str] = Field(default_factory=list, description="token sequences, case-insensitive")
    regexes: list[str] = Field(default_factory=list, description="Python regexes, case-insensitive")
    patterns: list[list[dict]] = Field(default_factory=list, description="spaCy Matcher token patterns")

    @field_validator("regexes")
    @classmethod
    def _compiles(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"regex {value!r} does not compile: {exc}") from None
        return values

    @model_validator(mode="after")
    def _not_empty(self) -> CategoryMatch:
        if not (self.keywords or self.phrases or self.regexes or self.patterns):
            raise ValueError("a category needs at least one keyword, phrase, regex or pattern")
        return self


class Category(StrictModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,62}$", description="tag name: category:<name>")
    description: str = ""
    match: CategoryMatch
    roles: list[Role] = Field(default_factory=lambda: [Role.customer], description="who must have said it")
    channels: list[Channel] | None = Field(None, description="only on these channels (default: any)")
    sentiment: list[str] | None = Field(None, description="only in messages with one of these sentiment labels")

    @field_validator("sentiment")
    @classmethod
    def _known_sentiment(cls, values: list[str] | None) -> list[str] | None:
        for value in values or ():
            if value not in SENTIMENT_LABELS:
                raise ValueError(f"unknown sentiment {value!r}; known: {', '.join(SENTIMENT_LABELS)}")
        return values

    def holds_for(self, message: MessageAnalysis, channel: Channel | None) -> bool:
        """The channel and sentiment conditions (the words and role were checked at matching)."""
        if self.channels is not None and channel not in self.channels:
            return False
        return self.sentiment is None or message.sentiment.label in self.sentiment


class CategoryConfig(StrictModel):
    version: int = Field(1, ge=1, le=1)
    categories: list[Category] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> CategoryConfig:
        check_unique([c.name for c in self.categories], "category")
        return self

    def by_name(self) -> dict[str, Category]:
        return {c.name: c for c in self.categories}


def load_categories(path: str | Path | None = None) -> CategoryConfig:
    """Read and validate a categories file (the shipped default when `path` is None)."""
    return read_validated(
        Path(path) if path else DEFAULT_CATEGORIES_FILE, CategoryConfig, "categories file", CategoryError
    )


@dataclass(frozen=True)
class CategorySpan:
    name: str
    start: int
    end: int
    # A keyword or phrase match quotes the team's own configured words, so its quote needs
    # no redaction (and its message no NER); a regex or token pattern can span anything.
    literal: bool = False


class CategoryMatcher:
    """Matches every configured category in parsed messages, first match per category."""

    def __init__(self, nlp: Language, config: CategoryConfig) -> None:
        self.config = config
        self._categories = config.by_name()
        self._matcher = Matcher(nlp.vocab, validate=True)
        self._phrases = PhraseMatcher(nlp.vocab, attr="LOWER")
        self._regexes: list[tuple[str, re.Pattern[str], bool]] = []  # (category, regex, literal)
        # Read for every message, so worked out once here.
        self.needs_parse = any(
            key.upper() not in TOKENIZER_ATTRS
            for category in config.categories
            for pattern in category.match.patterns
            for token in pattern
            for key in token
        )
        """Whether some token pattern reads what only the tagger, parser or NER sets."""
        self.roles: frozenset[Role] = frozenset(role for category in config.categories for role in category.roles)
        """Roles some category listens to."""
        for category in config.categories:
            rules = category.match
            if rules.patterns:
                try:
                    self._matcher.add(category.name, rules.patterns)
                except (ValueError, KeyError) as exc:  # spaCy validates the token patterns here
                    raise CategoryError(f"categories: {category.name}.match.patterns: {exc}") from None
            if rules.phrases:
                self._phrases.add(category.name, list(nlp.tokenizer.pipe(rules.phrases)))  # type: ignore[union-attr]  # spaCy's Tokenizer
            for keyword in rules.keywords:
                self._regexes.append((category.name, re.compile(rf"(?<!\w){re.escape(keyword)}(?!\w)", re.I), True))
            for regex in rules.regexes:
                self._regexes.append((category.name, re.compile(regex, re.I), False))

    def match_doc(self, doc: Doc, role: Role) -> list[CategorySpan]:
        """Categories for `role` found in a message, in configuration order. The Doc must be
        parsed when `needs_parse`; otherwise the tokenizer's output is enough."""
        wanted = {name for name, c in self._categories.items() if role in c.roles}
        if not wanted:
            return []
        found: dict[str, CategorySpan] = {}

        def keep(found_span: CategorySpan) -> None:
            name = found_span.name
            if name in wanted and (name not in found or found_span.start < found[name].start):
                found[name] = found_span

        vocab = doc.vocab.strings
        for matcher, literal in ((self._matcher, False), (self._phrases, True)):
            for match_id, start, end in matcher(doc):
                span = doc[start:end]
                keep(CategorySpan(vocab[match_id], span.start_char, span.end_char, literal))
        text = doc.text  # built from the tokens on each access
        for name, regex, literal in self._regexes:
            hit = regex.search(text)
            if hit and hit.end() > hit.start():
                keep(CategorySpan(name, hit.start(), hit.end(), literal))
        order = list(self._categories)
        return [found[name] for name in sorted(found, key=order.index)]


@dataclass
class CategoryTally:
    """Each category's hits in a conversation, in message order, gathered one message at a
    time; which of them count depends on the channel, so that is decided when read."""

    hits: dict[str, list[tuple[MessageAnalysis, CategoryHit]]] = field(default_factory=dict)

    def add(self, message: MessageAnalysis) -> None:
        for hit in message.categories:
            self.hits.setdefault(hit.name, []).append((message, hit))

    def categories(self, config: CategoryConfig | None, channel: Channel | None) -> list[ConversationCategory]:
        """Each category whose conditions hold in some message: its first such message."""
        if config is None:
            return []
        found: list[ConversationCategory] = []
        for name, category in config.by_name().items():  # configuration order
            first = next((pair for pair in self.hits.get(name, ()) if category.holds_for(pair[0], channel)), None)
            if first is not None:
                found.append(ConversationCategory(name=name, message_id=first[0].id, quote=first[1].quote))
        return found


def conversation_categories(
    analyses: Sequence[MessageAnalysis], config: CategoryConfig | None, channel: Channel | None
) -> list[ConversationCategory]:
    """Each category whose conditions hold in some message: its first such message."""
    tally = CategoryTally()
    for message in analyses:
        tally.add(message)
    return tally.categories(config, channel)


__all__ = [
    "Category",
    "CategoryConfig",
    "CategoryError",
    "CategoryHit",
    "CategoryMatcher",
    "CategorySpan",
    "CategoryTally",
    "conversation_categories",
    "load_categories",
]
