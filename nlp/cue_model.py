"""Risk cues from the bundle's cue head, joined with the patterns' (nlp.cues).

The head reads the same encoder output as every other head, so finding cues costs no extra
encoder pass. A message's cues are the patterns' cues together with the families whose
probability reaches the head's threshold (tuned per family on dev), unless the patterns saw
that family's words and rejected them as negated, hypothetical, a question or a joke: that
reading of the parse outranks the head. A pattern quotes the
words it matched; where only the head finds a family, the evidence is the message's
sentence the head scores highest for that family, redacted. Each sentence is scored from
the message's own encoder pass: the head reads the sentence's token vectors pooled as the
encoder pools a whole text (`nlp.encoder.span_tokens`, `pool_tokens`), so choosing costs no second
encoder pass, only a tokenisation for the character offsets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from nlp.encoder import EncodedBatch, pool_tokens, span_tokens
from nlp.heads import TaskHead
from nlp.schemas import CueHit
from nlp.text import normalize_text
from nlp.token_states import TokenStates
from nlp.vocabulary import CUE_FAMILIES

if TYPE_CHECKING:
    from nlp.inspection import Inspection  # spaCy: loaded only with an inspector


class CueModel:
    """The cue head's decisions, and their evidence sentences."""

    def __init__(self, head: TaskHead) -> None:
        self.head = head
        labels = head.spec.labels
        self._thresholds = np.asarray(head.spec.thresholds or [0.5] * len(labels), dtype=np.float32)
        self._order = {family: i for i, family in enumerate(CUE_FAMILIES)}

    def fired(self, probabilities: np.ndarray, customer: Sequence[bool]) -> np.ndarray:
        """(n, families) True where the head finds the family in a customer message."""
        return (probabilities >= self._thresholds) & np.asarray(customer, dtype=bool)[:, None]

    def add_cues(
        self,
        inspections: list[Inspection],
        fired: np.ndarray,
        texts: Sequence[str],
        encoded: EncodedBatch,
        token_offsets: Callable[[str], list[tuple[int, int]]],
    ) -> list[Inspection]:
        """`inspections` with the families only the head found added as `model` cues, each
        quoting its evidence sentence (the inspections carry the redacted sentences of every
        message where the head fired). `texts` and `encoded` are the messages and their
        encoder pass; `token_offsets` is the encoder's."""
        labels = self.head.spec.labels
        wanted: list[tuple[int, int]] = []  # (row, family index) found by the head alone
        for row, inspection in enumerate(inspections):
            # The patterns' own finding, or their rejection of the family's words (negated,
            # hypothetical...), read from the parse, outranks the head.
            settled = {cue.family for cue in inspection.cues} | inspection.ruled_out
            wanted += [(row, int(k)) for k in np.flatnonzero(fired[row]) if labels[k] not in settled]
        evidence = self._evidence(inspections, wanted, texts, encoded, token_offsets)
        added: dict[int, list[CueHit]] = {}
        for (row, k), quote in zip(wanted, evidence):
            if quote is not None:
                added.setdefault(row, []).append(CueHit(family=labels[k], quote=quote, source="model"))
        return [
            replace(inspection, cues=sorted([*inspection.cues, *added[row]], key=lambda c: self._order[c.family]))
            if row in added
            else inspection
            for row, inspection in enumerate(inspections)
        ]

    def sentence_scores(
        self, text: str, spans: Sequence[tuple[int, int]], tokens: np.ndarray, offsets: Sequence[tuple[int, int]]
    ) -> np.ndarray:
        """(sentences, families) head probabilities of each sentence of `text` (`spans`: its
        character offsets there), read from the message's token vectors; -inf for a sentence
        the encoder did not read (past its window)."""
        normalized = normalize_text(text)
        scores = np.full((len(spans), len(self.head.spec.labels)), -np.inf, dtype=np.float32)
        features, vectors, scored, cursor = [], [], [], 0
        for index, (start, end) in enumerate(spans):
            # The encoder read the normalised text: find the sentence there, in order.
            piece = normalize_text(text[start:end])
            found = normalized.find(piece, cursor)
            if not piece or found < 0:
                continue
            cursor = found + len(piece)
            sentence = span_tokens(tokens, offsets, found, cursor)
            if sentence is not None:
                features.append(pool_tokens(sentence))
                vectors.append(sentence)
                scored.append(index)
        if features:
            # A head with label-wise attention reads each sentence's own token vectors too.
            sentence_tokens = TokenStates.from_rows(vectors) if self.head.reads_tokens else None
            scores[scored] = self.head.predict_proba(np.stack(features), sentence_tokens)
        return scores

    def _evidence(
        self,
        inspections: list[Inspection],
        wanted: list[tuple[int, int]],
        texts: Sequence[str],
        encoded: EncodedBatch,
        token_offsets: Callable[[str], list[tuple[int, int]]],
    ) -> list[str | None]:
        """Each wanted cue's sentence: the only one, or the one the head scores highest for
        its family (None for a message without words)."""
        scores: dict[int, np.ndarray] = {}
        for row in sorted({row for row, _ in wanted if len(inspections[row].sentences) > 1}):
            tokens = encoded.tokens[row] if encoded.tokens is not None else None
            if tokens is not None:  # else (not kept, or a backend without them): the first sentence
                text = texts[row]
                scores[row] = self.sentence_scores(text, inspections[row].sentence_spans, tokens, token_offsets(text))
        quotes: list[str | None] = []
        for row, k in wanted:
            sentences = inspections[row].sentences
            if not sentences:
                quotes.append(None)
            elif row in scores and np.isfinite(scores[row][:, k]).any():
                quotes.append(sentences[int(np.argmax(scores[row][:, k]))])
            else:
                quotes.append(sentences[0])
        return quotes
