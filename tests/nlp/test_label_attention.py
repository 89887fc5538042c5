"""Heads that attend over token vectors (the emotions head's label-wise attention): the
ragged token store, the stacked heads, the bundle round trip and what the attention learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nlp import heads as heads_module
from nlp.bundle import EncoderManifest, load_bundle, save_bundle
from nlp.heads import HeadSpec, HeadStack, TaskHead
from nlp.token_states import TokenStates
from training.head_trainer import HeadTrainingConfig, train_head

DIM = 8


def random_rows(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(int(rng.integers(2, 10)), DIM)).astype(np.float32) for _ in range(n)]


def pooled(rows: list[np.ndarray]) -> np.ndarray:
    """The encoder's feature layout: normalised mean, then max, of each row's tokens."""
    means = np.stack([r.mean(axis=0) for r in rows])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    return np.concatenate([means, np.stack([r.max(axis=0) for r in rows])], axis=1).astype(np.float32)


def attention_head(task: str = "emotions", temperature: float = 1.0) -> TaskHead:
    torch.manual_seed(0)
    spec = HeadSpec(
        task=task,
        kind="multilabel",
        labels=["a", "b", "c"],
        input_dim=2 * DIM,
        hidden_dim=6,
        temperature=temperature,
        attention_dim=4,
    )
    head = TaskHead(spec)
    with torch.no_grad():  # the label weights start at zero; give the attention a say
        head.network.attention.label_weight.normal_()
    return head


def test_token_states_keep_each_row_and_pad_per_batch(tmp_path):
    rows = random_rows(5)
    states = TokenStates.from_rows(rows)
    assert len(states) == 5 and states.dim == DIM
    for i, row in enumerate(rows):
        np.testing.assert_array_equal(states.row(i), row)
    tokens, mask = states.padded([3, 1])
    longest = max(len(rows[3]), len(rows[1]))
    assert tokens.shape == (2, longest, DIM)
    assert mask.sum(dim=1).tolist() == [len(rows[3]), len(rows[1])]
    np.testing.assert_array_equal(tokens[1, : len(rows[1])].numpy(), rows[1])
    assert not tokens[1, len(rows[1]) :].any(), "padding is zeros"

    states.save(tmp_path / "states.npz")
    again = TokenStates.load(tmp_path / "states.npz")
    np.testing.assert_array_equal(again.vectors, states.vectors)
    np.testing.assert_array_equal(again.offsets, states.offsets)
    with pytest.raises(ValueError, match="special tokens"):
        TokenStates.from_rows([rows[0], np.zeros((0, DIM), np.float32)])


@pytest.mark.parametrize("chunk", [64, 3])
def test_stacked_heads_add_the_attention_like_the_head_itself(monkeypatch, chunk):
    monkeypatch.setattr(heads_module, "ATTENTION_CHUNK", chunk)  # 3: rows padded a few at a time
    rows = random_rows(7)
    features, states = pooled(rows), TokenStates.from_rows(rows)
    plain = TaskHead(HeadSpec(task="sentiment", kind="multiclass", labels=["x", "y"], input_dim=2 * DIM, hidden_dim=5))
    attending = attention_head(temperature=0.6)
    stack = HeadStack([plain, attending])
    assert stack.reads_tokens and attending.reads_tokens and not plain.reads_tokens
    for index in ([0], list(range(7))):
        chosen = TokenStates.from_rows([rows[i] for i in index])
        first, second = stack.predict_proba(features[index], chosen)
        np.testing.assert_allclose(first, plain.predict_proba(features[index]), atol=1e-6)
        np.testing.assert_allclose(second, attending.predict_proba(features[index], chosen), atol=1e-6)
    # The attention reads the tokens: the same pooled features with other tokens score otherwise.
    shuffled = TokenStates.from_rows([r[::-1] * 2.0 for r in rows])
    assert not np.allclose(attending.predict_proba(features, shuffled), attending.predict_proba(features, states))
    with pytest.raises(ValueError, match="token vectors"):
        stack.predict_proba(features)
    with pytest.raises(ValueError, match="token vectors"):
        attending.predict_proba(features, TokenStates.from_rows(rows[:3]))


def test_an_attending_head_survives_the_bundle_round_trip(tmp_path):
    rows = random_rows(6)
    features, states = pooled(rows), TokenStates.from_rows(rows)
    heads = {
        task: TaskHead(HeadSpec(task=task, kind="multiclass", labels=labels, input_dim=2 * DIM, hidden_dim=5))
        for task, labels in (("sentiment", ["negative", "neutral", "positive"]), ("urgency", ["low", "high"]))
    }
    heads["emotions"] = attention_head()
    encoder = EncoderManifest(name="e", package="p", package_version="0", max_seq_length=16, features="mean_max")
    save_bundle(
        tmp_path, name="b", version="1", encoder=encoder, heads=heads, task_data={}, training={}, description="",
        model_card="",
    )  # fmt: skip
    loaded = load_bundle(tmp_path).heads
    assert loaded["emotions"].spec.attention_dim == 4 and loaded["emotions"].reads_tokens
    assert not loaded["sentiment"].reads_tokens
    np.testing.assert_allclose(
        loaded["emotions"].predict_proba(features, states), heads["emotions"].predict_proba(features, states), atol=1e-6
    )


def test_label_attention_learns_what_pooling_cannot_see():
    """A label that needs two properties in the same token: mean and max pooling lose which
    token had which; a per-label attention query finds that token."""
    rng = np.random.default_rng(3)
    rows, labels = [], []
    for _ in range(1200):
        row = rng.normal(scale=0.5, size=(int(rng.integers(4, 9)), DIM)).astype(np.float32)
        kind = rng.integers(3)
        if kind == 0:  # one token high on dims 0 and 1: positive
            row[rng.integers(len(row)), :2] = 2.5
        elif kind == 1:  # dims 0 and 1 high on different tokens: negative, same max pooling
            first, second = rng.choice(len(row), size=2, replace=False)
            row[first, 0], row[second, 1] = 2.5, 2.5
        rows.append(row)
        labels.append([float(kind == 0)])
    y = np.array(labels)
    features, train, dev = pooled(rows), slice(0, 900), slice(900, None)
    settings = dict(hidden_dim=32, max_epochs=40, patience=40, batch_size=64, learning_rate=3e-3, seed=5)

    def dev_f1(head: TaskHead, tokens: TokenStates | None) -> float:
        predicted = head.predict_proba(features[dev], tokens)[:, 0] >= head.spec.thresholds[0]
        truth = y[dev, 0].astype(bool)
        return 2 * (predicted & truth).sum() / (predicted.sum() + truth.sum())

    states = TokenStates.from_rows(rows)
    train_tokens, dev_tokens = TokenStates.from_rows(rows[train]), TokenStates.from_rows(rows[dev])
    plain = train_head(
        "emotions", "multilabel", ["p"], features[train], y[train], features[dev], y[dev],
        HeadTrainingConfig(**settings),
    )  # fmt: skip
    attending = train_head(
        "emotions", "multilabel", ["p"], features[train], y[train], features[dev], y[dev],
        HeadTrainingConfig(**settings, token_attention={"emotions": 16}), train_tokens, dev_tokens,
    )  # fmt: skip
    assert attending.spec.attention_dim == 16 and len(states) == 1200
    assert dev_f1(attending, dev_tokens) > 0.9
    assert dev_f1(attending, dev_tokens) > dev_f1(plain, None) + 0.1


def test_attention_is_for_multilabel_heads_and_needs_tokens():
    features, y = pooled(random_rows(10)), np.zeros(10, dtype=np.int64)
    config = HeadTrainingConfig(hidden_dim=4, max_epochs=1, token_attention={"urgency": 4, "emotions": 4})
    with pytest.raises(ValueError, match="multi-label"):
        train_head("urgency", "multiclass", ["a", "b"], features, y, features, y, config)
    with pytest.raises(ValueError, match="token vectors"):
        train_head("emotions", "multilabel", ["a"], features, y[:, None], features, y[:, None], config)
