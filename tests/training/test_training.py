"""A tiny training run on fixtures (seconds), data validation, and determinism."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from nlp.analyzer import Analyzer, SupportEmotionMap
from nlp.bundle import load_bundle
from nlp.heads import TaskHead
from nlp.token_states import TokenStates
from tests.conftest import FIXTURES
from training.datasets import DataError, interactions_for_task, load_goemotions, read_interactions
from training.evaluate import evaluate_bundle
from training.head_trainer import HeadTrainingConfig
from training.recipes import TaskData
from training.train import train_bundle

TINY = HeadTrainingConfig(hidden_dim=32, max_epochs=30, patience=30, batch_size=8, learning_rate=5e-3, seed=7)


def tiny_recipe() -> dict[str, TaskData]:
    rows, problems = read_interactions([FIXTURES / "labelled" / "interactions.jsonl"])
    assert not problems
    recipe = {}
    for task in ("sentiment", "urgency"):
        train = interactions_for_task(rows, task, "train", "fixture")
        heldout = interactions_for_task(rows, task, "heldout", "fixture")
        recipe[task] = TaskData(train=train, dev=heldout, reports=[heldout])
    emotions_train = load_goemotions(FIXTURES, "train")
    emotions_dev = load_goemotions(FIXTURES, "dev")
    recipe["emotions"] = TaskData(train=emotions_train, dev=emotions_dev, reports=[emotions_dev])
    return recipe


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory, analyzer):
    out = tmp_path_factory.mktemp("bundle") / "tiny"
    manifest, metrics = train_bundle(
        tiny_recipe(),
        out,
        name="tiny",
        version="0.0.1",
        config=TINY,
        cache_dir=None,
        encoder=analyzer.encoder,
        recipe_name="fixtures",
    )
    return out, manifest, metrics


def test_tiny_training_writes_a_loadable_bundle(tiny_bundle, analyzer):
    path, manifest, metrics = tiny_bundle
    assert {p.name for p in path.iterdir()} == {"manifest.json", "heads.safetensors", "README.md"}
    bundle = load_bundle(path)
    assert bundle.manifest.tasks["urgency"].training_data == ["fixture/urgency:train (18)"]
    assert set(metrics) == {"sentiment", "emotions", "urgency"}
    assert "goemotions/ekman:dev" in metrics["emotions"]
    tiny_analyzer = Analyzer(analyzer.encoder, bundle)
    result = tiny_analyzer.analyze_messages(
        [type("M", (), {"text": "Thanks so much, great help!", "role": "customer"})()], ["x"]
    )[0]
    assert result.model_dump()["sentiment"]["label"] in {"negative", "neutral", "positive"}


def test_an_emotions_head_with_label_attention_trains_reports_serves_and_evaluates(tmp_path, analyzer):
    recipe = {task: data for task, data in tiny_recipe().items()}
    config = dataclasses.replace(TINY, token_attention={"emotions": 16})
    out = tmp_path / "attending"
    cache = tmp_path / "cache"
    _, metrics = train_bundle(
        recipe, out, name="tiny", version="0.0.2", config=config, cache_dir=cache, encoder=analyzer.encoder
    )
    assert list(cache.glob("*/tokens/*.npz")), "the emotions sets' token vectors are cached"
    bundle = load_bundle(out)
    assert bundle.manifest.tasks["emotions"].attention_dim == 16
    assert bundle.heads["emotions"].reads_tokens and not bundle.heads["sentiment"].reads_tokens
    assert "goemotions/ekman:dev" in metrics["emotions"]

    tiny_analyzer = Analyzer(analyzer.encoder, bundle)
    texts = ["I am so confused, which fee is this?", "Thank you, that is wonderful news!"]
    message = type("M", (), {"role": "customer"})
    messages = [type("M", (message,), {"text": text})() for text in texts]
    assert tiny_analyzer.token_rows(messages) == [True, True]
    served = tiny_analyzer.analyze_messages(messages, ["a", "b"])
    encoded = analyzer.encoder.encode(texts, [True, True])
    expected = bundle.heads["emotions"].predict_proba(encoded.features, TokenStates.from_rows(encoded.tokens))
    support = SupportEmotionMap(bundle.heads["emotions"].spec.labels, bundle.heads["emotions"].spec.thresholds)
    scores, _ = support.project(expected)
    for analysis, row in zip(served, scores):
        top = analysis.emotions[0]
        assert top.score == pytest.approx(float(row[support.labels.index(top.label)]), abs=1e-3)

    result = evaluate_bundle(out, ["shared:goemotions/original:dev"], data_root=FIXTURES, encoder=analyzer.encoder)
    (evaluation,) = result.evaluations
    assert evaluation.metrics["macro_f1"] == pytest.approx(metrics["emotions"]["goemotions/original:dev"]["macro_f1"])
    assert set(evaluation.derived) == {"ekman", "group", "support"}


def test_trained_heads_differ_from_untrained_ones_and_fit_their_data(tiny_bundle, analyzer):
    path, _, _ = tiny_bundle
    bundle = load_bundle(path)
    rows, _ = read_interactions([FIXTURES / "labelled" / "interactions.jsonl"])
    train = interactions_for_task(rows, "urgency", "train", "fixture")
    features = analyzer.encoder.encode(train.texts).features
    trained = bundle.heads["urgency"]
    untrained = TaskHead(trained.spec)
    assert not np.allclose(trained.predict_proba(features), untrained.predict_proba(features), atol=1e-3)
    accuracy = (trained.predict_proba(features).argmax(1) == train.labels).mean()
    assert accuracy > 0.8, "a head trained on 18 examples fits them"


def test_training_is_deterministic_for_a_seed(tmp_path, analyzer):
    recipe = tiny_recipe()
    recipe = {"sentiment": recipe["sentiment"], "urgency": recipe["urgency"], "emotions": recipe["emotions"]}
    config = HeadTrainingConfig(hidden_dim=16, max_epochs=3, patience=3, batch_size=8, seed=3)
    for name in ("a", "b"):
        train_bundle(
            recipe,
            tmp_path / name,
            name=name,
            version="0",
            config=config,
            cache_dir=tmp_path / "cache",
            encoder=analyzer.encoder,
        )
    a, b = (tmp_path / "a" / "heads.safetensors").read_bytes(), (tmp_path / "b" / "heads.safetensors").read_bytes()
    from safetensors.torch import load

    ta, tb = load(a), load(b)
    assert ta.keys() == tb.keys() and all(np.array_equal(ta[k].numpy(), tb[k].numpy()) for k in ta)
    assert list((tmp_path / "cache").rglob("*.npz")), "features were cached"


def test_invalid_rows_name_file_line_and_field(tmp_path: Path):
    path = tmp_path / "mine.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps({"text": "fine", "urgency": "low"}),
                json.dumps({"text": "bad label", "urgency": "extreme"}),
                "{not json",
                json.dumps({"urgency": "low"}),
            ]
        )
        + "\n"
    )
    with pytest.raises(DataError, match=r"mine.jsonl:2: field 'urgency': 'extreme' is not one of"):
        read_interactions([path])
    rows, problems = read_interactions([path], skip_invalid=True)
    assert len(rows) == 1 and len(problems) == 3
    assert "mine.jsonl:3: not valid JSON" in problems[1] and "mine.jsonl:4: field 'text'" in problems[2]


def test_shipped_urgency_data_is_valid_and_split():
    files = sorted((FIXTURES.parent / "data" / "urgency").glob("messages_*.jsonl"))
    rows, problems = read_interactions(files)
    assert not problems and len(rows) >= 400
    heldout = [r for r in rows if r.split == "heldout"]
    assert 0.15 < len(heldout) / len(rows) < 0.35
    assert len({r.text for r in rows}) == len(rows), "no duplicated texts"


def test_default_recipe_trains_sentiment_on_tweeteval_and_stops_on_its_val():
    """The shipped recipe, read from fixture copies of the public sets' layout: TweetEval
    train is trained on, its val drives early stopping and is reported; test stays out."""
    from training.datasets import load_tweeteval_sentiment
    from training.recipes import default_recipe

    recipe = default_recipe(FIXTURES)
    train_tweets = load_tweeteval_sentiment(FIXTURES, "train")
    val_tweets = load_tweeteval_sentiment(FIXTURES, "val")
    sentiment = recipe["sentiment"]
    assert set(train_tweets.texts) <= set(sentiment.train.texts)
    assert not set(val_tweets.texts) & set(sentiment.train.texts)
    assert set(val_tweets.texts) <= set(sentiment.dev.texts)
    assert "tweeteval/sentiment:val" in [report.name for report in sentiment.reports]
    assert recipe["emotions"].train.name == "goemotions/original:train"
    with pytest.raises(ValueError, match="withheld"):
        load_tweeteval_sentiment(FIXTURES, "test")
