"""Text inspection with spaCy: risk cues in customer turns, tag categories and redaction of
personal data, from at most one parse per message. Quotes are redacted before they leave the library."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from spacy.tokens import Doc

from nlp.categories import CategoryConfig, CategoryMatcher, CategorySpan
from nlp.cues import CueDetector
from nlp.redaction import RedactedSpan, Redactor
from nlp.schemas import CategoryHit, CueHit, Role
from nlp.spacy_pipeline import NER_COMPONENTS, load_pipeline


@dataclass(frozen=True)
class Inspection:
    cues: list[CueHit]
    redacted_text: str
    categories: list[CategoryHit] = field(default_factory=list)


def redact_range(text: str, spans: Sequence[RedactedSpan], start: int, end: int, placeholder: str) -> str:
    """`text[start:end]` with every redacted span that touches it replaced by its placeholder."""
    pieces: list[str] = []
    cursor = start
    for span in sorted(spans, key=lambda s: s.start):
        if span.end <= start or span.start >= end:
            continue
        if span.start > cursor:
            pieces.append(text[cursor:span.start])
        pieces.append(placeholder.format(kind=span.kind))
        cursor = max(cursor, span.end)
    if cursor < end:
        pieces.append(text[cursor:end])
    return "".join(pieces)


@dataclass
class _Plan:
    """What one message needs from spaCy, decided on its tokens before any parse."""

    doc: Doc
    role: Role
    find_cues: bool
    categories: list[CategorySpan] | None  # already matched on the tokens, when that is exact
    parse: bool
    ner: bool


class TextInspector:
    """Cue detection, tag categories and redaction over one shared spaCy pipeline.

    The tagger, parser and NER are most of the cost after the encoder, so each message gets
    only the components its answer depends on: the parse when its tokens hold a cue
    candidate (or a category pattern reads the parse), NER when its text or a quote from it
    is redacted. The answers are the same as with every component on every message."""

    def __init__(self, *, detect_cues: bool = True, redactor: Redactor | None = None,
                 categories: CategoryConfig | None = None, screen_tokens: bool = True) -> None:
        """`screen_tokens=False` runs every component on every message: the reference the
        screened path is tested against, and the slower baseline in benchmarks."""
        self.screen_tokens = screen_tokens
        self.nlp = load_pipeline()
        self.cues = CueDetector(self.nlp) if detect_cues else None
        self.redactor = redactor
        self.categories = CategoryMatcher(self.nlp, categories) if categories and categories.categories else None
        names = self.nlp.pipe_names
        self._skip_for = {  # (parse, ner) -> components left out
            (True, True): [],
            (True, False): [n for n in names if n in NER_COMPONENTS],
            (False, True): [n for n in names if n not in NER_COMPONENTS],
        }

    def inspect(self, texts: Sequence[str], roles: Sequence[Role], *, redact: bool = True) -> list[Inspection]:
        """Cues (customer turns only), matched categories and redacted text for each message, in
        order. With `redact=False` (for callers that store no text) quotes are still redacted,
        but `redacted_text` is the original text and must not be stored."""
        plans = [self._plan(self.nlp.make_doc(text), role, redact) for text, role in zip(texts, roles)]
        for (parse, ner), skipped in self._skip_for.items():
            rows = [i for i, plan in enumerate(plans) if (plan.parse, plan.ner) == (parse, ner)]
            for i, doc in zip(rows, self.nlp.pipe([plans[i].doc for i in rows], disable=skipped)):
                plans[i].doc = doc
        return [self._inspection(text, plan, redact) for text, plan in zip(texts, plans)]

    def _plan(self, doc: Doc, role: Role, redact: bool) -> _Plan:
        if not self.screen_tokens:
            wants_categories = self.categories is not None and role in self.categories.roles
            return _Plan(doc, role, self.cues is not None and role == Role.customer, None if wants_categories else [],
                         parse=True, ner=self.redactor is not None and self.redactor.uses_ner)
        find_cues = self.cues is not None and role == Role.customer and self.cues.screen(doc)
        matcher = self.categories
        wants_categories = matcher is not None and role in matcher.roles
        categories = matcher.match_doc(doc, role) if wants_categories and not matcher.needs_parse else None
        parse = find_cues or (wants_categories and categories is None)
        # Quotes from cues and categories are redacted too, so a message with any needs NER
        # (except a keyword or phrase quote: the team's own words).
        quotes = parse or any(not c.literal for c in categories or ())
        ner = (self.redactor is not None and self.redactor.uses_ner) and (redact or quotes)
        return _Plan(doc, role, find_cues, categories, parse, ner)

    def _inspection(self, text: str, plan: _Plan, redact: bool) -> Inspection:
        cues = self.cues.detect_doc(plan.doc) if plan.find_cues else []
        categories = plan.categories
        if categories is None:
            categories = self.categories.match_doc(plan.doc, plan.role) if plan.parse and self.categories else []
        spans: Sequence[RedactedSpan] = ()
        redacted_text = text
        if self.redactor is not None and (redact or cues or any(not c.literal for c in categories)):
            redaction = self.redactor.redact_doc(plan.doc)
            spans, redacted_text = redaction.spans, redaction.text if redact else text
        placeholder = self.redactor.config.placeholder_format if self.redactor else "[{kind}]"
        return Inspection(
            cues=[CueHit(family=c.family, quote=redact_range(text, spans, c.start, c.end, placeholder)) for c in cues],
            redacted_text=redacted_text,
            categories=[CategoryHit(name=c.name, quote=text[c.start:c.end] if c.literal else
                                    redact_range(text, spans, c.start, c.end, placeholder)) for c in categories],
        )
