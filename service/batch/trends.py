"""`convintel topics trends`: read scored conversations, aggregate topic trends and write
`volume.csv`, `topics.csv`, `trends.json` and a self-contained `report.html`.

SCORED is an archive file (JSONL, JSON, CSV or Parquet; read by `nlp.archive`) with one
record per row, any of:
- a `/v1/analyze` response (what `convintel analyze --no-pretty` prints) with a
  top-level `timestamp` (ISO-8601) added: the time of the conversation;
- a `convintel score` record (its `started_at` is the time; CSV and Parquet rows are
  flat and are unflattened);
- a `GET /v1/conversations/{id}` response: each message carries its own `timestamp`
  and `analysis`;
- a `/v1/analyze/batch` response (`results`: analyses as above).
Message timestamps win over the record's (naive times are UTC, `nlp.timestamps`); records
without either are skipped and counted. Only customer messages are counted; messages
without a topic count as unassigned."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from nlp.archive import RowReader, SkipLog
from nlp.timestamps import parse_timestamp
from nlp.topics.trends import TopicMention, TopicTrends
from service.batch.scoring import scored_from_row

RECORD_TIME_FIELDS = ("timestamp", "created_at", "started_at", "updated_at")


@dataclass
class ScoredMessages(SkipLog):
    """Customer-message mentions read from a SCORED file, and what was skipped."""

    mentions: list[TopicMention] = field(default_factory=list)
    with_topics: int = 0
    """Customer messages whose analysis has at least one topic."""


def read_scored(path: Path) -> ScoredMessages:
    """Customer-message topic mentions from a SCORED file (tolerant: bad rows are skipped
    and counted, with the first problems kept for the report)."""
    result = ScoredMessages()
    reader = RowReader(path)
    for row in reader:
        where = reader.where(row.number)
        if row.fields is None:
            result.skip(f"{where}: {row.error}")
        elif isinstance(row.fields.get("results"), list):
            for index, record in enumerate(row.fields["results"]):
                _read_record(result, record, f"{where} results.{index}", _record_time(row.fields))
        else:
            try:
                record = scored_from_row(row.fields)
            except (KeyError, ValueError, TypeError) as exc:  # a flat row with a broken column
                result.skip(f"{where}: not a scored row ({exc!r})")
                continue
            _read_record(result, record, where, None)
    return result


def _record_time(record: dict) -> datetime | None:
    return next((t for t in (parse_timestamp(record.get(name)) for name in RECORD_TIME_FIELDS) if t), None)


def _read_record(result: ScoredMessages, record: Any, where: str, fallback: datetime | None) -> None:
    if not isinstance(record, dict) or not isinstance(record.get("messages"), list):
        result.skip(f"{where}: not an analysis (no 'messages' list)")
        return
    channel = str(record.get("channel") or "other")
    record_time = _record_time(record) or fallback
    for index, message in enumerate(record["messages"]):
        if not isinstance(message, dict):
            result.skip(f"{where} messages.{index}: not an object")
            continue
        analysis = message["analysis"] if isinstance(message.get("analysis"), dict) else message
        if (analysis.get("role") or message.get("role")) != "customer":
            continue
        when = parse_timestamp(message.get("timestamp")) or record_time
        if when is None:
            result.skip(f"{where} messages.{index}: no timestamp (add 'timestamp' to the record)")
            continue
        topics = analysis.get("topics") or []
        best = topics[0] if topics and isinstance(topics[0], dict) else None
        if best is not None:
            result.with_topics += 1
        sentiment = analysis.get("sentiment")
        score = sentiment.get("score") if isinstance(sentiment, dict) else None
        result.mentions.append(
            TopicMention(
                when=when,
                channel=channel,
                topic_id=int(best.get("id", -1)) if best else -1,
                topic=str(best.get("name", "")) if best else "",
                sentiment=float(score) if isinstance(score, (int, float)) else None,
                parent=int(best["parent"]) if best and isinstance(best.get("parent"), int) else None,
                parent_name=str(best.get("parent_name") or "") if best else "",
            )
        )


def write_trends(
    trends: TopicTrends, folder: Path, *, skipped: int = 0, problems: list[str] | None = None
) -> list[Path]:
    """Write volume.csv (period, topic, channel, messages; non-zero rows), topics.csv (one
    row per topic, with its parent topic), trends.json (everything) and report.html (charts)."""
    from service.batch.topic_report import render_trends_html

    folder.mkdir(parents=True, exist_ok=True)
    volume_path, topics_path = folder / "volume.csv", folder / "topics.csv"
    json_path, html_path = folder / "trends.json", folder / "report.html"
    with volume_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["period_start", "topic_id", "topic", "channel", "messages"])
        for topic in trends.topics:
            for channel, counts in topic.channels.items():
                for start, count in zip(trends.periods, counts):
                    if count:
                        writer.writerow([start.isoformat(), topic.id, topic.name, channel, count])
    with topics_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "topic_id",
                "topic",
                "messages",
                "share",
                "avg_sentiment",
                "current",
                "previous",
                "growth",
                "emerging",
                "parent_id",
                "parent",
                *(f"channel:{c}" for c in trends.channels),
            ]
        )
        for t in trends.topics:
            writer.writerow(
                [
                    t.id,
                    t.name,
                    t.messages,
                    t.share,
                    _blank(t.avg_sentiment),
                    t.current,
                    t.previous,
                    _blank(t.growth),
                    t.emerging,
                    _blank(t.parent),
                    t.parent_name,
                    *(sum(t.channels.get(c, [])) for c in trends.channels),
                ]
            )
    payload = {
        "period": trends.period,
        "periods": [p.isoformat() for p in trends.periods],
        "messages": trends.messages,
        "unassigned": trends.unassigned,
        "skipped": skipped,
        "channels": trends.channels,
        "params": trends.params,
        "emerging": [t.id for t in trends.emerging],
        "topics": [asdict(t) for t in trends.topics],
        "parents": [asdict(p) for p in trends.parents],
    }
    json_path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    html_path.write_text(render_trends_html(trends, skipped=skipped, problems=problems or []), encoding="utf-8")
    return [volume_path, topics_path, json_path, html_path]


def _blank(value: float | None) -> str | float:
    return "" if value is None else value
