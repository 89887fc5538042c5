"""Text inspection with spaCy: risk cues in customer turns and redaction of personal data,
from one parse per message. Cue quotes are redacted before they leave the library."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from nlp.categories import CategoryConfig, CategoryMatcher
from nlp.cues import CueDetector
from nlp.redaction import RedactedSpan, Redactor
from nlp.schemas import CategoryHit, CueHit, Role
from nlp.spacy_pipeline import load_pipeline


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


class TextInspector:
    """Cue detection, tag categories and redaction over one shared spaCy pipeline."""

    def __init__(self, *, detect_cues: bool = True, redactor: Redactor | None = None,
                 categories: CategoryConfig | None = None) -> None:
        self.nlp = load_pipeline()
        self.cues = CueDetector(self.nlp) if detect_cues else None
        self.redactor = redactor
        self.categories = CategoryMatcher(self.nlp, categories) if categories and categories.categories else None

    def roles_with_findings(self) -> set[Role]:
        """Roles whose messages can carry cues (customers) or configured categories."""
        roles = {Role.customer} if self.cues is not None else set()
        return roles | (self.categories.roles if self.categories is not None else set())

    def inspect(self, texts: Sequence[str], roles: Sequence[Role]) -> list[Inspection]:
        """Cues (customer turns only), matched categories and redacted text for each message, in order."""
        results: list[Inspection] = []
        for text, role, doc in zip(texts, roles, self.nlp.pipe(texts)):
            redaction = self.redactor.redact_doc(doc) if self.redactor else None
            spans = redaction.spans if redaction else ()
            placeholder = self.redactor.config.placeholder_format if self.redactor else "[{kind}]"
            hits: list[CueHit] = []
            if self.cues is not None and role == Role.customer:
                hits = [CueHit(family=c.family, quote=redact_range(text, spans, c.start, c.end, placeholder))
                        for c in self.cues.detect_doc(doc)]
            categories: list[CategoryHit] = []
            if self.categories is not None:
                categories = [CategoryHit(name=c.name, quote=redact_range(text, spans, c.start, c.end, placeholder))
                              for c in self.categories.match_doc(doc, role)]
            results.append(Inspection(cues=hits, redacted_text=redaction.text if redaction else text,
                                      categories=categories))
        return results
