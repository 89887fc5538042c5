"""The HTTP API against the real bundled models."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.settings import Settings
from tests.conftest import load_fixture


def test_analyze_returns_message_and_conversation_analysis(client: TestClient):
    body = load_fixture("double_charge.json")
    response = client.post("/v1/analyze", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["conversation_id"] == "demo-1042"
    assert [m["id"] for m in result["messages"]] == ["m1", "m2", "m3", "m4"]
    for message in result["messages"]:
        assert set(message["sentiment"]["probabilities"]) == {"negative", "neutral", "positive"}
        assert abs(sum(message["sentiment"]["probabilities"].values()) - 1) < 1e-3
        assert -1 <= message["sentiment"]["score"] <= 1
        if message["role"] == "customer":
            assert message["urgency"]["label"] in {"low", "medium", "high", "critical"}
        else:  # urgency is a property of the customer's messages
            assert message["urgency"] is None
        assert message["emotions"], "every message reports at least one emotion"
    angry = result["messages"][3]
    assert angry["sentiment"]["label"] == "negative"
    conversation = result["conversation"]
    assert conversation["customer_messages"] == 3
    assert conversation["sentiment"]["label"] == "negative"
    assert conversation["escalation"]["recommended"] is True
    assert conversation["escalation"]["reasons"]
    assert result["model"]["name"] == "convintel-base"
    assert result["timing"]["total_ms"] >= result["timing"]["encode_ms"] > 0


def test_customer_messages_carry_a_complaint_result(client: TestClient):
    """The shipped bundle has a complaint head: customer messages get {label, score}, the
    agent's message null, and the angry transcript is tagged a complaint."""
    result = client.post("/v1/analyze", json=load_fixture("double_charge.json")).json()
    by_role = {m["id"]: m for m in result["messages"]}
    assert by_role["m2"]["complaint"] is None, "agent message"
    for message_id in ("m1", "m3", "m4"):
        complaint = by_role[message_id]["complaint"]
        assert complaint["label"] in {"yes", "no"} and 0 <= complaint["score"] <= 1
        assert (complaint["label"] == "yes") == (complaint["score"] > 0.5)
    assert by_role["m4"]["complaint"]["label"] == "yes"
    assert "complaint" in result["conversation"]["tags"]


def test_happy_conversation_is_not_escalated(client: TestClient):
    result = client.post("/v1/analyze", json=load_fixture("happy_resolution.json")).json()
    assert result["messages"][-1]["sentiment"]["label"] == "positive"
    assert any(e["label"] == "gratitude" for e in result["messages"][-1]["emotions"])
    assert result["conversation"]["escalation"]["recommended"] is False
    assert [m["id"] for m in result["messages"]] == ["m1", "m2", "m3"]  # generated ids


def test_batch_returns_results_in_order(client: TestClient):
    transcripts = [load_fixture("happy_resolution.json"), load_fixture("double_charge.json")]
    response = client.post("/v1/analyze/batch", json={"transcripts": transcripts})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["conversation_id"] for r in results] == ["demo-2001", "demo-1042"]
    single = client.post("/v1/analyze", json=transcripts[1]).json()
    batched, alone = results[1]["messages"][3]["sentiment"], single["messages"][3]["sentiment"]
    assert batched["label"] == alone["label"]
    assert batched["score"] == pytest.approx(alone["score"], abs=1e-3)
    assert batched["probabilities"] == pytest.approx(alone["probabilities"], abs=1e-3)


def test_per_message_path_encodes_only_the_new_message(client: TestClient, analyzer, monkeypatch):
    encoded: list[str] = []
    real_encode = analyzer.encoder.encode

    def counting_encode(texts, keep_tokens=None):
        encoded.extend(texts)
        return real_encode(texts, keep_tokens)

    monkeypatch.setattr(analyzer.encoder, "encode", counting_encode)
    turns = [m for m in load_fixture("double_charge.json")["messages"]]
    summaries = []
    for count, turn in enumerate(turns, start=1):
        response = client.post("/v1/conversations/c-77/messages", json={**turn, "channel": "chat"})
        assert response.status_code == 200, response.text
        payload = response.json()
        assert payload["message"]["id"] == turn["id"]
        assert payload["conversation"]["messages"] == count
        assert payload["duplicate"] is False
        summaries.append(payload["conversation"])
        assert encoded == [t["text"] for t in turns[:count]], "each call encodes exactly its own message"
    assert summaries[-1]["customer_messages"] == 3
    assert summaries[-1]["escalation"]["recommended"] is True

    state = client.get("/v1/conversations/c-77").json()
    assert [m["id"] for m in state["messages"]] == ["m1", "m2", "m3", "m4"]
    assert state["channel"] == "chat"
    # The stored view is the last reply's view, less the per-message change flag: a GET is not a change.
    last = {
        **summaries[-1],
        "escalation": {k: v for k, v in summaries[-1]["escalation"].items() if k not in ("changed", "previous_level")},
    }
    view = {
        **state["conversation"],
        "escalation": {
            k: v for k, v in state["conversation"]["escalation"].items() if k not in ("changed", "previous_level")
        },
    }
    assert view == last
    assert state["conversation"]["escalation"]["changed"] is False
    # The per-message path agrees with analysing the whole transcript at once.
    whole = client.post("/v1/analyze", json=load_fixture("double_charge.json")).json()
    assert whole["conversation"]["escalation"]["level"] == summaries[-1]["escalation"]["level"]


def test_webhook_retry_of_same_message_id_is_not_stored_twice(client: TestClient):
    message = {"id": "abc-1", "role": "customer", "text": "My router keeps rebooting."}
    first = client.post("/v1/conversations/retry-1/messages", json=message).json()
    second = client.post("/v1/conversations/retry-1/messages", json=message).json()
    assert second["duplicate"] is True
    assert second["message"] == first["message"]
    assert client.get("/v1/conversations/retry-1").json()["conversation"]["messages"] == 1


def test_generated_message_ids_follow_arrival_order(client: TestClient):
    for text in ("hello", "are you there?"):
        client.post("/v1/conversations/gen-1/messages", json={"role": "customer", "text": text})
    state = client.get("/v1/conversations/gen-1").json()
    assert [m["id"] for m in state["messages"]] == ["m1", "m2"]


def test_state_survives_an_app_restart(settings: Settings, analyzer):
    turns = load_fixture("double_charge.json")["messages"]
    with TestClient(create_app(settings, analyzer)) as first_app:
        for turn in turns[:2]:
            assert first_app.post("/v1/conversations/persist-1/messages", json=turn).status_code == 200
    with TestClient(create_app(settings, analyzer)) as second_app:
        state = second_app.get("/v1/conversations/persist-1")
        assert state.status_code == 200
        assert [m["id"] for m in state.json()["messages"]] == ["m1", "m2"]
        after = second_app.post("/v1/conversations/persist-1/messages", json=turns[2]).json()
        assert after["conversation"]["messages"] == 3


def test_unknown_conversation_is_404(client: TestClient):
    response = client.get("/v1/conversations/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_models_health_and_readiness(client: TestClient):
    models = client.get("/v1/models").json()["active"]
    assert models["name"] == "convintel-base"
    assert models["tasks"]["urgency"]["labels"] == ["low", "medium", "high", "critical"]
    assert "metrics" in models["tasks"]["sentiment"]
    assert client.get("/healthz").json() == {"status": "ok", "model": None}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["model"]["name"] == "convintel-base"
    assert client.get("/openapi.json").status_code == 200


def test_readyz_is_503_before_models_load(settings: Settings):
    plain = TestClient(create_app(settings))
    response = plain.get("/readyz")  # no `with`: the lifespan never runs
    assert response.status_code == 503
    assert plain.post("/v1/analyze", json=load_fixture("happy_resolution.json")).status_code == 503


def test_bad_bundle_stops_start_up_with_a_clear_error(tmp_path, analyzer):
    settings = Settings(_env_file=None, db_path=tmp_path / "db.sqlite3", models_dir=tmp_path, model="missing-bundle")
    from nlp.bundle import BundleError

    with pytest.raises(BundleError, match="no model bundle named 'missing-bundle'"):
        with TestClient(create_app(settings)):
            pass
