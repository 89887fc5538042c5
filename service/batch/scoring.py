"""What one scoring step does, whichever engine runs it: chunks of conversations (many
conversations' messages share encoder batches) in, scored records out.

A scored record is the /v1/analyze result for one conversation (without `timing`, which
means nothing per conversation in a batch) plus where it came from: its input rows, the
customer id, and the first and last message times. CSV and Parquet hold the same record
flattened: one row per conversation, headline fields as columns and the per-message and
per-conversation results as JSON columns."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nlp.archive import RowReader
from nlp.schemas import Transcript, TranscriptAnalysis
from nlp.timestamps import assume_utc, utc_iso
from service.batch.records import InputConversation, InputItem, RowError

if TYPE_CHECKING:  # reading scored files (report, topic trends) needs no encoder stack
    from nlp.analyzer import Analyzer

log = logging.getLogger("convintel.batch")


@dataclass
class Chunk:
    """Consecutive input items scored together and committed together."""

    index: int
    conversations: list[InputConversation] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    last_row: int = 0
    """Every input row up to this one is consumed once the chunk is committed."""
    messages: int = 0


def make_chunks(items: Iterable[InputItem], chunk_messages: int, start_index: int = 0) -> Iterator[Chunk]:
    """Group items into chunks of about `chunk_messages` messages (a chunk closes once it
    reaches the size; a conversation is never split)."""
    chunk = Chunk(start_index)
    for item in items:
        if isinstance(item, RowError):
            chunk.errors.append(item)
        else:
            chunk.conversations.append(item)
            chunk.messages += len(item.transcript.messages)
        chunk.last_row = max(chunk.last_row, item.last_row)
        if chunk.messages >= chunk_messages:
            yield chunk
            chunk = Chunk(chunk.index + 1)
    if chunk.conversations or chunk.errors:
        yield chunk


def scored_record(conversation: InputConversation, analysis: TranscriptAnalysis) -> dict[str, Any]:
    """The output record for one conversation (JSON-ready)."""
    transcript = conversation.transcript
    # Aware first: a transcript may mix naive (UTC) and offset times, which do not compare.
    times = [assume_utc(m.timestamp) for m in transcript.messages if m.timestamp is not None]
    body = analysis.model_dump(mode="json", exclude={"timing"})
    return {
        "conversation_id": body.pop("conversation_id"),
        "source_rows": [conversation.first_row, conversation.last_row],
        "channel": body.pop("channel"),
        "customer_id": transcript.customer_id,
        "started_at": utc_iso(min(times)) if times else None,
        "ended_at": utc_iso(max(times)) if times else None,
        **body,
    }


def score_conversations(
    analyzer: Analyzer, conversations: Sequence[InputConversation]
) -> tuple[list[dict[str, Any]], list[RowError]]:
    """Score conversations with their messages encoded together. Should the batch fail,
    each conversation is retried alone so that one bad conversation costs only itself."""
    if not conversations:
        return [], []
    try:
        analyses = analyzer.analyze_batch([c.transcript for c in conversations])
        return [scored_record(c, a) for c, a in zip(conversations, analyses)], []
    except Exception:  # noqa: BLE001 - isolate the culprit below
        log.warning("a batch of %d conversations failed; retrying one by one", len(conversations))
    records: list[dict[str, Any]] = []
    errors: list[RowError] = []
    for conversation in conversations:
        try:
            records.append(scored_record(conversation, analyzer.analyze(conversation.transcript)))
        except Exception as exc:  # noqa: BLE001 - reported in the errors file, the run goes on
            errors.append(
                RowError(
                    conversation.first_row,
                    f"analysis failed: {type(exc).__name__}: {exc}",
                    conversation.transcript.conversation_id,
                    conversation.last_row,
                )
            )
    return records, errors


def chunk_failures(read_errors: Sequence[RowError], scoring_errors: Sequence[RowError]) -> list[RowError]:
    """A chunk's row errors as the errors file lists them: read and scoring errors, by row."""
    return sorted([*read_errors, *scoring_errors], key=lambda e: e.row)


# --- payloads between the driver and remote workers (JSON text, never pickle) -------


def conversations_to_payload(conversations: Sequence[InputConversation]) -> str:
    return json.dumps(
        [
            {"first_row": c.first_row, "last_row": c.last_row, "transcript": c.transcript.model_dump(mode="json")}
            for c in conversations
        ]
    )


def conversations_from_payload(payload: str) -> list[InputConversation]:
    return [
        InputConversation(Transcript.model_validate(entry["transcript"]), entry["first_row"], entry["last_row"])
        for entry in json.loads(payload)
    ]


def errors_to_payload(errors: Sequence[RowError]) -> str:
    return json.dumps([{**e.to_json(), "last_row": e.last_row} for e in errors])


def errors_from_payload(payload: str) -> list[RowError]:
    return [RowError(e["row"], e["reason"], e["conversation_id"], e["last_row"]) for e in json.loads(payload)]


# --- flat rows for CSV and Parquet ---------------------------------------------------

FLAT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("conversation_id", "string"),
    ("first_row", "int64"),
    ("last_row", "int64"),
    ("channel", "string"),
    ("customer_id", "string"),
    ("started_at", "string"),
    ("ended_at", "string"),
    ("model_name", "string"),
    ("model_version", "string"),
    ("messages", "int64"),
    ("customer_messages", "int64"),
    ("sentiment", "string"),
    ("sentiment_score", "double"),
    ("sentiment_trend", "string"),
    ("highest_urgency", "string"),
    ("highest_urgency_score", "double"),
    ("strongest_negative_emotion", "string"),
    ("escalation_level", "string"),
    ("escalation_recommended", "bool"),
    ("route_to", "string"),
    ("tags_json", "string"),
    ("warnings_json", "string"),
    ("messages_json", "string"),
    ("conversation_json", "string"),
)
FLAT_NAMES = tuple(name for name, _ in FLAT_COLUMNS)


def flatten(record: dict[str, Any]) -> dict[str, Any]:
    """One flat row per conversation: headline columns plus JSON columns holding the rest."""
    conversation = record["conversation"]
    sentiment = conversation.get("sentiment") or {}
    urgency = conversation.get("highest_urgency") or {}
    emotion = conversation.get("strongest_negative_emotion") or {}
    escalation = conversation["escalation"]
    return {
        "conversation_id": record["conversation_id"],
        "first_row": record["source_rows"][0],
        "last_row": record["source_rows"][1],
        "channel": record["channel"],
        "customer_id": record.get("customer_id"),
        "started_at": record.get("started_at"),
        "ended_at": record.get("ended_at"),
        "model_name": record["model"]["name"],
        "model_version": record["model"]["version"],
        "messages": conversation["messages"],
        "customer_messages": conversation["customer_messages"],
        "sentiment": sentiment.get("label"),
        "sentiment_score": sentiment.get("score"),
        "sentiment_trend": conversation["sentiment_trend"]["label"],
        "highest_urgency": urgency.get("label"),
        "highest_urgency_score": urgency.get("score"),
        "strongest_negative_emotion": emotion.get("label"),
        "escalation_level": escalation["level"],
        "escalation_recommended": escalation["recommended"],
        "route_to": escalation.get("route_to"),
        "tags_json": json.dumps(conversation.get("tags", [])),
        "warnings_json": json.dumps(record.get("warnings", [])),
        "messages_json": json.dumps(record["messages"]),
        "conversation_json": json.dumps(conversation),
    }


def read_scored(path: Path) -> Iterator[dict[str, Any]]:
    """Scored records back from a `convintel score` output (or any archive file of scored
    records: JSONL, JSON, CSV or Parquet), streaming; a bad row is a ValueError."""
    reader = RowReader(path)
    for row in reader:
        if row.fields is None:
            raise ValueError(f"{reader.where(row.number)}: {row.error}")
        yield scored_from_row(row.fields)


def scored_from_row(row: dict[str, Any]) -> dict[str, Any]:
    """The scored record of an archive row: as it is when nested (JSONL, JSON), unflattened
    when it is a flat CSV or Parquet row (`messages_json`, no `conversation`)."""
    return unflatten(row) if "messages_json" in row and "conversation" not in row else row


def unflatten(row: dict[str, Any]) -> dict[str, Any]:
    """The scored record back from a flat row (CSV values arrive as text)."""

    def text(name: str) -> str | None:
        value = row.get(name)
        return None if value is None or value == "" else str(value)

    return {
        "conversation_id": text("conversation_id"),
        "source_rows": [int(row["first_row"]), int(row["last_row"])],
        "channel": row["channel"],
        "customer_id": text("customer_id"),
        "started_at": text("started_at"),
        "ended_at": text("ended_at"),
        "model": {"name": row["model_name"], "version": row["model_version"]},
        "messages": json.loads(row["messages_json"]),
        "conversation": json.loads(row["conversation_json"]),
        "warnings": json.loads(row.get("warnings_json") or "[]"),
    }
