"""The alert outbox and its parts, without HTTP: events commit with their message or not
at all, claims keep each conversation's order per webhook and hold an event from other
processes for a lease, retry timing backs off with jitter under a cap, and webhook
settings are checked without ever printing a URL."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import text

from nlp.schemas import Escalation, IncomingMessage, ModelInfo, Role
from service.alerts.delivery import Backoff
from service.alerts.outbox import Outbox
from service.alerts.publisher import AlertPublisher
from service.alerts.webhooks import AlertConfigError, AlertFormat, load_alert_config, parse_webhook_targets
from service.settings import Settings
from service.store import ConversationStore, Database
from tests.api.test_store import analysis
from tests.conftest import open_store

MODEL = ModelInfo(name="convintel-base", version="test")
HOOK = "https://hooks.example.com/a"
OTHER_HOOK = "https://hooks.example.com/b"


def change(old: str, new: str) -> Escalation:
    return Escalation(recommended=new in ("escalate", "urgent"), level=new, previous_level=old, changed=True)


def commit(store: ConversationStore, publisher: AlertPublisher, conversation: str, old: str, new: str) -> None:
    """One message and its level change, committed as the recorder does."""
    with store.transaction(conversation) as transaction:
        stored = transaction.append(
            IncomingMessage(role=Role.customer, text="hello"),
            analysis(),
            stored_text="hello",
            model_version="test",
        )
        transaction.set_escalation_level(new)
        publisher.publish(transaction, stored.id, change(old, new), MODEL)


@pytest.fixture
def parts(database_url: str):
    store = open_store(database_url)
    outbox = Outbox(store.database)
    targets = parse_webhook_targets(f"{HOOK},{OTHER_HOOK}|min_level=urgent")
    yield store, outbox, AlertPublisher(targets, outbox)
    outbox.close()
    store.close()


def test_events_commit_with_their_message_or_not_at_all(parts, database_url: str):
    store, outbox, publisher = parts
    with pytest.raises(RuntimeError), store.transaction("c1") as transaction:
        stored = transaction.append(
            IncomingMessage(role=Role.customer, text="hello"),
            analysis(),
            stored_text="hello",
            model_version="test",
        )
        assert publisher.publish(transaction, stored.id, change("none", "urgent"), MODEL) == 2
        raise RuntimeError("the process fails before the commit")
    assert store.get("c1") is None and outbox.entries(None, 10) == []

    commit(store, publisher, "c1", "none", "urgent")
    # What another process sees in the database: the message, its level and both events.
    other = Database(database_url)
    with other.read() as db:
        assert db.execute(text("SELECT escalation_level FROM conversations")).all() == [("urgent",)]
        assert db.execute(text("SELECT target_url, status FROM alert_outbox ORDER BY seq")).all() == [
            (HOOK, "pending"),
            (OTHER_HOOK, "pending"),
        ]
    other.close()


def test_min_level_reaches_a_webhook_on_the_way_up_and_down(parts):
    store, outbox, publisher = parts
    commit(store, publisher, "c1", "none", "escalate")  # below urgent: the first webhook only
    commit(store, publisher, "c1", "escalate", "urgent")
    commit(store, publisher, "c1", "urgent", "monitor")  # leaving urgent is news to the second
    sent = [(e.target_url, e.conversation_id) for e in reversed(outbox.entries(None, 10))]
    assert sent == [(HOOK, "c1"), (HOOK, "c1"), (OTHER_HOOK, "c1"), (HOOK, "c1"), (OTHER_HOOK, "c1")]


def test_claims_keep_each_conversations_order_per_webhook(database_url: str):
    store = open_store(database_url)
    outbox = Outbox(store.database)
    publisher = AlertPublisher(parse_webhook_targets(HOOK), outbox)
    commit(store, publisher, "c1", "none", "escalate")
    commit(store, publisher, "c1", "escalate", "urgent")
    commit(store, publisher, "c2", "none", "urgent")
    first_c1, second_c1, first_c2 = reversed(outbox.entries(None, 10))
    now, lease = 1e10, 20.0

    claimed = outbox.claim_next(now, lease)
    assert claimed is not None and claimed.id == first_c1.id
    # c1's second event waits behind its first, in flight; c2 goes ahead.
    assert outbox.claim_next(now, lease).id == first_c2.id  # type: ignore[union-attr]
    assert outbox.claim_next(now, lease) is None
    outbox.mark_attempt_failed(claimed.seq, "HTTP 500", retry_at=now + 5)
    assert outbox.claim_next(now + 1, lease) is None  # still waits: the first is pending
    assert outbox.claim_next(now + 5, lease).id == first_c1.id  # type: ignore[union-attr]
    outbox.mark_delivered(first_c1.seq)
    assert outbox.claim_next(now + 5, lease).id == second_c1.id  # type: ignore[union-attr]
    store.close()
    outbox.close()


def test_a_claim_holds_the_event_from_other_processes_for_its_lease(parts, database_url: str):
    store, ours, publisher = parts
    theirs_store = open_store(database_url)  # another server process on the same database
    theirs = Outbox(theirs_store.database)
    commit(store, publisher, "c1", "none", "escalate")
    now, lease = 1e10, 20.0
    claimed = ours.claim_next(now, lease)
    assert claimed is not None
    assert theirs.claim_next(now + lease - 1, lease) is None
    # The claimer died mid-attempt: once the lease has run out, the event goes out again.
    again = theirs.claim_next(now + lease, lease)
    assert again is not None and again.id == claimed.id and again.body == claimed.body and again.attempts == 0
    theirs_store.close()


def test_the_last_failed_attempt_fails_the_event_and_retry_makes_it_due(parts):
    store, outbox, publisher = parts
    commit(store, publisher, "c1", "none", "escalate")
    (entry,) = outbox.entries("pending", 10)
    outbox.mark_attempt_failed(entry.seq, "HTTP 500", retry_at=None)
    (failed,) = outbox.entries("failed", 10)
    assert failed.attempts == 1 and failed.last_error == "HTTP 500" and failed.next_attempt_at is None
    retried = outbox.retry(entry.id)
    assert retried.status == "pending" and retried.attempts == 0 and retried.last_error == "HTTP 500"
    assert outbox.claim_next(retried.next_attempt_at or 0, 1.0) is not None


def test_backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half():
    backoff = Backoff(base_s=2.0, cap_s=300.0)
    assert [backoff.nominal(n) for n in range(1, 10)] == [2, 4, 8, 16, 32, 64, 128, 256, 300]
    assert backoff.nominal(10_000) == 300  # no overflow however many attempts
    rng = random.Random(7)
    for attempts in range(1, 12):
        delays = [backoff.delay(attempts, rng) for _ in range(200)]
        nominal = backoff.nominal(attempts)
        assert all(nominal / 2 <= d <= nominal for d in delays)
        assert max(delays) - min(delays) > nominal / 4, "jittered"


def test_webhook_entries_parse_with_their_options():
    slack, plain = parse_webhook_targets(
        " https://hooks.slack.com/services/T/B/SECRET | format=slack | min_level=urgent | name=oncall ,"
        "http://user:pw@10.0.0.5:8080/hook"
    )
    assert (slack.url, slack.format, slack.min_level, slack.name) == (
        "https://hooks.slack.com/services/T/B/SECRET",
        AlertFormat.slack,
        "urgent",
        "oncall",
    )
    assert (plain.format, plain.min_level, plain.name) == (AlertFormat.json, "none", "10.0.0.5:8080")
    assert parse_webhook_targets("") == () and parse_webhook_targets(" , ") == ()


@pytest.mark.parametrize(
    "value, message",
    [
        ("hooks.example.com/SECRET", "webhook 1: expected an http:// or https:// URL"),
        ("ftp://example.com/SECRET", "webhook 1: expected an http:// or https:// URL"),
        (f"{HOOK},https://x.example.com/SECRET|fromat=slack", "webhook 2: unknown options ['fromat']"),
        ("https://x.example.com/SECRET|format=teams", "format must be one of json, slack"),
        ("https://x.example.com/SECRET|min_level=high", "min_level must be one of none, monitor, escalate, urgent"),
        ("https://x.example.com/SECRET|slack", "expected option=value, got 'slack'"),
        ("https://x.example.com/SECRET|name=a|name=b", "option 'name' is given twice"),
        ("https://x.example.com/SECRET,https://x.example.com/SECRET", "a URL is listed twice"),
    ],
)
def test_bad_webhook_entries_are_refused_without_printing_the_url(value, message):
    with pytest.raises(AlertConfigError) as caught:
        parse_webhook_targets(value)
    assert message in str(caught.value)
    assert "SECRET" not in str(caught.value) and "CONVINTEL_ALERT_WEBHOOK_URLS" in str(caught.value)


def test_webhooks_need_a_secret_and_backoff_bounds_in_order():
    with pytest.raises(AlertConfigError, match="CONVINTEL_ALERT_WEBHOOK_SECRET is required"):
        load_alert_config(Settings(_env_file=None, alert_webhook_urls=HOOK))
    with pytest.raises(AlertConfigError, match="CAP_S must be at least"):
        load_alert_config(Settings(_env_file=None, alert_backoff_base_s=10, alert_backoff_cap_s=1))
    config = load_alert_config(Settings(_env_file=None, alert_webhook_urls=HOOK, alert_webhook_secret="s3cret"))
    assert config.enabled and config.secret == b"s3cret" and config.target(HOOK) is not None
    assert "s3cret" not in repr(config) and HOOK not in repr(config), "secrets stay out of logs and tracebacks"
    assert not load_alert_config(Settings(_env_file=None)).enabled
