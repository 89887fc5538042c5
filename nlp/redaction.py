"""Redaction of personal data in customer-conversation text: quoted evidence and stored text.

Detected, each replaced by a placeholder such as "[email]":
- emails;
- phone numbers with 7 to 15 digits: international (+44 7700 900123, +1 (555) 123-4567), US
  ((555) 123-4567, 555-123-4567, 555.123.4567) and UK (07700 900123) formats;
- payment card numbers: 13 to 19 digits, grouped by spaces or dashes or not, that pass the Luhn check;
- IBANs: country code, check digits and up to 30 letters or digits, grouped in fours or not,
  that pass the ISO 13616 mod-97 check;
- phone, card and IBAN digits may be any script's (fullwidth "４１５", Arabic-Indic...);
- person names: spaCy PERSON entities;
- addresses: a house number, capitalised words and a street word ("12 Baker Street", "350 Fifth
  Ave"), or a named spaCy FAC entity (a street, building, airport or venue) with any house
  number before it. A flat or suite number, and the city, region and postcode that follow the
  street, go into the same span: "12 Baker Street, London NW1 6XE" becomes one "[address]".

When spans overlap they merge into one, of the first kind in the order card, iban, email,
phone, address, person.

Deliberately kept: a city or country on its own ("I'm flying to London"), company and
product names (unless spaCy mistakes them for people), order, ticket, claim and invoice
numbers, dates, years, times, amounts and IP addresses. They carry the context the analysis
needs and identify no one on their own.

Known misses: names and streets spaCy's small model does not tag (it also over-tags, mostly
in non-English text), addresses without a house number, bare digit blocks other than 10
digits or 11 starting with 0, and phone numbers run together with other numbers."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from spacy.language import Language
from spacy.tokens import Doc

from nlp.spacy_pipeline import entity_docs, load_pipeline
from nlp.text import mask_surrogates

KINDS: tuple[str, ...] = ("card", "iban", "email", "phone", "address", "person")  # priority, highest first
_PRIORITY = {kind: rank for rank, kind in enumerate(KINDS)}


@dataclass(frozen=True)
class RedactedSpan:
    """One redacted stretch: its kind and character offsets into the original text."""

    kind: str
    start: int
    end: int


@dataclass(frozen=True)
class Redaction:
    text: str
    spans: tuple[RedactedSpan, ...]


@dataclass(frozen=True)
class RedactionConfig:
    emails: bool = True
    phones: bool = True
    payment_cards: bool = True
    ibans: bool = True
    person_names: bool = True
    addresses: bool = True
    placeholder_format: str = "[{kind}]"


_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]+@[\w-]+(?:\.[\w-]+)+")

# Lookbehinds anchor each match at the start of its number, so no detector is quadratic on long digit runs.
_PHONE = re.compile(
    r"(?<![\w#$£€¥+./,-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?"
    r"\d{1,12}(?:[ .-]\d{1,12}){0,7}(?!\w)",
    re.ASCII,
)
_REFERENCE_BEFORE = re.compile(
    r"(?:\b(?:order|invoice|ticket|case|claim|policy|ref|reference|tracking|awb|account|"
    r"acct|booking|confirmation|transaction|receipt|serial|sku|id)\b[\s.:#-]*"
    r"(?:(?:no|num|number|id)\b[\s.:#-]*)?|#\s*)$",
    re.IGNORECASE,
)
_DATE = re.compile(r"\d{4}([-./ ])\d{1,2}\1\d{1,2}|\d{1,2}([-./ ])\d{1,2}\2\d{2,4}")
_DIGITS = re.compile(r"\d+", re.ASCII)

_DIGIT_RUN = re.compile(r"(?<![\w.,])\d+(?:[ -]\d+)*", re.ASCII)

_IBAN_START = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}", re.ASCII)
_IBAN_CHUNK = re.compile(r" ?([A-Za-z0-9]+)", re.ASCII)

_STREET_WORDS = (
    r"(?:Street|Road|Avenue|Lane|Drive|Boulevard|Way|Court|Place|Close|Crescent|Terrace|Square|"
    r"Highway|Parkway|Gardens|Grove|Row|Mews)\b|(?:St|Rd|Ave|Ln|Dr|Blvd|Ct|Pl|Sq|Hwy|Pkwy)\b\.?"
)
_UNIT = r"(?:Apt|Apartment|Suite|Ste|Unit|Flat|Floor)\.?\s*#?\w+"
# Name words must be capitalised: lower-case "3 days on the road" is not an address.
_STREET = re.compile(
    rf"(?<![\w#$£€.,/-])\d{{1,5}}[A-Za-z]?(?:[-/]\d{{1,5}}[A-Za-z]?)?,?[ \t]+"
    rf"(?:(?:[A-Z][\w'’.-]*|\d+(?:st|nd|rd|th))[ \t]+){{1,4}}?(?i:{_STREET_WORDS})"
    rf"(?:[ \t]+(?:N|S|E|W|NE|NW|SE|SW)\b)?(?:,?[ \t]*{_UNIT})?"
)
_BEFORE_ADDRESS = re.compile(rf"(?:(?<!\w){_UNIT},?\s+)?(?:(?<![\w#])\d{{1,5}}[A-Za-z]?,?\s+)?$")
_POSTCODE = r"(?:[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}|(?:[A-Z]{2}\s+)?\d{5}(?:-\d{4})?)\b"
_AFTER_ADDRESS = re.compile(rf"(?:[A-Z][\w'-]+\s+){{0,2}}[A-Z][\w'-]+,?\s+{_POSTCODE}|{_POSTCODE}")
_FAC_LEAD = re.compile(r"[^A-Z]*(?=[A-Z][a-z])")
_ADDRESS_GAP = re.compile(r",?[ \t]*\n?[ \t]*")


# Fullwidth punctuation of numbers, read as its ASCII form (one character for one).
_FULLWIDTH = dict(zip("＋（）－．　", "+()-. "))


def _ascii_numbers(text: str) -> str:
    """`text` with digits of every script (fullwidth "４１５", Arabic-Indic...) and fullwidth
    + ( ) - . and space as ASCII, one character for one so offsets hold: the number finders
    read ASCII, and a number written otherwise is still a number."""
    if text.isascii():
        return text
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else _FULLWIDTH.get(ch, ch) for ch in text)


def _is_phone(candidate: str) -> bool:
    groups = _DIGITS.findall(candidate)
    if not 7 <= sum(map(len, groups)) <= 15:
        return False
    if candidate.startswith(("+", "(")):
        return True
    if len(groups) == 1:
        block = groups[0]
        return len(block) == 10 or (block.startswith("0") and len(block) == 11)
    first, rest = groups[0], groups[1:]
    if len(groups) == 2 and (len(first) < 3 or re.fullmatch(r"(?:19|20)\d\d", first)):  # "77-40219", "2024-88123"
        return False
    if _DATE.fullmatch(candidate) or any(len(g) < 2 for g in rest) or (len(first) == 1 and first not in "01"):
        return False
    # Equal groups read as ranges ("1000-2000", "2019 2020"); blocks of four as cards or IBANs; dotted quads as IPs.
    if len({len(g) for g in groups}) == 1 and (len(groups) == 2 or len(first) >= 4):
        return False
    if len(groups) >= 3 and all(len(g) == 4 for g in groups[:-1]):
        return False
    if len(groups) == 4 and "." in candidate and all(len(g) <= 3 for g in groups):
        return False
    # Thousands ("1.234.567", "1 234 567") and decimals ("1234567.89").
    if all(len(g) == 3 for g in rest) and not first.startswith("0") and (len(first) < 3 or "." in candidate):
        return False
    return not (len(groups) == 2 and "." in candidate and len(rest[0]) == 2)


def _phones(text: str) -> Iterator[tuple[int, int]]:
    for match in _PHONE.finditer(text):
        start, candidate = match.start(), match.group()
        if _REFERENCE_BEFORE.search(text[max(0, start - 40) : start]):
            continue
        # A phone followed by an unrelated number ("call 555 123 4567 2 times"): drop space-separated tails.
        while candidate:
            if _is_phone(candidate):
                yield start, start + len(candidate)
                break
            cut = candidate.rfind(" ")
            candidate = candidate[:cut] if cut > 0 else ""


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _cards(text: str) -> Iterator[tuple[int, int]]:
    for run in _DIGIT_RUN.finditer(text):
        chunks = [(m.start() + run.start(), m.end() + run.start()) for m in _DIGITS.finditer(run.group())]
        windows = []  # (first chunk, last chunk) of each Luhn-valid stretch of 13 to 19 digits
        for i in range(len(chunks)):
            digits = ""
            for j in range(i, len(chunks)):
                digits += text[chunks[j][0] : chunks[j][1]]
                if len(digits) > 19:
                    break
                if len(digits) >= 13 and _luhn(digits):
                    windows.append((i, j))
        claimed = [False] * len(chunks)
        for i, j in sorted(windows, key=lambda w: (w[0] - w[1], w[0])):  # most chunks, then earliest
            if not any(claimed[i : j + 1]):
                claimed[i : j + 1] = [True] * (j + 1 - i)
                yield chunks[i][0], chunks[j][1]


def _iban_valid(compact: str) -> bool:
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = (compact[4:] + compact[:4]).upper()
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _ibans(text: str) -> Iterator[tuple[int, int]]:
    for match in _IBAN_START.finditer(text):
        compact, pos, ends = match.group(), match.end(), []
        while (chunk := _IBAN_CHUNK.match(text, pos)) and len(compact) + len(chunk.group(1)) <= 34:
            compact, pos = compact + chunk.group(1), chunk.end()
            ends.append((pos, compact))
        # The longest valid prefix, so trailing words ("... 32 THANKS") are left out.
        for end, value in reversed(ends):
            if _iban_valid(value):
                yield match.start(), end
                break


def _merge(spans: list[RedactedSpan]) -> tuple[RedactedSpan, ...]:
    merged: list[RedactedSpan] = []
    for span in sorted(spans, key=lambda s: (s.start, s.end)):
        if merged and span.start < merged[-1].end:
            last = merged[-1]
            kind = min(last.kind, span.kind, key=_PRIORITY.__getitem__)
            merged[-1] = RedactedSpan(kind, last.start, max(last.end, span.end))
        elif span.end > span.start:
            merged.append(span)
    return tuple(merged)


def _always(match: re.Match[str] | None) -> re.Match[str]:
    """The match of a pattern whose every part is optional (it matches everywhere, maybe empty)."""
    assert match is not None
    return match


class Redactor:
    """Finds personal data with regexes (checksummed where a checksum exists) and spaCy NER."""

    def __init__(self, config: RedactionConfig = RedactionConfig(), nlp: Language | None = None) -> None:
        config.placeholder_format.format(kind="email")  # a bad format fails here, at start-up, not per message
        self.config = config
        self.uses_ner = config.person_names or config.addresses
        self.nlp = nlp if nlp is not None or not self.uses_ner else load_pipeline()

    def redact(self, text: str) -> Redaction:
        """`text` with its personal data replaced by placeholders."""
        return self.redact_many([text])[0]

    def redact_doc(self, doc: Doc) -> Redaction:
        """Redacts `doc.text`, reading the entities of a Doc the caller has already parsed."""
        return self._redact(doc.text, doc)

    def redact_many(self, texts: Sequence[str]) -> list[Redaction]:
        """`redact` for each text, in order, parsing them in spaCy batches."""
        if not self.uses_ner:
            return [self._redact(text, None) for text in texts]
        assert self.nlp is not None  # loaded in __init__ whenever NER is used
        docs = entity_docs(self.nlp, (mask_surrogates(text) for text in texts))
        # Surrogates were replaced one for one, so the Doc offsets hold for the original text.
        return [self._redact(text, doc) for text, doc in zip(texts, docs)]

    def _redact(self, text: str, doc: Doc | None) -> Redaction:
        config = self.config
        found: list[RedactedSpan] = []
        numbers = _ascii_numbers(text)
        for enabled, kind, finder in (
            (config.payment_cards, "card", _cards),
            (config.ibans, "iban", _ibans),
            (config.phones, "phone", _phones),
        ):
            if enabled:
                found += [RedactedSpan(kind, start, end) for start, end in finder(numbers)]
        if config.emails:
            found += [RedactedSpan("email", m.start(), m.end()) for m in _EMAIL.finditer(text)]
        if config.addresses:
            found += self._addresses(text, doc)
        if config.person_names and doc is not None:
            found += [
                RedactedSpan("person", ent.start_char, ent.end_char)
                for ent in doc.ents
                if ent.label_ == "PERSON" and not any(char.isdigit() for char in ent.text)
            ]
        spans = _merge(found)
        pieces, cursor = [], 0
        for span in spans:
            pieces += [text[cursor : span.start], config.placeholder_format.format(kind=span.kind)]
            cursor = span.end
        pieces.append(text[cursor:])
        return Redaction(text="".join(pieces), spans=spans)

    @staticmethod
    def _addresses(text: str, doc: Doc | None) -> list[RedactedSpan]:
        ents = list(doc.ents) if doc is not None else []
        places = {ent.start_char: ent.end_char for ent in ents if ent.label_ in ("GPE", "LOC")}
        cores = [(m.start(), m.end()) for m in _STREET.finditer(text)]
        # The small model's FAC entities are noisy ("EV", "JV 880", "la cita"): keep named ones, from the first capital.
        cores += [
            (ent.start_char + lead.end(), ent.end_char)
            for ent in ents
            if ent.label_ == "FAC"
            and (lead := _FAC_LEAD.match(ent.text))
            and not any(char.isdigit() for char in ent.text)
        ]
        spans = []
        for start, end in cores:
            start -= len(_always(_BEFORE_ADDRESS.search(text[max(0, start - 40) : start])).group())
            for _ in range(4):  # city, region, postcode: a GPE/LOC entity or a postcode after the street
                gap = _always(_ADDRESS_GAP.match(text, end)).end()
                if gap in places:
                    end = places[gap]
                elif after := _AFTER_ADDRESS.match(text, gap):
                    end = after.end()
                else:
                    break
            spans.append(RedactedSpan("address", start, end))
        return spans
