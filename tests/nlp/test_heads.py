"""The stacked heads the analyzer runs give each head's own probabilities."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nlp.bundle import load_bundle
from nlp.heads import HeadSpec, HeadStack, TaskHead
from nlp.token_states import TokenStates
from tests.conftest import BUNDLE


def test_stacked_shipped_heads_match_each_head(analyzer):
    bundle = load_bundle(BUNDLE)
    heads = [bundle.heads[task] for task in ("sentiment", "emotions", "urgency")]
    texts = ["My card was charged twice and nobody answers.", "thanks, all sorted", "URGENT: our whole site is down"]
    encoded = analyzer.encode(texts, [True] * len(texts))
    for count in (1, len(texts)):
        rows = encoded.features[:count]
        tokens = TokenStates.from_rows(encoded.tokens[:count])  # the emotions head attends over them
        stacked = HeadStack(heads).predict_proba(rows, tokens)
        for head, probabilities in zip(heads, stacked):
            np.testing.assert_allclose(probabilities, head.predict_proba(rows, tokens), atol=1e-6)


def test_temperature_and_norm_affine_are_folded_in():
    torch.manual_seed(0)
    heads = [
        TaskHead(
            HeadSpec(task="a", kind="multiclass", labels=["x", "y", "z"], input_dim=8, hidden_dim=4, temperature=2.5)
        ),
        TaskHead(HeadSpec(task="b", kind="multilabel", labels=["p", "q"], input_dim=8, hidden_dim=6, temperature=0.7)),
    ]
    for head in heads:  # a LayerNorm that is not the identity
        with torch.no_grad():
            head.network.norm.weight.uniform_(0.5, 2.0)
            head.network.norm.bias.uniform_(-1.0, 1.0)
    features = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    stacked = HeadStack(heads).predict_proba(features)
    for head, probabilities in zip(heads, stacked):
        np.testing.assert_allclose(probabilities, head.predict_proba(features), atol=1e-6)
    assert stacked[0].sum(axis=1) == pytest.approx(np.ones(5))


def test_heads_over_different_features_cannot_stack():
    heads = [
        TaskHead(HeadSpec(task=t, kind="multiclass", labels=["x", "y"], input_dim=dim, hidden_dim=4))
        for t, dim in (("a", 8), ("b", 16))
    ]
    with pytest.raises(ValueError, match="same features"):
        HeadStack(heads)
