"""The one timestamp rule (nlp/timestamps.py): naive times are UTC, offsets are kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from nlp.timestamps import parse_timestamp, utc_iso

PLUS_TWO = timezone(timedelta(hours=2))


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2026-03-02T10:00:00", datetime(2026, 3, 2, 10, tzinfo=UTC)),  # naive: UTC
        ("2026-03-02 10:00", datetime(2026, 3, 2, 10, tzinfo=UTC)),
        ("2026-03-02", datetime(2026, 3, 2, tzinfo=UTC)),
        ("2026-03-02T10:00:00Z", datetime(2026, 3, 2, 10, tzinfo=UTC)),
        ("2026-03-02T10:00:00z", datetime(2026, 3, 2, 10, tzinfo=UTC)),
        ("  2026-03-02T10:00:00.250Z ", datetime(2026, 3, 2, 10, 0, 0, 250_000, tzinfo=UTC)),
        ("2026-03-02T00:30:00+02:00", datetime(2026, 3, 2, 0, 30, tzinfo=PLUS_TWO)),  # aware: offset kept
        (datetime(2026, 3, 2, 10), datetime(2026, 3, 2, 10, tzinfo=UTC)),  # Parquet timestamp column
        (datetime(2026, 3, 2, 10, tzinfo=PLUS_TWO), datetime(2026, 3, 2, 10, tzinfo=PLUS_TWO)),
    ],
)
def test_times_are_read_as_aware_datetimes(value, expected):
    parsed = parse_timestamp(value)
    assert parsed == expected and parsed.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    "value", [None, "", "   ", "not-a-time", "2026-13-02T10:00:00", "yesterday", 1772445600, [], {}]
)
def test_bad_or_missing_values_are_none(value):
    assert parse_timestamp(value) is None


def test_aware_and_naive_times_compare_and_subtract():
    naive, aware = parse_timestamp("2026-03-02T10:00:00"), parse_timestamp("2026-03-02T12:30:00+02:00")
    assert (aware - naive).total_seconds() == 30 * 60


def test_utc_iso_writes_z():
    assert utc_iso(datetime(2026, 3, 2, 10)) == "2026-03-02T10:00:00Z"
    assert utc_iso(datetime(2026, 3, 2, 0, 30, tzinfo=PLUS_TWO)) == "2026-03-01T22:30:00Z"


def test_report_and_trends_read_naive_times_alike():
    """The batch report and topic trends both read a naive time as UTC (they used to differ)."""
    from service.batch.report import ReportBuilder
    from service.batch.trends import ScoredMessages, _read_record

    record = {
        "conversation_id": "c1",
        "channel": "chat",
        "started_at": "2026-03-02T23:30:00",
        "ended_at": "2026-03-03T02:00:00+02:00",  # mixing naive and aware used to raise TypeError
        "messages": [{"role": "customer", "emotions": [], "topics": []}],
        "conversation": {
            "escalation": {"level": "none", "reasons": []},
            "sentiment": None,
            "highest_urgency": None,
            "insights": {"resolution": {"label": "resolved"}},
        },
    }
    builder = ReportBuilder()
    builder.add(record)
    assert list(builder.days) == [datetime(2026, 3, 2).date()]
    assert builder.resolution.summary()["n"] == 1 and builder.resolution.values == [30 * 60.0]
    scored = ScoredMessages()
    _read_record(scored, record, "row 1", None)
    assert [m.when for m in scored.mentions] == [datetime(2026, 3, 2, 23, 30, tzinfo=UTC)]
