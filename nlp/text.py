"""Text clean-up applied before encoding, and the per-message warnings it can raise."""

from __future__ import annotations

import re
import unicodedata

# C0/C1 control characters except tab and newline, plus zero-width and BOM characters:
# they carry no meaning for the models and can split words the tokenizer would know.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff]")
_WHITESPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Return `text` in NFC form with control characters removed and whitespace collapsed."""
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub(" ", text)
    return _WHITESPACE.sub(" ", text).strip()


def has_words(text: str) -> bool:
    """True when `text` holds at least one letter or digit (not only emoji or symbols)."""
    return any(ch.isalnum() for ch in text)


# UTF-16 surrogate code points: never valid on their own in a str, and spaCy cannot hash them.
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def replace_lone_surrogates(value: str) -> str:
    """`value` as valid Unicode: UTF-16 surrogate halves (JSON may carry them, e.g. an emoji
    cut in two by a client) are paired up where they pair, else replaced by U+FFFD."""
    if not _SURROGATE.search(value):
        return value
    return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


# Characters that neither print nor separate words: C0 and C1 controls other than the
# whitespace ones, zero-width space, word joiner and BOM. Zero-width (non-)joiners stay:
# they join emoji and shape Persian and Indic scripts.
_INVISIBLE = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\u200b\u2060\ufeff]")


def storable(value: str) -> str:
    """`value` as the service stores it: lone surrogates replaced (`replace_lone_surrogates`)
    and invisible characters removed. They carry nothing; PostgreSQL cannot hold NUL in
    text; and one inside an email address or a name would hide it from redaction."""
    return _INVISIBLE.sub("", replace_lone_surrogates(value))


def mask_surrogates(value: str) -> str:
    """`value` with each surrogate code point replaced by U+FFFD, one for one, so offsets into
    the result hold for `value` (what spaCy is given when its spans map back to the original)."""
    return _SURROGATE.sub("\ufffd", value)


# A sentence ends at . ! ? (runs of them, closing quotes or brackets included) followed by
# whitespace, or at a line break. Good enough to pick an evidence sentence; the parser's
# sentences would cost a parse of messages that need none.
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])([\"')\]]*)\s+|\n+")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of `text`'s sentences with words, surrounding
    whitespace trimmed; the whole text is one sentence when there is no break."""
    spans, start = [], 0
    for cut in [*_SENTENCE_BREAK.finditer(text), None]:
        end = cut.start() + len(cut.group(1) or "") if cut else len(text)
        piece = text[start:end]
        stripped = piece.strip()
        if stripped and has_words(stripped):
            lead = len(piece) - len(piece.lstrip())
            spans.append((start + lead, start + lead + len(stripped)))
        if cut:
            start = cut.end()
    return spans
