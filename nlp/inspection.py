"""Text inspection with spaCy: risk cues in customer turns, tag categories and redaction of
personal data, from at most one parse per message. Quotes are redacted before they leave the library."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from spacy.language import Language
from spacy.tokens import Doc

from nlp.categories import CategoryConfig, CategoryMatcher, CategorySpan, load_categories
from nlp.config import InspectionConfig
from nlp.cue_patterns import CueConfig, load_cues
from nlp.cues import Cue, CueDetector
from nlp.redaction import RedactedSpan, Redactor
from nlp.schemas import CategoryHit, CueHit, Role
from nlp.spacy_pipeline import load_pipeline, parsed_docs, recognize_entities
from nlp.text import sentence_spans


@dataclass(frozen=True)
class Inspection:
    cues: list[CueHit]
    redacted_text: str
    categories: list[CategoryHit] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)
    """The message's sentences, redacted, when asked for: evidence for a cue that only the
    cue model found (the patterns quote their own match)."""
    sentence_spans: list[tuple[int, int]] = field(default_factory=list)
    """With `sentences`: each one's character offsets in the message's original text."""
    ruled_out: frozenset[str] = frozenset()
    """With `sentences`: cue families whose words the patterns found but rejected as
    negated, hypothetical, a question or a joke."""


def redact_range(text: str, spans: Sequence[RedactedSpan], start: int, end: int, placeholder: str) -> str:
    """`text[start:end]` with every redacted span that touches it replaced by its placeholder."""
    pieces: list[str] = []
    cursor = start
    for span in sorted(spans, key=lambda s: s.start):
        if span.end <= start or span.start >= end:
            continue
        if span.start > cursor:
            pieces.append(text[cursor : span.start])
        pieces.append(placeholder.format(kind=span.kind))
        cursor = max(cursor, span.end)
    if cursor < end:
        pieces.append(text[cursor:end])
    return "".join(pieces)


@dataclass
class _Plan:
    """What one message needs from spaCy: decided on its tokens, then (for NER) on its findings."""

    doc: Doc
    role: Role
    find_cues: bool
    categories: list[CategorySpan] | None  # matched on the tokens, when that is exact; else after the parse
    parse: bool
    ner: bool
    cues: list[Cue] = field(default_factory=list)
    literal_cues: list[bool] = field(default_factory=list)
    ruled_out: frozenset[str] = frozenset()
    wants_sentences: bool = False
    parsed: bool = False  # the parser's components have run on `doc`
    recognized: bool = False  # `doc` carries the entity recogniser's entities


class TextInspector:
    """Cue detection, tag categories and redaction over one shared spaCy pipeline.

    The tagger, parser and NER are most of the cost after the encoder, so each message gets
    only the components its answer depends on: the parse when its tokens hold a cue
    candidate (or a category pattern reads the parse), NER when its text or a quote from it
    is redacted. The answers are the same as with every component on every message."""

    def __init__(
        self,
        *,
        detect_cues: bool = True,
        redactor: Redactor | None = None,
        categories: CategoryConfig | None = None,
        screen_tokens: bool = True,
        cue_patterns: CueConfig | None = None,
        nlp: Language | None = None,
    ) -> None:
        """`cue_patterns`: the risk-cue patterns (None: the shipped file). `screen_tokens=False`
        runs every component on every message: the reference the screened path is tested
        against, and the slower baseline in benchmarks. `nlp`: the English pipeline (None:
        the shared one)."""
        self.screen_tokens = screen_tokens
        self.nlp = nlp if nlp is not None else load_pipeline()
        self.cues = CueDetector(self.nlp, cue_patterns) if detect_cues else None
        self.redactor = redactor
        self.categories = CategoryMatcher(self.nlp, categories) if categories and categories.categories else None
        self._uses_ner = redactor is not None and redactor.uses_ner

    def inspect(
        self,
        texts: Sequence[str],
        roles: Sequence[Role],
        *,
        redact: bool = True,
        sentences_for: Sequence[bool] | None = None,
    ) -> list[Inspection]:
        """Cues (customer turns only), matched categories and redacted text for each message, in
        order. With `redact=False` (for callers that store no text) quotes are still redacted,
        but `redacted_text` is the original text and must not be stored. Messages flagged in
        `sentences_for` also get their redacted sentences (`Inspection.sentences`)."""
        plans = [self._plan(self.nlp.make_doc(text), role, redact) for text, role in zip(texts, roles)]
        for plan, wanted in zip(plans, sentences_for or ()):
            plan.wants_sentences = wanted
        self._run(plans)
        for plan in plans:
            self._find(plan)
            # NER found to be needed only now: a quote that may hold a name or address.
            plan.ner = plan.ner or (self._uses_ner and self._has_free_quote(plan))
        self._run(plans)
        return [self._inspection(text, plan, redact) for text, plan in zip(texts, plans)]

    def _run(self, plans: list[_Plan]) -> None:
        """Run on each plan's Doc what it now needs and has not had yet: the parse in place,
        entities from the recogniser alone (so they never depend on whether a parse ran)."""
        unparsed = [plan for plan in plans if plan.parse and not plan.parsed]
        if unparsed:
            for plan, doc in zip(unparsed, parsed_docs(self.nlp, [p.doc for p in unparsed])):
                plan.doc, plan.parsed = doc, True
        unrecognized = [plan for plan in plans if plan.ner and not plan.recognized]
        if unrecognized:
            recognize_entities(self.nlp, [plan.doc for plan in unrecognized])
        for plan in unrecognized:
            plan.recognized = True

    def _plan(self, doc: Doc, role: Role, redact: bool) -> _Plan:
        wants_categories = self.categories is not None and role in self.categories.roles
        if not self.screen_tokens:
            return _Plan(
                doc,
                role,
                self.cues is not None and role == Role.customer,
                None if wants_categories else [],
                parse=True,
                ner=self._uses_ner,
            )
        find_cues = self.cues is not None and role == Role.customer and self.cues.screen(doc)
        matcher = self.categories if wants_categories else None
        categories = matcher.match_doc(doc, role) if matcher is not None and not matcher.needs_parse else None
        parse = find_cues or (wants_categories and categories is None)
        return _Plan(doc, role, find_cues, categories, parse, ner=self._uses_ner and redact)

    def _find(self, plan: _Plan) -> None:
        if plan.find_cues and self.cues is not None:
            plan.cues, plan.ruled_out = self.cues.read_doc(plan.doc)
            plan.literal_cues = [self.cues.is_literal(plan.doc, c) for c in plan.cues]
        if plan.categories is None:
            plan.categories = self.categories.match_doc(plan.doc, plan.role) if self.categories else []

    @staticmethod
    def _has_free_quote(plan: _Plan) -> bool:
        """A quote that is not the detectors' own wording, and so is redacted."""
        return plan.wants_sentences or not all(plan.literal_cues) or any(not c.literal for c in plan.categories or ())

    def _inspection(self, text: str, plan: _Plan, redact: bool) -> Inspection:
        spans: Sequence[RedactedSpan] = ()
        redacted_text = text
        if self.redactor is not None and (redact or self._has_free_quote(plan)):
            redaction = self.redactor.redact_doc(plan.doc)
            spans, redacted_text = redaction.spans, redaction.text if redact else text
        placeholder = self.redactor.config.placeholder_format if self.redactor else "[{kind}]"

        def quote(start: int, end: int, literal: bool) -> str:
            return text[start:end] if literal else redact_range(text, spans, start, end, placeholder)

        spans_of_sentences = sentence_spans(text) if plan.wants_sentences else []

        return Inspection(
            cues=[
                CueHit(family=c.family, quote=quote(c.start, c.end, literal))
                for c, literal in zip(plan.cues, plan.literal_cues)
            ],
            redacted_text=redacted_text,
            categories=[
                CategoryHit(name=c.name, quote=quote(c.start, c.end, c.literal)) for c in plan.categories or ()
            ],
            sentences=[quote(start, end, False) for start, end in spans_of_sentences],
            sentence_spans=spans_of_sentences,
            ruled_out=plan.ruled_out if plan.wants_sentences else frozenset(),
        )


def build_inspector(config: InspectionConfig) -> TextInspector | None:
    """The text inspector `config` asks for (cues, categories, redaction), or None when
    every component is off. The cues and categories files are read and validated here."""
    if not config.enabled:
        return None
    cue_patterns = load_cues(config.cues_file) if config.detect_cues else None
    categories = load_categories(config.categories_file) if config.match_categories else None
    nlp = load_pipeline(config.spacy_blas)
    return TextInspector(
        detect_cues=config.detect_cues,
        redactor=Redactor(nlp=nlp) if config.redact_pii else None,
        categories=categories,
        screen_tokens=config.screen_tokens,
        cue_patterns=cue_patterns,
        nlp=nlp,
    )
