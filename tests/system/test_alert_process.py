"""Alerts survive a crash: the real server (`python -m service.cli serve`) commits two level
changes while their webhook is down, is killed with SIGKILL before any delivery succeeds,
and once restarted, with the webhook up, delivers both events with their original ids, in
order, signed."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from bench.server import ServerProcess as Server
from bench.server import free_port
from tests.api.test_alerts import ESCALATE_TEXT, NONE_TEXT, SECRET, URGENT_TEXT, documented_verify
from tests.api.webhook_receiver import Receiver


def server_env(db_path: Path, webhook: str) -> dict[str, str]:
    return {
        "CONVINTEL_DB_PATH": str(db_path),
        "CONVINTEL_REDACT_PII": "false",  # cues on (they decide the levels); NER is not needed here
        "CONVINTEL_MATCH_CATEGORIES": "false",
        "CONVINTEL_TORCH_THREADS": "1",
        "CONVINTEL_ALERT_WEBHOOK_URLS": webhook,
        "CONVINTEL_ALERT_WEBHOOK_SECRET": SECRET,
        "CONVINTEL_ALERT_MAX_ATTEMPTS": "1000",
        "CONVINTEL_ALERT_BACKOFF_BASE_S": "0.2",
        "CONVINTEL_ALERT_BACKOFF_CAP_S": "0.5",
        "CONVINTEL_ALERT_POLL_INTERVAL_S": "0.2",
        "CONVINTEL_ALERT_TIMEOUT_S": "1",
    }


def pending_after_a_failed_attempt(server: Server, count: int, timeout_s: float = 30.0) -> list[dict]:
    """The pending events, oldest first, once there are `count` and the oldest has failed
    an attempt (the later ones wait behind it: one conversation's events go out in order)."""
    deadline = time.monotonic() + timeout_s
    while True:
        pending = httpx.get(f"{server.url}/v1/alerts", params={"status": "pending"}, timeout=5).json()["alerts"][::-1]
        if len(pending) == count and pending[0]["attempts"] >= 1:
            assert all(a["attempts"] == 0 for a in pending[1:])
            return pending
        assert time.monotonic() < deadline, pending
        time.sleep(0.2)


def test_events_committed_before_a_sigkill_are_delivered_after_restart(tmp_path: Path, servers: list[Server]):
    port = free_port()  # nothing listens there yet: every attempt is refused
    env = server_env(tmp_path / "state.sqlite3", f"http://127.0.0.1:{port}/hook")
    server = Server.start(tmp_path / "first.log", env)
    servers.append(server)
    for mid, text in (("m1", NONE_TEXT), ("m2", ESCALATE_TEXT), ("m3", URGENT_TEXT)):
        response = httpx.post(
            f"{server.url}/v1/conversations/c1/messages", json={"id": mid, "role": "customer", "text": text}, timeout=60
        )
        assert response.status_code == 200, response.text
    pending = pending_after_a_failed_attempt(server, 2)
    assert "ConnectError" in pending[0]["last_error"]
    server.kill()  # SIGKILL: no shutdown, no flushing

    verify = documented_verify()
    with Receiver(port=port) as receiver:
        restarted = Server.start(tmp_path / "second.log", env)
        servers.append(restarted)
        deliveries = receiver.wait_for(2, timeout_s=60)
        time.sleep(1)  # a few more polls: nothing else arrives
        assert len(receiver.deliveries) == 2
    assert [d.event_id for d in deliveries] == [a["id"] for a in pending]
    assert [(d.json["old_level"], d.json["new_level"]) for d in deliveries] == [
        ("none", "escalate"),
        ("escalate", "urgent"),
    ]
    assert all(verify(SECRET.encode(), d.body, d.signature) for d in deliveries)
    assert [d.json for d in deliveries] == [a["event"] for a in pending], "the bodies committed before the crash"
    listed = httpx.get(f"{restarted.url}/v1/alerts", timeout=5).json()["alerts"]
    assert [a["status"] for a in listed] == ["delivered", "delivered"]
