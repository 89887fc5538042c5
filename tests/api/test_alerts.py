"""Outbound alerts end to end: the service, with its full text inspection, delivers signed
`escalation.changed` events to real HTTP receivers on 127.0.0.1, and the alerts API lists
and re-drives them. Signatures are checked with the verification snippet of docs/alerts.md,
executed as it is written there."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from nlp.analyzer import Analyzer
from service.alerts.signing import signature_header
from service.alerts.webhooks import AlertConfigError
from service.api.app import create_app
from service.runtime import load_analyzer
from service.settings import Settings
from tests.api.webhook_receiver import Receiver
from tests.conftest import ROOT

SECRET = "test-webhook-secret"
ALERTS_DOC = ROOT / "docs" / "alerts.md"
# Messages whose levels the shipped bundle and policy decide: none, then a request for a
# manager (escalate), then a safety risk (urgent).
NONE_TEXT = "Hi, what are your opening hours on Saturday?"
ESCALATE_TEXT = "I want to speak to a manager please"
URGENT_TEXT = "There is smoke coming out of the charger you sold me"
# Fast retries, so a failing receiver is given up on in well under a second.
FAST = {
    "alert_webhook_secret": SECRET,
    "alert_max_attempts": 3,
    "alert_backoff_base_s": 0.05,
    "alert_backoff_cap_s": 0.2,
    "alert_poll_interval_s": 0.05,
    "alert_timeout_s": 5.0,
}


def documented_verify() -> Callable[..., bool]:
    """`verify` from the Python block under "Verifying a delivery" in docs/alerts.md, run as written."""
    section = ALERTS_DOC.read_text(encoding="utf-8").split("## Verifying a delivery", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None, "docs/alerts.md lost its verification snippet"
    assert len([line for line in code.group(1).splitlines() if line.strip()]) <= 10, "the snippet is ten lines"
    namespace: dict = {}
    exec(compile(code.group(1), str(ALERTS_DOC), "exec"), namespace)
    return namespace["verify"]


@pytest.fixture(scope="module")
def full_analyzer() -> Analyzer:
    return load_analyzer(Settings(_env_file=None, models_dir=ROOT / "models"))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def make_client(tmp_path: Path, analyzer: Analyzer, urls: str, **settings) -> TestClient:
    return TestClient(
        create_app(
            Settings(
                _env_file=None,
                db_path=tmp_path / "state.sqlite3",
                models_dir=ROOT / "models",
                alert_webhook_urls=urls,
                **{**FAST, **settings},
            ),
            analyzer,
        )
    )


def post(client: TestClient, conversation: str, mid: str, text: str) -> dict:
    response = client.post(
        f"/v1/conversations/{conversation}/messages", json={"id": mid, "role": "customer", "text": text}
    )
    assert response.status_code == 200, response.text
    return response.json()


def alerts(client: TestClient, **params) -> list[dict]:
    response = client.get("/v1/alerts", params=params)
    assert response.status_code == 200, response.text
    return response.json()["alerts"]


def settled(client: TestClient, count: int, timeout_s: float = 30.0) -> list[dict]:
    """The alerts, oldest first, once `count` exist and none is pending."""
    deadline = time.monotonic() + timeout_s
    while True:
        listed = alerts(client)
        if len(listed) >= count and all(a["status"] != "pending" for a in listed):
            return listed[::-1]
        assert time.monotonic() < deadline, listed
        time.sleep(0.05)


def metric(client: TestClient, series: str) -> float:
    """The value of one series (`name{label="value"}`) in /metrics; 0 before it exists."""
    for line in client.get("/metrics").text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == series:
            return float(value)
    return 0.0


def test_none_escalate_urgent_sends_two_signed_events_in_order(tmp_path, full_analyzer, receiver):
    verify = documented_verify()
    with make_client(tmp_path, full_analyzer, receiver.url) as client:
        levels = [
            post(client, "c1", mid, text)["conversation"]["escalation"]["level"]
            for mid, text in (("m1", NONE_TEXT), ("m2", ESCALATE_TEXT), ("m3", URGENT_TEXT))
        ]
        assert levels == ["none", "escalate", "urgent"]
        first, second = receiver.wait_for(2)
        listed = settled(client, 2)
        assert [a["status"] for a in listed] == ["delivered", "delivered"]
        # A webhook retry of the same message changes nothing and queues nothing.
        retry = client.post("/v1/conversations/c1/messages", json={"id": "m3", "role": "customer", "text": URGENT_TEXT})
        assert retry.json()["duplicate"] is True
        time.sleep(0.3)  # several worker polls
        assert len(alerts(client)) == 2 and len(receiver.deliveries) == 2

    for delivery in (first, second):
        assert verify(SECRET.encode(), delivery.body, delivery.signature)
        assert delivery.headers["content-type"] == "application/json"
        assert delivery.headers["x-convintel-event-type"] == "escalation.changed"
        assert delivery.event_id == delivery.json["id"]
    events = [first.json, second.json]
    assert [(e["old_level"], e["new_level"], e["message_id"]) for e in events] == [
        ("none", "escalate", "m2"),
        ("escalate", "urgent", "m3"),
    ]
    assert [a["id"] for a in listed] == [e["id"] for e in events] and len({e["id"] for e in events}) == 2
    urgent = events[1]
    assert urgent["type"] == "escalation.changed" and urgent["conversation_id"] == "c1"
    assert urgent["recommended"] is True and urgent["route_to"] == "supervisor"
    assert urgent["model"] == {"name": full_analyzer.model_info.name, "version": full_analyzer.model_info.version}
    safety = next(r for r in urgent["reasons"] if r["rule"] == "safety")
    assert safety["evidence"] and all(e["message_id"] == "m3" for e in safety["evidence"])
    assert urgent["response_style"]["style"]
    assert listed[1]["event"] == urgent and listed[1]["target"] == urlsplit(receiver.url).netloc


def test_the_snippet_rejects_a_changed_body_and_a_stale_signature(tmp_path, full_analyzer, receiver):
    verify = documented_verify()
    with make_client(tmp_path, full_analyzer, receiver.url) as client:
        post(client, "c1", "m1", ESCALATE_TEXT)
        (delivery,) = receiver.wait_for(1)
    secret = SECRET.encode()
    assert verify(secret, delivery.body, delivery.signature)
    tampered = delivery.body.replace(b'"new_level":"escalate"', b'"new_level":"none"')
    assert tampered != delivery.body and not verify(secret, tampered, delivery.signature)
    assert not verify(b"another secret", delivery.body, delivery.signature)
    # The same signature, received five minutes and a second later (a replay).
    later = time.time() + 301
    stale_clock = type("Clock", (), {"time": staticmethod(lambda: later)})
    verify.__globals__["time"] = stale_clock
    try:
        assert not verify(secret, delivery.body, delivery.signature)
    finally:
        verify.__globals__["time"] = time
    # A signature made six minutes ago over the genuine body.
    old = signature_header(secret, delivery.body, int(time.time()) - 360)
    assert not verify(secret, delivery.body, old)
    assert verify(secret, delivery.body, signature_header(secret, delivery.body, int(time.time()) - 60))
    assert not verify(secret, delivery.body, "garbage") and not verify(secret, delivery.body, "t=x,v1=y")


def test_a_failing_receiver_gives_up_after_n_tries_and_retry_redrives(tmp_path, full_analyzer):
    with Receiver(status=503) as receiver, make_client(tmp_path, full_analyzer, receiver.url) as client:
        failed_before = metric(client, 'convintel_alert_deliveries_total{outcome="failed"}')
        delivered_before = metric(client, 'convintel_alert_deliveries_total{outcome="delivered"}')
        errors_before = metric(client, "convintel_alert_attempt_errors_total")
        post(client, "c1", "m1", ESCALATE_TEXT)
        (event,) = settled(client, 1)
        assert event["status"] == "failed" and event["attempts"] == 3
        assert event["last_error"] == "HTTP 503 Service Unavailable" and event["next_attempt_at"] is None
        attempts = receiver.wait_for(3)
        assert len(receiver.deliveries) == 3
        assert {d.event_id for d in attempts} == {event["id"]}
        assert len({d.body for d in attempts}) == 1, "every attempt sends the same body"
        assert alerts(client, status="failed") == [event] and alerts(client, status="delivered") == []
        assert metric(client, 'convintel_alert_deliveries_total{outcome="failed"}') == failed_before + 1
        assert metric(client, "convintel_alert_attempt_errors_total") == errors_before + 3

        receiver.status = 200
        response = client.post(f"/v1/alerts/{event['id']}/retry")
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "pending" and response.json()["attempts"] == 0
        (redriven,) = settled(client, 1)
        assert redriven["status"] == "delivered" and redriven["attempts"] == 1 and redriven["last_error"] is None
        assert receiver.wait_for(4)[3].event_id == event["id"] and receiver.deliveries[3].body == attempts[0].body
        assert metric(client, 'convintel_alert_deliveries_total{outcome="delivered"}') == delivered_before + 1
        assert metric(client, "convintel_alerts_pending") == 0

        again = client.post(f"/v1/alerts/{event['id']}/retry")
        assert again.status_code == 409 and again.json()["error"]["code"] == "not_failed"
        unknown = client.post(f"/v1/alerts/evt_{'0' * 32}/retry")
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
        assert client.post("/v1/alerts/not-an-id/retry").status_code == 422


def test_slack_format_and_min_level(tmp_path, full_analyzer):
    verify = documented_verify()
    with Receiver() as everything, Receiver() as slack:
        urls = f"{everything.url}|name=all, {slack.url}|format=slack|min_level=urgent|name=oncall"
        with make_client(tmp_path, full_analyzer, urls) as client:
            post(client, "c1", "m1", ESCALATE_TEXT)
            post(client, "c1", "m2", URGENT_TEXT)
            listed = settled(client, 3)
        assert [(a["target"], a["format"], a["event"]["new_level"]) for a in listed] == [
            ("all", "json", "escalate"),
            ("all", "json", "urgent"),
            ("oncall", "slack", "urgent"),
        ]
        (message,) = slack.wait_for(1)
        assert len(everything.wait_for(2)) == 2
    assert verify(SECRET.encode(), message.body, message.signature)
    assert message.event_id == listed[2]["id"]
    body = message.json
    assert set(body) == {"text", "blocks"}
    assert body["text"] == "Conversation c1: escalation escalate → urgent (route to supervisor)"
    assert body["blocks"][0]["type"] == "section" and "*escalate* → *urgent*" in body["blocks"][0]["text"]["text"]
    assert "*safety*" in body["blocks"][1]["text"]["text"]
    assert body["blocks"][-1]["type"] == "context" and listed[2]["id"] in body["blocks"][-1]["elements"][0]["text"]


def test_listing_filters_limits_and_refuses_bad_queries(tmp_path, full_analyzer, receiver):
    with make_client(tmp_path, full_analyzer, receiver.url) as client:
        assert alerts(client) == []
        post(client, "c1", "m1", ESCALATE_TEXT)
        post(client, "c2", "m1", ESCALATE_TEXT)
        listed = settled(client, 2)
        assert [a["conversation_id"] for a in listed] == ["c1", "c2"]
        assert [a["id"] for a in alerts(client, limit=1)] == [listed[1]["id"]]  # newest first
        assert len(alerts(client, status="delivered")) == 2 and alerts(client, status="pending") == []
        for params in ({"status": "lost"}, {"limit": 0}, {"limit": 501}, {"limit": "many"}):
            response = client.get("/v1/alerts", params=params)
            assert response.status_code == 422, params
            assert response.json()["error"]["details"][0]["field"] in ("status", "limit")


def test_alerts_need_the_alerts_scope(tmp_path, full_analyzer):
    keys = "helpdesk-key-0123456789:conversations,alerts-key-0123456789:alerts,admin-key-0123456789:admin"
    with make_client(tmp_path, full_analyzer, "", api_keys=keys) as client:
        assert client.get("/v1/alerts").status_code == 401
        assert client.get("/v1/alerts", headers={"X-API-Key": "helpdesk-key-0123456789"}).status_code == 403
        assert client.get("/v1/alerts", headers={"X-API-Key": "alerts-key-0123456789"}).status_code == 200
        assert client.get("/v1/alerts", headers={"X-API-Key": "admin-key-0123456789"}).status_code == 200
        retry = client.post(f"/v1/alerts/evt_{'0' * 32}/retry", headers={"X-API-Key": "alerts-key-0123456789"})
        assert retry.status_code == 404
        assert client.get("/v1/models", headers={"X-API-Key": "alerts-key-0123456789"}).status_code == 403


def test_a_bad_webhook_configuration_stops_start_up(tmp_path):
    with pytest.raises(AlertConfigError, match="CONVINTEL_ALERT_WEBHOOK_SECRET is required"):
        create_app(
            Settings(_env_file=None, db_path=tmp_path / "db.sqlite3", alert_webhook_urls="https://x.example.com/h")
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVINTEL_")}
    env |= {
        "PYTHONPATH": str(ROOT),
        "CONVINTEL_ALERT_WEBHOOK_URLS": "https://hooks.example.com/T0/SECRET-PATH|format=teams",
        "CONVINTEL_ALERT_WEBHOOK_SECRET": SECRET,
    }
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "check"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert "CONVINTEL_ALERT_WEBHOOK_URLS, webhook 1: format must be one of json, slack" in result.stderr
    assert "SECRET-PATH" not in result.stderr + result.stdout


def test_without_webhooks_nothing_is_queued(tmp_path, full_analyzer):
    with make_client(tmp_path, full_analyzer, "") as client:
        assert post(client, "c1", "m1", URGENT_TEXT)["conversation"]["escalation"]["changed"] is True
        assert alerts(client) == []


def test_a_removed_webhook_fails_its_pending_events_and_cannot_be_retried(tmp_path, full_analyzer):
    with Receiver(status=500) as receiver:
        with make_client(tmp_path, full_analyzer, receiver.url, alert_max_attempts=1000) as client:
            post(client, "c1", "m1", ESCALATE_TEXT)
            receiver.wait_for(1)  # failing, and pending for a long time yet
        with Receiver() as other, make_client(tmp_path, full_analyzer, other.url) as client:
            (event,) = settled(client, 1)
            assert event["status"] == "failed" and "no longer configured" in event["last_error"]
            assert other.deliveries == []
            response = client.post(f"/v1/alerts/{event['id']}/retry")
            assert response.status_code == 409 and response.json()["error"]["code"] == "target_not_configured"


def test_delivered_events_are_kept_across_restarts(tmp_path, full_analyzer, receiver):
    with make_client(tmp_path, full_analyzer, receiver.url) as client:
        post(client, "c1", "m1", ESCALATE_TEXT)
        (event,) = settled(client, 1)
    with make_client(tmp_path, full_analyzer, receiver.url) as client:
        assert alerts(client) == [event]
        time.sleep(0.3)
    assert len(receiver.deliveries) == 1
