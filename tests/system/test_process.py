"""The real server in a subprocess (`python -m service.cli serve`): in-flight requests
finish on SIGTERM, and after a SIGKILL in the middle of writes the store is consistent and
holds every message that was acknowledged with a 200."""

from __future__ import annotations

import json
import signal
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from bench.server import ServerProcess as Server

# No spaCy (cue detection and redaction off): faster start-up, and durability does not
# depend on it. One torch thread: the machine is shared with the test process.
SERVER_ENV = {
    "CONVINTEL_DETECT_CUES": "false",
    "CONVINTEL_REDACT_PII": "false",
    "CONVINTEL_TORCH_THREADS": "1",
    "CONVINTEL_LOG_LEVEL": "info",
}


def start_server(tmp_path: Path, db_path: Path, name: str) -> Server:
    return Server.start(tmp_path / f"{name}.log", {**SERVER_ENV, "CONVINTEL_DB_PATH": str(db_path)})


def in_flight(server: Server) -> float:
    for line in httpx.get(f"{server.url}/metrics", timeout=5).text.splitlines():
        if line.startswith("convintel_http_requests_in_flight "):
            return float(line.split()[1])
    return 0.0


def test_sigterm_lets_in_flight_requests_finish(tmp_path: Path, servers: list[Server]):
    server = start_server(tmp_path, tmp_path / "db.sqlite3", "sigterm")
    servers.append(server)
    slow = {
        "messages": [
            {"role": "customer", "text": f"Order {i} never arrived and I want a refund now."} for i in range(400)
        ]
    }
    outcome: dict = {}

    def post_slow():
        try:
            outcome["response"] = httpx.post(
                f"{server.url}/v1/analyze", json=slow, timeout=120, headers={"X-Request-ID": "in-flight-1"}
            )
        except httpx.HTTPError as exc:  # pragma: no cover - reported below
            outcome["error"] = exc

    client = threading.Thread(target=post_slow)
    client.start()
    deadline = time.monotonic() + 30
    while in_flight(server) < 2 and time.monotonic() < deadline:  # the slow one and this scrape
        time.sleep(0.05)
    assert in_flight(server) >= 2, "the slow request should be in flight"
    server.process.send_signal(signal.SIGTERM)
    client.join(120)
    assert "error" not in outcome, outcome.get("error")
    response = outcome["response"]
    assert response.status_code == 200 and len(response.json()["messages"]) == 400
    # uvicorn exits 0, or (newer versions) re-raises SIGTERM once it has shut down cleanly.
    assert server.process.wait(60) in (0, -signal.SIGTERM)
    log = server.log.read_text()
    assert "Finished server process" in log
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    done = [line for line in lines if line.get("request_id") == "in-flight-1"]
    assert done and done[0]["status"] == 200 and done[0]["route"] == "/v1/analyze"
    assert "Order 1 never arrived" not in log  # no message text in the logs


@dataclass
class Writer:
    """Posts messages to one conversation, one after another, until told to stop."""

    url: str
    conversation: str
    sent: list[str] = field(default_factory=list)
    acked: list[str] = field(default_factory=list)

    def run(self, stop: threading.Event) -> None:
        with httpx.Client(timeout=30) as client:
            for i in range(100_000):
                if stop.is_set():
                    return
                message_id = f"m{i}"
                self.sent.append(message_id)
                try:
                    response = client.post(
                        f"{self.url}/v1/conversations/{self.conversation}/messages",
                        json={
                            "id": message_id,
                            "role": "customer",
                            "text": f"Message {i}: still waiting for my refund.",
                        },
                    )
                except httpx.TransportError:
                    return  # the server is gone
                if response.status_code == 200:
                    self.acked.append(message_id)


@pytest.mark.sqlite  # SQLite's WAL after a crash; tests/system/test_replicas.py kills a PostgreSQL replica
def test_sigkill_during_writes_loses_no_acknowledged_message(tmp_path: Path, servers: list[Server]):
    db = tmp_path / "db.sqlite3"
    server = start_server(tmp_path, db, "before-kill")
    servers.append(server)
    writers = [Writer(server.url, f"conv-{k}") for k in range(3)]
    stop = threading.Event()
    threads = [threading.Thread(target=w.run, args=(stop,)) for w in writers]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while sum(len(w.acked) for w in writers) < 24 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.process.send_signal(signal.SIGKILL)  # mid-stream: writers are still posting
    server.process.wait(10)
    stop.set()
    for thread in threads:
        thread.join(30)
    acked = sum(len(w.acked) for w in writers)
    assert acked >= 24, "enough writes were acknowledged before the kill"

    with sqlite3.connect(db) as check:  # the file is sound after the crash (WAL replayed on open)
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    restarted = start_server(tmp_path, db, "after-kill")
    servers.append(restarted)
    for writer in writers:
        response = httpx.get(f"{restarted.url}/v1/conversations/{writer.conversation}", timeout=30)
        assert response.status_code == 200
        stored = [m["id"] for m in response.json()["messages"]]
        assert set(writer.acked) <= set(stored), "every acknowledged message is stored"
        assert set(stored) <= set(writer.sent), "nothing is stored that was not sent"
        assert stored == writer.sent[: len(stored)], "stored in the order sent, without gaps"
        assert len(stored) == len(set(stored))
    # The store takes new writes after the restart, and a retry of a stored id is a duplicate.
    writer = writers[0]
    again = httpx.post(
        f"{restarted.url}/v1/conversations/{writer.conversation}/messages",
        timeout=30,
        json={"id": writer.acked[-1], "role": "customer", "text": "retry"},
    )
    assert again.status_code == 200 and again.json()["duplicate"] is True
    new = httpx.post(
        f"{restarted.url}/v1/conversations/{writer.conversation}/messages",
        timeout=30,
        json={"id": "after-restart", "role": "customer", "text": "Any news?"},
    )
    assert new.status_code == 200 and new.json()["duplicate"] is False
