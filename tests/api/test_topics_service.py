"""Topics through the service and the CLI: analyses carry topics when a topic model is
configured and none (without error) when not; `convintel topics fit` and `trends`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from nlp.analyzer import Analyzer
from nlp.schemas import Transcript
from nlp.topics import TopicFitConfig, fit_topics, load_topic_model
from service.api.app import create_app
from service.cli import app as cli
from service.runtime import load_analyzer
from tests.conftest import FIXTURES

PLANTED = FIXTURES / "topics" / "planted.jsonl"
runner = CliRunner()


@pytest.fixture(scope="module")
def topic_model_dir(analyzer, tmp_path_factory):
    rows = [json.loads(line) for line in PLANTED.read_text().splitlines()]
    texts = [r["text"] for r in rows]
    result = fit_topics(
        texts, analyzer.encode(texts).embeddings, TopicFitConfig(min_cluster_size=10, cluster_selection="eom")
    )
    return result.model.save(tmp_path_factory.mktemp("topics") / "model")


@pytest.fixture
def topic_client(settings, analyzer, topic_model_dir):
    with_topics = Analyzer(
        analyzer.encoder, analyzer.bundle, analyzer.policy, analyzer.inspector, topics=load_topic_model(topic_model_dir)
    )
    with TestClient(create_app(settings, with_topics)) as test_client:
        yield test_client


TRANSCRIPT = {
    "conversation_id": "t-1",
    "channel": "email",
    "messages": [
        {"id": "c1", "role": "customer", "text": "I returned my coat a month ago and the refund never came"},
        {"id": "a1", "role": "agent", "text": "Sorry about that, let me check the refund for you."},
        {"id": "c2", "role": "customer", "text": "Please hurry, I still have not got my money back for the return"},
    ],
}


def test_analysis_carries_topics_when_configured(topic_client):
    response = topic_client.post("/v1/analyze", json=TRANSCRIPT)
    assert response.status_code == 200, response.text
    body = response.json()
    customer = [m for m in body["messages"] if m["role"] == "customer"]
    assert all(len(m["topics"]) == 1 for m in customer)
    topic = customer[0]["topics"][0]
    assert "refund" in topic["name"] and 0 < topic["confidence"] <= 1 and topic["similarity"] >= 0.4
    assert next(m for m in body["messages"] if m["role"] == "agent")["topics"] == []
    conversation_topics = body["conversation"]["topics"]
    assert conversation_topics[0]["id"] == topic["id"] and conversation_topics[0]["message_ids"] == ["c1", "c2"]
    assert f"topic:{topic['name'].replace(', ', '-')}" in body["conversation"]["tags"]


def test_topics_reuse_the_one_encoder_pass(analyzer, topic_model_dir, monkeypatch):
    with_topics = Analyzer(analyzer.encoder, analyzer.bundle, analyzer.policy, topics=load_topic_model(topic_model_dir))
    calls: list[int] = []
    encode = analyzer.encoder.encode
    monkeypatch.setattr(analyzer.encoder, "encode", lambda texts: calls.append(len(texts)) or encode(texts))
    result = with_topics.analyze(Transcript.model_validate(TRANSCRIPT))
    assert calls == [3]  # one batch, one pass per message: topics read the heads' sentence embedding
    assert result.messages[0].topics and result.conversation.topics


def test_webhook_path_assigns_topics_from_its_one_encoder_pass(topic_client):
    first = topic_client.post(
        "/v1/conversations/w-1/messages",
        json={"id": "m1", "role": "customer", "text": "My parcel never arrived, the tracking is stuck"},
    )
    assert first.status_code == 200, first.text
    message_topics = first.json()["message"]["topics"]
    assert len(message_topics) == 1 and "delivery" in message_topics[0]["name"]
    stored = topic_client.get("/v1/conversations/w-1").json()
    assert stored["conversation"]["topics"][0]["id"] == message_topics[0]["id"]


def test_topics_endpoint_lists_the_topics(topic_client):
    response = topic_client.get("/v1/topics")
    assert response.status_code == 200
    body = response.json()
    assert len(body["topics"]) == 4 and body["trained_on"]["documents"] == 120
    for topic in body["topics"]:
        assert topic["size"] >= 27 and topic["examples"] and topic["keywords"] and topic["tag"]


def test_without_a_topic_model_there_are_no_topics_and_no_error(client):
    response = client.post("/v1/analyze", json=TRANSCRIPT)
    assert response.status_code == 200
    body = response.json()
    assert all(m["topics"] == [] for m in body["messages"]) and body["conversation"]["topics"] == []
    assert not any(tag.startswith("topic:") for tag in body["conversation"]["tags"])
    listing = client.get("/v1/topics")
    assert listing.status_code == 404
    assert listing.json()["error"]["code"] == "no_topic_model"


def test_setting_loads_the_topic_model(settings, topic_model_dir):
    configured = settings.model_copy(update={"topic_model": topic_model_dir, "detect_cues": False, "redact_pii": False})
    loaded = load_analyzer(configured)
    assert loaded.topics is not None and len(loaded.topics.topics) == 4
    broken = settings.model_copy(update={"topic_model": topic_model_dir.parent / "nope"})
    with pytest.raises(Exception, match="does not exist"):
        load_analyzer(broken)


def test_cli_fit_then_trends(tmp_path, analyzer, topic_model_dir):
    model_dir = tmp_path / "model"
    fit = runner.invoke(
        cli, ["topics", "fit", str(PLANTED), "-o", str(model_dir), "--min-cluster-size", "10", "--selection", "eom"]
    )
    assert fit.exit_code == 0, fit.output
    assert "4 topics" in fit.output and load_topic_model(model_dir).manifest.trained_on["documents"] == 120

    # Scored conversations: two weeks, the refund topic grows in the second.
    with_topics = Analyzer(analyzer.encoder, analyzer.bundle, analyzer.policy, topics=load_topic_model(model_dir))
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)  # a Monday
    plan = (
        [("My parcel is late again", 0)] * 3
        + [("I want a refund for the shoes I returned", 0)] * 2
        + [("Where is my refund for the returned jacket?", 7)] * 8
        + [("The parcel has not arrived", 7)] * 3
    )
    lines = []
    for index, (text, day) in enumerate(plan):
        analysis = with_topics.analyze(
            Transcript(messages=[{"role": "customer", "text": text}], channel="chat" if index % 2 else "email")
        )
        record = json.loads(analysis.model_dump_json())
        record["timestamp"] = (start + timedelta(days=day, hours=index)).isoformat()
        lines.append(json.dumps(record))
    lines.append("not json")
    scored = tmp_path / "scored.jsonl"
    scored.write_text("\n".join(lines) + "\n")
    trends = runner.invoke(cli, ["topics", "trends", str(scored), "-o", str(tmp_path / "trends"), "--min-volume", "5"])
    assert trends.exit_code == 0, trends.output
    report = json.loads((tmp_path / "trends" / "trends.json").read_text())
    assert report["periods"] == ["2026-03-02", "2026-03-09"] and report["skipped"] == 1
    by_name = {t["name"]: t for t in report["topics"]}
    refund = next(t for name, t in by_name.items() if "refund" in name)
    parcel = next(t for name, t in by_name.items() if "delivery" in name or "parcel" in name)
    assert refund["volume"] == [2, 8] and refund["emerging"] and report["emerging"] == [refund["id"]]
    assert parcel["volume"] == [3, 3] and not parcel["emerging"]
    assert set(refund["channels"]) == {"chat", "email"} and refund["avg_sentiment"] is not None
    html = (tmp_path / "trends" / "report.html").read_text()
    assert "<svg" in html and "<script" not in html and refund["name"] in html
    assert (tmp_path / "trends" / "volume.csv").read_text().startswith("period_start,topic_id,topic,channel,messages")


def test_trends_read_scored_output_in_every_format(tmp_path, settings, analyzer, topic_model_dir):
    """`convintel topics trends` reads what `convintel score` writes, in every file type
    (CSV and Parquet rows are flat), and a JSON array of the same records."""
    from service.batch.engines import LocalEngine
    from service.batch.runner import ScoreJob, run_score
    from service.batch.trends import read_scored

    with_topics = Analyzer(analyzer.encoder, analyzer.bundle, analyzer.policy, topics=load_topic_model(topic_model_dir))
    for name in ("s.jsonl", "s.csv", "s.parquet"):
        run_score(
            ScoreJob(input=FIXTURES / "archive" / "messages.csv", output=tmp_path / name, progress=False),
            settings,
            lambda: LocalEngine(with_topics),
        )
    records = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    (tmp_path / "s.json").write_text(json.dumps(records))
    read = {name: read_scored(tmp_path / name) for name in ("s.jsonl", "s.json", "s.csv", "s.parquet")}
    reference = read["s.jsonl"]
    # demo-1042 has times (3 customer messages); the other two have none, so theirs are skipped
    assert len(reference.mentions) == 3 and reference.skipped == 3
    assert {m.when.isoformat() for m in reference.mentions} >= {"2026-03-04T10:15:00+00:00"}
    for name, scored in read.items():
        assert (scored.mentions, scored.skipped, scored.with_topics) == (
            reference.mentions,
            reference.skipped,
            reference.with_topics,
        ), name


def test_cli_errors_are_clear(tmp_path):
    missing = runner.invoke(cli, ["topics", "fit", str(tmp_path / "none.jsonl"), "-o", str(tmp_path / "m")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    bad_type = tmp_path / "notes.txt"
    bad_type.write_text("hello")
    unsupported = runner.invoke(cli, ["topics", "fit", str(bad_type), "-o", str(tmp_path / "m")])
    assert unsupported.exit_code == 2 and "unsupported file type" in unsupported.output
    no_topics = tmp_path / "scored.jsonl"
    no_topics.write_text(
        json.dumps(
            {
                "timestamp": "2026-03-02T10:00:00",
                "messages": [{"id": "m1", "role": "customer", "sentiment": {"score": 0.1}, "topics": []}],
            }
        )
        + "\n"
    )
    result = runner.invoke(cli, ["topics", "trends", str(no_topics), "-o", str(tmp_path / "t")])
    assert result.exit_code == 2 and "no customer messages with topics" in result.output


def test_serve_refuses_a_broken_topic_model(tmp_path, monkeypatch):
    from service.settings import get_settings

    monkeypatch.setenv("CONVINTEL_TOPIC_MODEL", str(tmp_path / "missing"))
    get_settings.cache_clear()
    try:
        result = runner.invoke(cli, ["serve"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2 and "topic model folder" in result.output and "does not exist" in result.output
