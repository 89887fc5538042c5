"""The training feature pass: a set whose head attends is encoded once for its features and
its token vectors, and cached texts are not encoded again."""

from __future__ import annotations

import numpy as np

from training.datasets import LabelledSet
from training.features import FeatureCache, encode_sets


class CountingEncoder:
    """The real encoder, recording every text each call encodes and whether it kept tokens."""

    def __init__(self, encoder) -> None:
        self._encoder = encoder
        self.calls: list[tuple[list[str], bool]] = []

    def __getattr__(self, name):
        return getattr(self._encoder, name)

    def encode(self, texts, keep_tokens=None):
        self.calls.append((list(texts), bool(keep_tokens) and all(keep_tokens)))
        return self._encoder.encode(texts, keep_tokens)


def labelled(name: str, texts: list[str]) -> LabelledSet:
    return LabelledSet(name, texts, np.zeros((len(texts), 2), np.float32), ["a", "b"], "multilabel")


ATTENDING = labelled("emotions:train", ["I am so confused by this bill.", "Thanks, that fixed it!"])
POOLED = labelled("sentiment:train", ["Thanks, that fixed it!", "Where is my parcel?"])


def test_a_set_that_needs_token_vectors_is_encoded_once_for_both(analyzer, tmp_path):
    encoder = CountingEncoder(analyzer.encoder)
    features, tokens = encode_sets(FeatureCache(tmp_path, encoder), [ATTENDING, POOLED], token_sets={ATTENDING.name})

    encoded = [text for texts, _ in encoder.calls for text in texts]
    assert sorted(encoded) == sorted(set(ATTENDING.texts) | set(POOLED.texts)), "every distinct text once"
    assert [keep for _, keep in encoder.calls] == [True, False]
    assert set(tokens) == {ATTENDING.name}
    plain = analyzer.encoder.encode(ATTENDING.texts + POOLED.texts)
    np.testing.assert_allclose(features[ATTENDING.name], plain.features[:2], atol=1e-5)
    np.testing.assert_allclose(features[POOLED.name], plain.features[2:], atol=1e-5)
    assert [len(tokens[ATTENDING.name].row(i)) for i in range(2)] == [
        len(row) for row in analyzer.encoder.encode(ATTENDING.texts, [True, True]).tokens
    ]

    # A second run reads both caches from disk: nothing is encoded.
    again = CountingEncoder(analyzer.encoder)
    features_again, tokens_again = encode_sets(
        FeatureCache(tmp_path, again), [ATTENDING, POOLED], token_sets={ATTENDING.name}
    )
    assert again.calls == []
    np.testing.assert_array_equal(features_again[POOLED.name], features[POOLED.name])
    np.testing.assert_array_equal(tokens_again[ATTENDING.name].vectors, tokens[ATTENDING.name].vectors)


def test_features_added_by_a_token_pass_are_persisted(analyzer, tmp_path):
    cache = FeatureCache(tmp_path, analyzer.encoder)
    rows = analyzer.encoder.encode(POOLED.texts).features
    cache.add(POOLED.texts, rows)
    counting = CountingEncoder(analyzer.encoder)
    reloaded = FeatureCache(tmp_path, counting)
    np.testing.assert_array_equal(reloaded.features(POOLED.texts), rows)
    assert counting.calls == []


def test_a_cache_in_memory_serves_a_run_s_later_steps_without_encoding_again(analyzer):
    # The fine-tune's head refits and its reports share one cache without a folder.
    encoder = CountingEncoder(analyzer.encoder)
    cache = FeatureCache(None, encoder)
    first = cache.token_states(ATTENDING)
    _, tokens = encode_sets(cache, [ATTENDING, POOLED], token_sets={ATTENDING.name})
    assert tokens[ATTENDING.name] is first
    encoded = [text for texts, _ in encoder.calls for text in texts]
    assert sorted(encoded) == sorted(set(ATTENDING.texts) | set(POOLED.texts))
