"""Two replicas on one PostgreSQL database: two real `convintel serve` processes, 32
concurrent callers split between them, 50 conversations that several callers (on both
replicas) write to at once. Every accepted message is stored exactly once, in the order
its caller sent it; both replicas return the same state for every conversation; each level
change answers `changed` once and queues one alert event. Then one replica is killed with
SIGKILL mid-run: its callers move to the other, and no acknowledged message is lost."""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from bench.server import ServerProcess as Server
from bench.server import free_port
from tests.api.test_alerts import ESCALATE_TEXT, NONE_TEXT, SECRET, URGENT_TEXT

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CALLERS = 32
CONVERSATIONS = 50
MESSAGES_PER_CALLER = 8
TEXTS = (NONE_TEXT, ESCALATE_TEXT, URGENT_TEXT, NONE_TEXT)  # cues move the level up and down


def replica_env(database_url: str) -> dict[str, str]:
    return {
        "CONVINTEL_DATABASE_URL": database_url,
        "CONVINTEL_REDACT_PII": "false",  # cues on (they decide the levels); NER is not needed here
        "CONVINTEL_MATCH_CATEGORIES": "false",
        "CONVINTEL_TORCH_THREADS": "1",
        "CONVINTEL_LOG_LEVEL": "warning",
        # Level changes queue alert events; nothing listens there, and retries wait long.
        "CONVINTEL_ALERT_WEBHOOK_URLS": f"http://127.0.0.1:{free_port()}/hook",
        "CONVINTEL_ALERT_WEBHOOK_SECRET": SECRET,
        "CONVINTEL_ALERT_BACKOFF_BASE_S": "600",
        "CONVINTEL_ALERT_BACKOFF_CAP_S": "600",
    }


@dataclass
class Ack:
    """One acknowledged (2xx) message and what its reply said."""

    conversation: str
    message_id: str
    level: str
    changed: bool


@dataclass
class Caller:
    """Posts messages, one after another, each to a random conversation, through its
    replica; when that replica is gone, it resends the unanswered message (same id) to the
    next one and carries on there."""

    number: int
    urls: list[str]
    rng: random.Random
    sent: list[tuple[str, str]] = field(default_factory=list)
    acked: list[Ack] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def run(self, stop: threading.Event, count: int | None) -> None:
        with httpx.Client(timeout=120) as client:
            n = len(self.sent)
            while not stop.is_set() and (count is None or n < count):
                conversation = f"conv-{self.rng.randrange(CONVERSATIONS)}"
                message_id = f"caller{self.number}-{n}"
                text = TEXTS[self.rng.randrange(len(TEXTS))]
                self.sent.append((conversation, message_id))
                self._post(client, conversation, message_id, text)
                n += 1

    def _post(self, client: httpx.Client, conversation: str, message_id: str, text: str) -> None:
        while self.urls:
            try:
                response = client.post(
                    f"{self.urls[0]}/v1/conversations/{conversation}/messages",
                    json={"id": message_id, "role": "customer", "text": text},
                )
            except httpx.TransportError:
                self.urls.pop(0)  # the replica is gone: the same message, to the next one
                continue
            if response.is_success:
                escalation = response.json()["conversation"]["escalation"]
                self.acked.append(Ack(conversation, message_id, escalation["level"], escalation["changed"]))
            else:
                self.errors.append(f"{response.status_code} {response.text[:300]}")
            return


def run_callers(callers: list[Caller], *, count: int | None, stop: threading.Event) -> list[threading.Thread]:
    threads = [threading.Thread(target=caller.run, args=(stop, count)) for caller in callers]
    for thread in threads:
        thread.start()
    return threads


def stored_ids(url: str) -> dict[str, list[str]]:
    """Every conversation's message ids, in stored order, as the replica at `url` reads them."""
    with httpx.Client(timeout=60) as client:
        return {
            f"conv-{k}": [m["id"] for m in state.json()["messages"]] if state.status_code == 200 else []
            for k in range(CONVERSATIONS)
            for state in [client.get(f"{url}/v1/conversations/conv-{k}")]
        }


def check_exactly_once_in_order(callers: list[Caller], stored: dict[str, list[str]]) -> None:
    """Every acknowledged message stored once; nothing stored that was not sent; each
    caller's messages in a conversation stored in the order it sent them."""
    every_stored = [mid for ids in stored.values() for mid in ids]
    assert len(every_stored) == len(set(every_stored)), "a message stored twice"
    sent = {(conversation, mid) for caller in callers for conversation, mid in caller.sent}
    stored_pairs = {(conversation, mid) for conversation, ids in stored.items() for mid in ids}
    acked = {(ack.conversation, ack.message_id) for caller in callers for ack in caller.acked}
    assert acked <= stored_pairs, f"acknowledged but lost: {sorted(acked - stored_pairs)[:5]}"
    assert stored_pairs <= sent, f"stored but never sent: {sorted(stored_pairs - sent)[:5]}"
    position = {mid: i for ids in stored.values() for i, mid in enumerate(ids)}
    for caller in callers:
        by_conversation: dict[str, list[int]] = defaultdict(list)
        for conversation, mid in caller.sent:
            if mid in position:
                by_conversation[conversation].append(position[mid])
        for conversation, positions in by_conversation.items():
            assert positions == sorted(positions), f"caller {caller.number} out of order in {conversation}"


def test_two_replicas_on_one_postgresql_store_every_message_once(
    tmp_path: Path, servers: list[Server], postgres_url: str
):
    env = replica_env(postgres_url)
    first = Server.start(tmp_path / "first.log", env)
    servers.append(first)
    second = Server.start(tmp_path / "second.log", env)
    servers.append(second)
    urls = [first.url, second.url]
    callers = [Caller(k, [urls[k % 2]], random.Random(k)) for k in range(CALLERS)]

    # 1. Both replicas up: every message is accepted, stored once, in order.
    started = time.monotonic()
    for thread in run_callers(callers, count=MESSAGES_PER_CALLER, stop=threading.Event()):
        thread.join(600)
    elapsed = time.monotonic() - started
    assert not [e for c in callers for e in c.errors], [e for c in callers for e in c.errors][:3]
    assert sum(len(c.acked) for c in callers) == CALLERS * MESSAGES_PER_CALLER
    stored = stored_ids(first.url)
    check_exactly_once_in_order(callers, stored)
    assert sum(map(len, stored.values())) == CALLERS * MESSAGES_PER_CALLER

    # Both replicas return the same state for every conversation, and the same listing.
    with httpx.Client(timeout=60) as client:
        for k in range(CONVERSATIONS):
            states = [client.get(f"{url}/v1/conversations/conv-{k}").json() for url in urls]
            assert states[0]["messages"] == states[1]["messages"]
            assert states[0]["conversation"]["escalation"] == states[1]["conversation"]["escalation"]
        listings = [client.get(f"{url}/v1/conversations", params={"limit": 200}).json()["items"] for url in urls]
        assert listings[0] == listings[1] and len(listings[0]) == len([ids for ids in stored.values() if ids])
        events = client.get(f"{first.url}/v1/alerts", params={"limit": 500}).json()["alerts"][::-1]

    # Each level change was answered `changed` once, and queued one event, in order.
    ack_of = {ack.message_id: ack for caller in callers for ack in caller.acked}
    expected_events = []
    for conversation, ids in stored.items():
        previous = "none"
        for mid in ids:
            ack = ack_of[mid]
            assert ack.changed == (ack.level != previous), f"{conversation}/{mid}: changed={ack.changed}"
            if ack.changed:
                expected_events.append((conversation, previous, ack.level))
            previous = ack.level
    assert expected_events, "the texts moved some levels"
    assert len(events) < 500, "the listing holds every event"
    assert sorted((e["conversation_id"], e["event"]["old_level"], e["event"]["new_level"]) for e in events) == sorted(
        expected_events
    )
    for conversation in stored:
        mine = [
            (e["event"]["old_level"], e["event"]["new_level"]) for e in events if e["conversation_id"] == conversation
        ]
        assert mine == [(old, new) for c, old, new in expected_events if c == conversation]

    # 2. SIGKILL one replica mid-run: its callers resend to the other; no acknowledged message is lost.
    stop = threading.Event()
    before = sum(len(c.acked) for c in callers)
    for caller in callers:
        caller.urls = [urls[caller.number % 2], urls[(caller.number + 1) % 2]]
    threads = run_callers(callers, count=None, stop=stop)
    deadline = time.monotonic() + 120
    while sum(len(c.acked) for c in callers) < before + 64 and time.monotonic() < deadline:
        time.sleep(0.05)
    first.process.kill()  # SIGKILL, with writes in flight on both replicas
    first.process.wait(10)
    killed_at = sum(len(c.acked) for c in callers)
    while sum(len(c.acked) for c in callers) < killed_at + 64 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(120)
    assert sum(len(c.acked) for c in callers) >= killed_at + 64, "the surviving replica kept accepting"
    assert not [e for c in callers for e in c.errors], [e for c in callers for e in c.errors][:3]
    check_exactly_once_in_order(callers, stored_ids(second.url))
    print(f"phase 1: {CALLERS * MESSAGES_PER_CALLER} messages in {elapsed:.1f} s; {len(events)} alert events")
