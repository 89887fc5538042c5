"""Topics through the service and the CLI: analyses carry topics when a topic model is
configured and none (without error) when not; `convintel topics fit` and `trends`."""

from __future__ import annotations

import json
import shutil
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
    monkeypatch.setattr(
        analyzer.encoder, "encode", lambda texts, keep=None: calls.append(len(texts)) or encode(texts, keep)
    )
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
    # Parent topics: from the scored messages' topics, added up per parent.
    assert refund["parent"] is not None and refund["parent_name"] and "Parent topics" in html
    parents = {p["id"]: p for p in report["parents"]}
    assert refund["id"] in parents[refund["parent"]]["topics"]
    assert sum(p["messages"] for p in report["parents"]) == sum(t["messages"] for t in report["topics"])
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


# Curation through the API and the CLI.


def model_copy_dir(topic_model_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(topic_model_dir, folder)
    return folder


def files_of(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.fixture
def editable(settings, analyzer, topic_model_dir, tmp_path):
    """An app serving a copy of the topic model, with CONVINTEL_TOPIC_MODEL pointing at it."""
    folder = model_copy_dir(topic_model_dir, tmp_path)
    with_topics = Analyzer(analyzer.encoder, analyzer.bundle, analyzer.policy, topics=load_topic_model(folder))
    configured = settings.model_copy(update={"topic_model": folder})
    with TestClient(create_app(configured, with_topics)) as test_client:
        yield test_client, folder


def test_api_edits_apply_to_the_loaded_model_and_are_saved(editable):
    client, folder = editable
    topics = client.get("/v1/topics").json()
    assert topics["parents"] and all(t["label"] and t["parent"] is not None for t in topics["topics"])
    refund = next(t for t in topics["topics"] if "refund" in t["keywords"][:3])
    renamed = client.patch(f"/v1/topics/{refund['id']}", json={"name": "Refunds"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["saved"] and any(t["name"] == "Refunds" for t in renamed.json()["topics"])
    assert any(t.name == "Refunds" for t in load_topic_model(folder).topics)  # on disk too
    analysis = client.post("/v1/analyze", json=TRANSCRIPT).json()
    score = analysis["messages"][0]["topics"][0]
    assert score["name"] == "Refunds" and score["parent"] is not None and score["parent_name"]

    others = [t["id"] for t in topics["topics"] if t["id"] != refund["id"]]
    merged = client.post(f"/v1/topics/{refund['id']}/merge", json={"topics": [others[0]], "name": "Money and more"})
    assert merged.status_code == 200, merged.text
    assert len(merged.json()["topics"]) == 3 and merged.json()["retired"][0]["reason"] == "merged"
    deleted = client.delete(f"/v1/topics/{others[1]}")
    assert deleted.status_code == 200 and len(deleted.json()["topics"]) == 2
    assert [e["op"] for e in load_topic_model(folder).manifest.edits] == ["rename", "merge", "delete"]


def test_api_split_reclusters_the_sent_messages(editable):
    client, folder = editable
    rows = [json.loads(line) for line in PLANTED.read_text().splitlines()]
    delivery = next(t for t in client.get("/v1/topics").json()["topics"] if "parcel" in t["keywords"][:3])
    split = client.post(f"/v1/topics/{delivery['id']}/split", json={"parts": 2, "texts": [r["text"] for r in rows]})
    assert split.status_code == 200, split.text
    body = split.json()
    parts = body["edits"][-1]["into"]
    assert len(parts) == 2 and sum(t["size"] for t in body["topics"] if t["id"] in parts) == delivery["size"]
    assert delivery["id"] not in {t["id"] for t in body["topics"]}


def test_bad_api_edits_are_4xx_and_change_nothing(editable):
    client, folder = editable
    before_files, before = files_of(folder), client.get("/v1/topics").json()
    first, second = (t["id"] for t in before["topics"][:2])
    cases = [
        ("patch", "/v1/topics/999", {"name": "x"}, 404, "unknown_topic"),
        ("patch", f"/v1/topics/{first}", {"name": "   "}, 422, "validation_error"),
        ("patch", f"/v1/topics/{first}", {"name": before["topics"][1]["name"]}, 422, "invalid_topic_edit"),
        ("post", f"/v1/topics/{first}/merge", {"topics": [first]}, 422, "invalid_topic_edit"),
        ("post", f"/v1/topics/{first}/merge", {"topics": []}, 422, "validation_error"),
        ("post", "/v1/topics/999/merge", {"topics": [first]}, 404, "unknown_topic"),
        ("post", f"/v1/topics/{first}/split", {"parts": 2, "texts": ["hello", "hi"]}, 422, "invalid_topic_edit"),
        ("post", f"/v1/topics/{second}/split", {"parts": 1, "texts": ["a", "b"]}, 422, "validation_error"),
        ("delete", "/v1/topics/999", None, 404, "unknown_topic"),
    ]
    for method, path, body, status, code in cases:
        response = client.request(method.upper(), path, json=body)
        assert response.status_code == status, (path, body, response.text)
        error = response.json()["error"]
        assert error["code"] == code and error["message"], (path, body, error)
    itself = client.post(f"/v1/topics/{first}/merge", json={"topics": [first]}).json()["error"]["message"]
    assert "with itself" in itself
    assert client.get("/v1/topics").json() == before and files_of(folder) == before_files


def test_topic_edits_need_a_key_with_the_admin_scope(settings, analyzer, topic_model_dir, tmp_path):
    with_topics = Analyzer(analyzer.encoder, analyzer.bundle, analyzer.policy, topics=load_topic_model(topic_model_dir))
    keys = tmp_path / "keys.yaml"
    keys.write_text(
        "keys:\n  - name: reader\n    key: reader-key-0123456789\n    scopes: [read, analyze]\n"
        "  - name: admin\n    key: admin-key-0123456789ab\n    scopes: [admin]\n"
    )
    configured = settings.model_copy(update={"api_keys_file": keys})
    with TestClient(create_app(configured, with_topics)) as client:
        topic_id = with_topics.topics.topics[0].id
        assert client.patch(f"/v1/topics/{topic_id}", json={"name": "New"}).status_code == 401
        denied = client.patch(
            f"/v1/topics/{topic_id}", json={"name": "New"}, headers={"X-API-Key": "reader-key-0123456789"}
        )
        assert denied.status_code == 403
        allowed = client.patch(
            f"/v1/topics/{topic_id}", json={"name": "New"}, headers={"X-API-Key": "admin-key-0123456789ab"}
        )
        assert allowed.status_code == 200 and not allowed.json()["saved"]  # no model folder configured


def test_cli_edit_then_refit_with_previous_keeps_the_edit(tmp_path, topic_model_dir):
    folder = model_copy_dir(topic_model_dir, tmp_path)
    model = load_topic_model(folder)
    refund = next(t for t in model.topics if "refund" in t.keywords[:3])
    renamed = runner.invoke(cli, ["topics", "edit", str(folder), "rename", str(refund.id), "Refunds"])
    assert renamed.exit_code == 0, renamed.output
    assert "Refunds" in renamed.output and load_topic_model(folder).manifest.edits[0]["op"] == "rename"
    password = next(t for t in model.topics if "password" in t.keywords[:3])
    split = runner.invoke(
        cli, ["topics", "edit", str(folder), "split", str(password.id), "--source", str(PLANTED), "--parts", "2"]
    )
    assert split.exit_code == 0, split.output
    parts = load_topic_model(folder).manifest.edits[-1]["into"]

    refit_dir = tmp_path / "refit"
    args = ["--min-cluster-size", "10", "--selection", "eom", "--previous", str(folder)]
    refit = runner.invoke(cli, ["topics", "fit", str(PLANTED), "-o", str(refit_dir), *args])
    assert refit.exit_code == 0, refit.output
    assert "curation:" in refit.output
    refitted = load_topic_model(refit_dir)
    by_id = {t.id: t for t in refitted.topics}
    assert by_id[refund.id].name == "Refunds" and set(parts) <= set(by_id) and password.id not in by_id


def test_cli_bad_edits_exit_non_zero_and_change_nothing(tmp_path, topic_model_dir):
    folder = model_copy_dir(topic_model_dir, tmp_path)
    before = files_of(folder)
    first = load_topic_model(folder).topics[0].id
    cases = [
        (["rename", "999", "x"], "no topic with id 999"),
        (["rename", str(first), "  "], "at least 1 character"),
        (["merge", str(first), str(first)], f"cannot merge topic {first} with itself"),
        (["merge", str(first)], "at least 2 items"),
        (["delete", "999"], "no topic with id 999"),
        (["split", "999", "--source", str(PLANTED)], "no topic with id 999"),
    ]
    for args, message in cases:
        result = runner.invoke(cli, ["topics", "edit", str(folder), *args])
        assert result.exit_code == 2 and message in result.output, (args, result.output)
    missing = runner.invoke(cli, ["topics", "edit", str(tmp_path / "none"), "delete", str(first)])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    assert files_of(folder) == before


def test_cli_fit_with_seed_topics(tmp_path):
    seeds = tmp_path / "seeds.yaml"
    seeds.write_text(
        "topics:\n  - name: Password trouble\n    description: I forgot my password and cannot log in\n"
        "    examples: [my login does not work]\n"
    )
    model_dir = tmp_path / "model"
    args = ["--min-cluster-size", "10", "--selection", "eom", "--seeds", str(seeds)]
    fit = runner.invoke(cli, ["topics", "fit", str(PLANTED), "-o", str(model_dir), *args])
    assert fit.exit_code == 0, fit.output
    seeded = load_topic_model(model_dir).topics[0]
    assert seeded.name == "Password trouble" and seeded.seeded and seeded.size >= 24
    seeds.write_text("topics:\n  - name: Password trouble\n")
    bad = runner.invoke(cli, ["topics", "fit", str(PLANTED), "-o", str(tmp_path / "m2"), *args])
    assert bad.exit_code == 2 and "needs a description or examples" in bad.output
