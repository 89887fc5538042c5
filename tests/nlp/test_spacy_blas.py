"""Which BLAS spaCy's layers multiply with (nlp/spacy_pipeline.py `load_package`): numpy's
for the topic-term pipeline, which tags thousands of documents in batches, and BLIS for
the per-message pipeline unless `InspectionConfig.spacy_blas` says otherwise; both give
the same annotations."""

from __future__ import annotations

from spacy.language import Language

from nlp.config import InspectionConfig
from nlp.inspection import build_inspector
from nlp.spacy_pipeline import TERM_UNUSED_COMPONENTS, load_package, load_pipeline, load_term_pipeline
from tests.nlp.test_attribute_rules import _texts


def blas_of(nlp: Language) -> set[str]:
    """'blis' or 'numpy' for every layer of every trained component."""
    return {
        "blis" if node.ops.use_blis else "numpy"
        for _, component in nlp.pipeline
        if hasattr(getattr(component, "model", None), "walk")
        for node in component.model.walk()
    }


def test_topic_terms_multiply_with_numpy_and_the_message_path_with_blis():
    assert blas_of(load_term_pipeline()) == {"numpy"}
    assert blas_of(load_pipeline()) == {"blis"}


def test_both_backends_give_the_same_tags_and_lemmas():
    texts = _texts()
    numpy_docs = list(load_term_pipeline().pipe(texts))
    blis_docs = list(load_package(TERM_UNUSED_COMPONENTS, blas="blis").pipe(texts))
    assert len(texts) > 300
    for numpy_doc, blis_doc in zip(numpy_docs, blis_docs):
        assert [(t.tag_, t.pos_, t.lemma_) for t in numpy_doc] == [(t.tag_, t.pos_, t.lemma_) for t in blis_doc]


def test_the_inspection_setting_chooses_the_blas_of_the_pipeline_it_and_its_redactor_share():
    for blas in ("numpy", "blis"):
        inspector = build_inspector(InspectionConfig(spacy_blas=blas))
        assert inspector is not None and inspector.redactor is not None
        assert inspector.redactor.nlp is inspector.nlp and blas_of(inspector.nlp) == {blas}
