"""spaCy's attribute rules (tag to part of speech, and the exceptions), applied through a
word and tag index instead of a Matcher.

The English pipeline's `attribute_ruler` holds 179 one- and two-token rules. spaCy runs
them through one Matcher, whose cost grows with the number of rules whether they match or
not: about 1 ms for a 20-token message, a quarter of a parse. Every rule names a word or
a tag, so each token can look up the few rules it may match and check only those.

`IndexedAttributeRuler` takes the same rules (`AttributeRuler.patterns`) and gives the
same result: every rule is matched against the tokens as they came from the tagger and
parser, then the rules' attributes are set in rule order (later rules win), with spaCy's
own `set_token_attrs`. `index_attribute_rules` swaps it in for a pipeline's ruler, and
keeps spaCy's when a rule uses anything the index does not read."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc
from spacy.tokens._retokenize import normalize_token_attrs, set_token_attrs
from spacy.vocab import Vocab

log = logging.getLogger("convintel.spacy")

RULER_NAME = "attribute_ruler"
FACTORY_NAME = "convintel_indexed_attribute_ruler"

# The token attributes a rule may test, as the Matcher reads them: each token's are read
# once, into a row, in this order.
_FIELDS = ("LOWER", "TAG", "DEP", "IS_SPACE")
_ROW = {attr: position for position, attr in enumerate(_FIELDS)}


def _rows(doc: Doc) -> list[tuple[str, str, str, bool]]:
    return [(token.lower_, token.tag_, token.dep_, token.is_space) for token in doc]


# Attributes with a string index, most selective first.
_INDEXED = ("LOWER", "TAG")


class UnsupportedRule(ValueError):
    """A rule tests something the index does not read (an operator, another attribute)."""


Check = Callable[[Any], bool]


def _value_check(value: Any) -> Check:
    """The Matcher's test for one attribute's value: equality, IN, NOT_IN or REGEX."""
    if isinstance(value, (str, bool)):
        return lambda got: got == value
    if isinstance(value, dict) and len(value) == 1:
        ((operator, argument),) = value.items()
        if operator == "IN":
            accepted = frozenset(argument)
            return lambda got: got in accepted
        if operator == "NOT_IN":
            refused = frozenset(argument)
            return lambda got: got not in refused
        if operator == "REGEX":
            regex = re.compile(argument)
            return lambda got: bool(regex.search(got))
    raise UnsupportedRule(f"value {value!r}")


_TokenSpec = tuple[tuple[int, Check], ...]  # (row position, test) for each attribute a token must pass


def _token_spec(spec: dict) -> _TokenSpec:
    if unknown := set(spec) - set(_FIELDS):
        raise UnsupportedRule(f"attributes {sorted(unknown)}")
    return tuple((_ROW[attr], _value_check(value)) for attr, value in spec.items())


def _index_keys(spec: dict) -> tuple[str, frozenset[str]] | None:
    """(attribute, the values a matching token has) for the most selective indexable test."""
    for attr in _INDEXED:
        value = spec.get(attr)
        if isinstance(value, str):
            return attr, frozenset([value])
        if isinstance(value, dict) and list(value) == ["IN"]:
            return attr, frozenset(value["IN"])
    return None


@dataclass(frozen=True)
class _Pattern:
    rule: int
    tokens: tuple[_TokenSpec, ...]
    target: int  # offset of the token that gets the attributes

    def matches_at(self, rows: Sequence[tuple], start: int) -> bool:
        if start < 0 or start + len(self.tokens) > len(rows):
            return False
        for offset, spec in enumerate(self.tokens):
            row = rows[start + offset]
            for position, check in spec:
                if not check(row[position]):
                    return False
        return True


class IndexedAttributeRuler:
    """The attribute ruler's rules, each filed under a word or tag it requires."""

    def __init__(self, vocab: Vocab, name: str = RULER_NAME) -> None:
        self.vocab = vocab
        self.name = name
        self.rules: list[dict] = []  # as given, for `patterns`
        self._attrs: list[dict] = []
        # attribute -> value -> (pattern, position of the indexed token in it)
        self._index: dict[str, dict[str, list[tuple[_Pattern, int]]]] = {attr: {} for attr in _INDEXED}
        self._unindexed: list[_Pattern] = []

    @property
    def patterns(self) -> list[dict]:
        """The rules, in `AttributeRuler.patterns` form."""
        return list(self.rules)

    def add_patterns(self, rules: Iterable[dict]) -> None:
        """Add rules given as `AttributeRuler.patterns` gives them ({patterns, attrs, index})."""
        for rule in rules:
            self.add(rule["patterns"], rule["attrs"], rule.get("index", 0))

    def add(self, patterns: Sequence[list[dict]], attrs: dict, index: int = 0) -> None:
        """One rule: token `index` of any match of `patterns` gets `attrs`."""
        rule = len(self._attrs)
        compiled = []
        for pattern in patterns:
            if not pattern or any("OP" in spec for spec in pattern) or not -len(pattern) <= index < len(pattern):
                raise UnsupportedRule(f"pattern {pattern!r} with index {index}")
            compiled.append(_Pattern(rule, tuple(_token_spec(spec) for spec in pattern), index % len(pattern)))
        for compiled_pattern, raw in zip(compiled, patterns):
            keyed = next(((offset, keys) for offset, spec in enumerate(raw) if (keys := _index_keys(spec))), None)
            if keyed is None:
                self._unindexed.append(compiled_pattern)
                continue
            offset, (attr, values) = keyed
            for value in values:
                self._index[attr].setdefault(value, []).append((compiled_pattern, offset))
        self._attrs.append(normalize_token_attrs(self.vocab, attrs))
        self.rules.append({"patterns": [list(p) for p in patterns], "attrs": attrs, "index": index})

    def matches(self, doc: Doc) -> list[tuple[int, int]]:
        """(rule, token) for every match, in the order the attributes are set."""
        found: set[tuple[int, int]] = set()
        rows = _rows(doc)
        lower_index, tag_index = self._index["LOWER"], self._index["TAG"]
        for i, (lower, tag, _, _) in enumerate(rows):
            for candidates in (lower_index.get(lower), tag_index.get(tag)):
                for pattern, offset in candidates or ():
                    if pattern.matches_at(rows, i - offset):
                        found.add((pattern.rule, i - offset + pattern.target))
        for pattern in self._unindexed:
            found.update(
                (pattern.rule, start + pattern.target) for start in range(len(rows)) if pattern.matches_at(rows, start)
            )
        return sorted(found)

    def __call__(self, doc: Doc) -> Doc:
        # Every match is found before any attribute changes, as spaCy's ruler does.
        for rule, token in self.matches(doc):
            set_token_attrs(doc[token], self._attrs[rule])
        return doc

    def pipe(self, docs: Iterable[Doc], batch_size: int = 128) -> Iterator[Doc]:
        for doc in docs:
            yield self(doc)


@Language.factory(FACTORY_NAME)
def make_indexed_attribute_ruler(nlp: Language, name: str) -> IndexedAttributeRuler:
    """spaCy factory: an empty ruler (`index_attribute_rules` fills it)."""
    return IndexedAttributeRuler(nlp.vocab, name)


def index_attribute_rules(nlp: Language) -> bool:
    """Replace `nlp`'s attribute ruler by an `IndexedAttributeRuler` with the same rules.
    False (and spaCy's ruler kept) when there is none, or a rule is beyond the index."""
    if RULER_NAME not in nlp.pipe_names:
        return False
    rules = nlp.get_pipe(RULER_NAME).patterns  # type: ignore[attr-defined]  # spaCy types pipes as callables
    indexed = IndexedAttributeRuler(nlp.vocab)
    try:
        indexed.add_patterns(rules)
    except UnsupportedRule as exc:
        log.info("keeping spaCy's attribute ruler: %s", exc)
        return False
    nlp.replace_pipe(RULER_NAME, FACTORY_NAME).add_patterns(rules)  # type: ignore[attr-defined]
    return True
