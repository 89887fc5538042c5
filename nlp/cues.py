"""Risk cues in one customer message: cancellation or switching threats, legal threats, safety
and security reports, public complaint threats, repeated contact and requests for a person.

The patterns are data (`nlp/default_cues.yaml`, or a copy named by `CONVINTEL_CUES_FILE`; see
`nlp.cue_patterns`): spaCy token patterns on lower-cased tokens (the shared pipeline has no
lemmatizer), phrases, and regexes where a Matcher is clumsy ("3rd time", "called 5 times").
Most messages carry no cue at all, so `CueDetector.screen` first looks for candidates on the
tokenizer's output alone (the token patterns without their conditions on the parse, which can
only find more): a message with none needs no parse, and gets the same empty answer it would
after one. A match only counts when the parse says it is meant: it is dropped when a negation
attaches to the cue or to a verb governing it ("I'm not going to cancel"), when it sits in an
if-clause ("if it ever gets hacked"), when it is a how/can-I question about the procedure
("how do I cancel?"), or when it is a joke ("I'll sue 😂")."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from spacy.lang.en.stop_words import STOP_WORDS
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc, Span, Token
from spacy.vocab import Vocab

from nlp.categories import TOKENIZER_ATTRS
from nlp.cue_patterns import CueConfig, CueError, load_cues
from nlp.text import mask_surrogates
from nlp.vocabulary import CUE_FAMILIES

FAMILIES = CUE_FAMILIES  # re-exported: the detector reports cues in this order


@dataclass(frozen=True)
class Cue:
    """One risk cue: its family and the evidence span (character offsets into the message)."""

    family: str
    text: str
    start: int
    end: int


_NEGATIONS = frozenset({"not", "n't", "nt", "never", "no"})
# Dependencies through which a negation or hedge on a governing word still reaches the cue.
_CLIMB = frozenset(
    "xcomp ccomp dobj pobj prep attr acomp oprd dative pcomp acl compound amod prt advmod auxpass aux".split()
)
# Inside an if-clause the cue may also be its subject ("if a hacker gets in") or a conjunct.
_CONDITIONAL_CLIMB = (_CLIMB - {"ccomp"}) | {"nsubj", "nsubjpass", "conj"}
_REPORTING = frozenset(
    "say said saying think thought mean meant plan planning intend intending going want wanted"
    " threaten threatening threatened claim claimed believe asking ask asked".split()
)
_INTENT_NOUNS = frozenset("need needs intention intentions plan plans wish desire reason".split())
_OTHER_PARTY = frozenset({"you", "u", "they"})
_FIRST_PERSON = frozenset({"i", "we", "i'm", "im"})
_ALSO_NAMES = frozenset({"sue"})  # "Sue from billing said..."
_HEDGES = frozenset("probably maybe perhaps possibly might may".split())
# Verbs whose tense tells a cancellation already done ("I cancelled it in May") from a threat.
_CANCEL_WORDS = frozenset(
    "cancel cancelling canceling cancle cancell cancelled canceled close closing terminate terminating".split()
)
_ONE_OFF = frozenset(
    "order orders appointment appointments booking bookings reservation reservations flight flights"
    " payment payments transfer card cards cheque delivery request ticket tickets trip table meeting"
    " class lesson lessons session sessions".split()
)
_QUESTION_WORDS, _QUESTION_SUBJ = frozenset("how what when where which".split()), frozenset("i we it there".split())
_QUESTION_AUX = frozenset("can could may do does should will would is are am must".split())
_HYPOTHETICAL = re.compile(r"\b(?:hypothetically|in case|what if|suppose|supposing|imagine if)\b", re.I)
# Laughter and the emoji of a joking or ironic tone (😅 🙃 😉 included: "I'll write to my MP 🙃").
_JOKE = re.compile(r"\b(?:lol|lmao|rofl|jk|ha(?:ha)+|he(?:he)+)\b|[😂🤣😆😜😝😅🙃😉😁😄🤪]", re.I)
_JOKE_FAMILIES = frozenset({"cancellation", "legal", "public_complaint"})


def _screening(pattern: list[dict]) -> list[dict]:
    """`pattern` for an unparsed Doc: without the conditions only the tagger or parser sets
    (POS, TAG, DEP, LEMMA, ...), so it matches wherever the full pattern could (and sometimes
    where it cannot). A negated token ("OP": "!") that loses a condition would match fewer
    tokens, not more, so it becomes a token of any kind."""
    screened = []
    for spec in pattern:
        kept = {key: value for key, value in spec.items() if key.upper() in TOKENIZER_ATTRS}
        if kept != spec and spec.get("OP") == "!":
            kept = {}
        screened.append(kept)
    return screened


def _word_list(spec: dict) -> list[str]:
    """The words a token spec accepts by its LOWER value (none for a wildcard or POS slot)."""
    lower = spec.get("LOWER")
    if isinstance(lower, str):
        return [lower]
    return list(lower.get("IN", [])) if isinstance(lower, dict) else []


def _required(spec: dict) -> bool:
    """Whether every match holds a token matching `spec`: no operator, "+", or a repeat count from 1."""
    op = spec.get("OP")
    return op is None or op == "+" or bool(re.fullmatch(r"\{[1-9]\d*(,\d*)?\}", str(op)))


def _anchor(pattern: list[dict]) -> frozenset[str] | None:
    """The words of one token every match of `pattern` has (None if there is none): of the
    required word-list tokens, the one with the fewest stop words, so that the set rarely
    occurs in messages without a cue ("cancel" rather than "i")."""
    required = [frozenset(words) for spec in pattern if _required(spec) and (words := _word_list(spec))]
    if not required:
        return None
    return min(required, key=lambda words: (len(words & STOP_WORDS) / len(words), len(words)))


def _has_negation(token: Token) -> bool:
    return any(c.dep_ == "neg" or (c.lower_ in _NEGATIONS and c.dep_ in ("det", "advmod")) for c in token.children)


def _subjects(token: Token) -> list[Token]:
    return [c for c in token.children if c.dep_ in ("nsubj", "nsubjpass")]


def _governors(token: Token) -> Iterable[Token]:
    """The cue's head word and the words governing it whose negation or hedge reaches it:
    "I'm not going to cancel" climbs from "cancel" to "going". A clause joined by "and" or
    "because" does not pass its negation on, nor does a verb whose subject is the company
    ("you didn't refund the unauthorised charges")."""
    for _ in range(8):
        yield token
        head = token.head
        if head is token or token.dep_ not in _CLIMB:
            return
        if token.dep_ == "ccomp" and head.lower_ not in _REPORTING:
            return
        if head.pos_ in ("NOUN", "PROPN") and head.lower_ not in _INTENT_NOUNS:
            return
        if any(s.lower_ in _OTHER_PARTY for s in _subjects(head)):
            return
        token = head


def _not_current_cancellation(span: Span) -> bool:
    """A cancellation the customer is not threatening now: one already done ("I cancelled it in
    May"), someone else's ("you cancelled my order", "she'd cancel it") or a one-off ("cancel my
    appointment"). "Can you cancel it" and "my wife is cancelling" count."""
    verbs = [t for t in span if t.lower_ in _CANCEL_WORDS]
    if any(
        v.tag_ in ("VBD", "VBN") or any(c.lower_ in ("did", "have", "'ve", "has", "had") for c in v.children)
        for v in verbs
    ):
        return True
    subjects = _subjects(span.root)
    if subjects and not any(
        s.lower_ in _FIRST_PERSON | {"you", "u"} or any(c.lower_ in ("my", "our") for c in s.children) for s in subjects
    ):
        return True
    return any(c.dep_ in ("dobj", "nsubjpass") and c.lower_ in _ONE_OFF for v in verbs for c in v.children)


def _conditional(token: Token, sentence: Span, start_char: int) -> bool:
    """Whether the cue sits in an if/whether/in-case clause or a sentence marked hypothetical."""
    if _HYPOTHETICAL.search(sentence.text[: start_char - sentence.start_char]):
        return True
    for _ in range(8):
        for child in token.children:
            if child.dep_ == "mark" and child.lower_ in ("if", "whether"):
                return True
            if child.lower_ == "in" and any(g.lower_ == "case" for g in child.children):
                return True
        if token.head is token or token.dep_ not in _CONDITIONAL_CLIMB:
            return False
        token = token.head
    return False


def _inquiry(span: Span, sentence: Span) -> bool:
    """A how/what or can-I question about the procedure ("how do I cancel?"), not a threat."""
    before = [t.lower_ for t in sentence if t.i < span.root.i]
    if "how" in before:  # "I want to know how to close my account"
        return True
    if "?" not in sentence.text[span.end_char - sentence.start_char :]:
        return False
    return any(w in _QUESTION_WORDS for w in before) or any(
        a in _QUESTION_AUX and b in _QUESTION_SUBJ for a, b in zip(before, before[1:])
    )


class AnchoredMatchers:
    """Token patterns, one Matcher each, filed under their anchor words (`_anchor`): a Doc
    runs only the patterns whose anchor it contains. A spaCy Matcher costs about the same
    per pattern whether it matches or not, and most messages hold few anchors."""

    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab
        self._by_word: dict[str, list[Matcher]] = {}
        self._unanchored: list[Matcher] = []

    def add(self, key: str, pattern: list[dict]) -> None:
        matcher = Matcher(self.vocab)
        matcher.add(key, [pattern])
        anchor = _anchor(pattern)
        if anchor is None:
            self._unanchored.append(matcher)
        for word in anchor or ():
            self._by_word.setdefault(word, []).append(matcher)

    def for_doc(self, doc: Doc) -> list[Matcher]:
        """The Matchers whose patterns can match `doc` (each once)."""
        words = {token.lower_ for token in doc} & self._by_word.keys()
        found = {id(matcher): matcher for word in words for matcher in self._by_word[word]}
        return [*found.values(), *self._unanchored]


class CueDetector:
    """Finds risk cues in customer messages. The pipeline needs a tagger and a parser, as the
    shared one (`nlp.spacy_pipeline.load_pipeline`) has."""

    def __init__(self, nlp: Language | None = None, config: CueConfig | None = None) -> None:
        """`config`: the cue patterns (`nlp.cue_patterns.load_cues`); None reads the shipped file."""
        if nlp is None:
            from nlp.spacy_pipeline import load_pipeline

            nlp = load_pipeline()
        self.nlp = nlp
        self.config = config if config is not None else load_cues()
        # Each token pattern twice: as written, for parsed Docs, and without its conditions on
        # the parse, for screening unparsed ones (`screen`).
        self._patterns = AnchoredMatchers(nlp.vocab)
        self._screens = AnchoredMatchers(nlp.vocab)
        self._phrases = PhraseMatcher(nlp.vocab, attr="LOWER")
        self._regexes: list[tuple[str, re.Pattern[str], bool]] = []  # (family, regex, whether negation is the cue)
        self._not_followed_by: dict[tuple[str, str], frozenset[str]] = {}
        self._bare_clauses: list[tuple[str, frozenset[str], frozenset[str]]] = []  # (family, words, words | filler)
        # Every word a token pattern, phrase or bare clause names: a quote made of these
        # alone is the detector's own wording (see `is_literal`).
        vocabulary: set[str] = set()
        for family, cues in self.config.families.items():
            for field, keeps in (("patterns", False), ("negated_patterns", True)):
                for i, pattern in enumerate(getattr(cues, field)):
                    try:
                        self._patterns.add(family + ("!" if keeps else ""), pattern)
                        self._screens.add("screen", _screening(pattern))
                    except (ValueError, KeyError) as exc:  # spaCy compiles the pattern here
                        raise CueError(f"cues: families.{family}.{field}.{i}: {exc}") from None
                    vocabulary.update(word for spec in pattern for word in _word_list(spec))
            if cues.phrases:
                docs = list(nlp.tokenizer.pipe(cues.phrases))  # type: ignore[union-attr]  # spaCy's Tokenizer
                self._phrases.add(family, docs)
                vocabulary.update(token.lower_ for doc in docs for token in doc)
            self._regexes += [(family, re.compile(rx, re.I), False) for rx in cues.regexes]
            self._regexes += [(family, re.compile(rx, re.I), True) for rx in cues.negated_regexes]
            for last, following in cues.not_followed_by.items():
                self._not_followed_by[(family, last)] = frozenset(following)
            if cues.bare_clause is not None:
                needed = frozenset(cues.bare_clause.words)
                allowed = needed | frozenset(cues.bare_clause.filler)
                self._bare_clauses.append((family, needed, allowed))
                vocabulary.update(allowed)
        self.vocabulary = frozenset(vocabulary)

    def detect(self, text: str) -> list[Cue]:
        """Risk cues in one customer message, at most one per family, in `FAMILIES` order."""
        return self.detect_many([text])[0]

    def detect_many(self, texts: Iterable[str]) -> list[list[Cue]]:
        """`detect` for many messages, parsed in batches with `nlp.pipe`."""
        texts = [t or "" for t in texts]
        # spaCy cannot hash lone surrogates; one replacement character each keeps the offsets.
        docs = self.nlp.pipe(mask_surrogates(t) for t in texts)
        return [[replace(c, text=t[c.start : c.end]) for c in self.detect_doc(doc)] for t, doc in zip(texts, docs)]

    def detect_doc(self, doc: Doc) -> list[Cue]:
        """Risk cues in a message already parsed by this detector's pipeline."""
        return self.read_doc(doc)[0]

    def read_doc(self, doc: Doc) -> tuple[list[Cue], frozenset[str]]:
        """The message's risk cues, and the families whose words it uses only negated,
        hypothetically, as a question or a joke ("I'm not going to cancel": every match
        rejected; the cue model defers to this reading, nlp.cue_model). Each family keeps
        its first match; matches of that family overlapping it widen the quoted evidence."""
        chosen: dict[str, Span] = {}
        seen: set[str] = set()
        for family, span, keeps in sorted(self._candidates(doc), key=lambda c: (c[1].start_char, -c[1].end_char)):
            seen.add(family)
            if not self._counts(family, span, keeps):
                continue
            if family not in chosen:
                chosen[family] = span
            elif span.start_char < chosen[family].end_char:
                first = chosen[family]
                chosen[family] = (
                    doc.char_span(first.start_char, max(first.end_char, span.end_char), alignment_mode="expand")
                    or first
                )
        text = doc.text
        cues = [
            Cue(f, text[s.start_char : s.end_char], s.start_char, s.end_char)
            for f in FAMILIES
            if (s := chosen.get(f)) is not None
        ]
        return cues, frozenset(seen - chosen.keys())

    def is_literal(self, doc: Doc, cue: Cue) -> bool:
        """Whether a cue's quote is made only of the detector's own words, in lower case
        (its first word aside): "cancel my account", "lawyer". Such a quote cannot hold
        personal data, so it needs no redaction (or NER). A wildcard, a name, a number or
        a capital inside the quote makes it not literal."""
        span = doc.char_span(cue.start, cue.end, alignment_mode="expand")
        if span is None:
            return False
        return all(
            token.lower_ in self.vocabulary and (token.i == span.start or token.text == token.lower_)
            for token in span
            if not token.is_space
        )

    def screen(self, doc: Doc) -> bool:
        """Whether a message may carry a cue, read from the tokens alone (`doc` needs no
        tagger or parser). False means `detect_doc` on the parsed message finds nothing."""
        if self._phrases(doc) or any(screen(doc) for screen in self._screens.for_doc(doc)):
            return True
        return any(
            doc.char_span(start, end, alignment_mode="expand") for _, start, end, _ in self._text_spans(doc.text)
        )

    def _candidates(self, doc: Doc) -> Iterable[tuple[str, Span, bool]]:
        """Every pattern match as (family, span, whether its negation is part of the cue)."""
        strings = self.nlp.vocab.strings
        for matcher in self._patterns.for_doc(doc):
            for match_id, start, end in matcher(doc):
                key = strings[match_id]
                yield key.rstrip("!"), doc[start:end], key.endswith("!")
        for match_id, start, end in self._phrases(doc):
            yield strings[match_id], doc[start:end], False
        for family, start, end, keeps in self._text_spans(doc.text):
            span = doc.char_span(start, end, alignment_mode="expand")
            if span is not None and len(span):
                yield family, span, keeps

    def _text_spans(self, text: str) -> list[tuple[str, int, int, bool]]:
        """Regex matches and bare clauses ("agent", "No. Manager."), as character ranges."""
        spans = [(f, m.start(), m.end(), keeps) for f, rx, keeps in self._regexes for m in rx.finditer(text)]
        if not self._bare_clauses:
            return spans
        for chunk in re.finditer(r"\w[^.!?\n,;]*", text):  # "agent", "human. agent. person", "No. Manager."
            words = set(re.findall(r"[a-z]+", chunk.group().lower()))
            for family, needed, allowed in self._bare_clauses:
                if words and words <= allowed and words & needed:
                    spans.append((family, chunk.start(), chunk.start() + len(chunk.group().rstrip()), False))
        return spans

    def _counts(self, family: str, span: Span, keeps_negation: bool) -> bool:
        """Whether a match is a real, current cue rather than negated, hypothetical or a joke."""
        doc = span.doc
        if span.end < len(doc) and doc[span.end].lower_ in self._not_followed_by.get((family, span[-1].lower_), ()):
            return False
        if any(t.lower_ in _ALSO_NAMES and t.is_title and t.pos_ != "VERB" for t in span):
            return False
        sentence, root = span.sent, span.root
        governors = list(_governors(root))
        if not keeps_negation and any(_has_negation(t) for t in governors):
            return False
        if family == "cancellation" and (
            _not_current_cancellation(span)
            or any(  # "I'll probably shop elsewhere"
                c.lower_ in _HEDGES for t in governors for c in t.children if c.dep_ in ("aux", "advmod")
            )
        ):
            return False
        if _conditional(root, sentence, span.start_char):
            return False
        if family == "cancellation" and _inquiry(span, sentence):
            return False
        return not (family in _JOKE_FAMILIES and _JOKE.search(_with_neighbours(sentence)))


def _with_neighbours(sentence: Span) -> str:
    """The sentence with the ones just before and after it: the laugh that marks a joke often
    stands in its own sentence ("lol this boss is killing me. should I call my lawyer")."""
    doc = sentence.doc
    start = doc[sentence.start - 1].sent.start if sentence.start > 0 else sentence.start
    end = doc[sentence.end].sent.end if sentence.end < len(doc) else sentence.end
    return doc[start:end].text


def __getattr__(name: str) -> dict[str, str]:
    """`_SETS` and `_PHRASES`, the shipped file's word sets and phrases in the flat form the
    in-code tables had ({name: "w w w"}, {family: "p, p"}), for callers that sample cue
    words (tests/nlp/test_inspection.py). Read on first use, not at import."""
    if name == "_SETS":
        return {key: " ".join(words) for key, words in load_cues().sets.items()}
    if name == "_PHRASES":
        return {family: ", ".join(cues.phrases) for family, cues in load_cues().families.items() if cues.phrases}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
