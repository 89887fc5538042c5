"""Times in archives and scored records: one rule everywhere.

ISO-8601 strings (`2026-03-02T10:00:00`, with `Z` or an offset such as `+02:00`) and
datetimes (Parquet timestamp columns) are read as aware datetimes. A time without an offset
(naive) is read as UTC, as the API's schemas document. A time with an offset keeps it, so
its calendar day is the day in that offset."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def assume_utc(moment: datetime) -> datetime:
    """`moment` if it is aware, else the same wall time in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_timestamp(value: Any) -> datetime | None:
    """An aware datetime from an ISO-8601 string or a datetime (naive: UTC); None for
    anything else: missing, blank, not a time, or not a string."""
    if isinstance(value, datetime):
        return assume_utc(value)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith("z"):  # ISO-8601 allows a lower-case z; fromisoformat takes only "Z"
        text = text[:-1] + "Z"
    try:
        return assume_utc(datetime.fromisoformat(text))
    except ValueError:
        return None


def utc_iso(moment: datetime) -> str:
    """`moment` in UTC as ISO-8601 with a `Z` suffix (naive: read as UTC)."""
    return assume_utc(moment).astimezone(UTC).isoformat().replace("+00:00", "Z")
