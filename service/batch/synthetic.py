"""Synthetic archives for the batch benchmark and tests: the project's labelled escalation
conversations (`data/escalation/`, written by the team) replayed with new ids, times spread
over a period, and some customer turns swapped for other labelled customer messages
(`data/urgency/`), so the archive is large without repeating itself exactly.

Those files are in the source checkout only: installed, pass `data_dir`, or get a
ProjectDataUnavailable naming the folder."""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nlp.paths import project_data_path
from nlp.timestamps import parse_timestamp

_FALLBACK_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def synthetic_transcripts(
    count: int,
    *,
    days: int = 90,
    seed: int = 7,
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC),
    data_dir: Path | None = None,
) -> Iterator[dict[str, Any]]:
    """`count` transcripts (/v1/analyze bodies) spread evenly over `days` days, made from
    `data_dir` (default: the source checkout's `data/`)."""
    rng = random.Random(seed)
    data = data_dir if data_dir is not None else project_data_path()
    templates = _read_jsonl(data / "escalation" / "conversations.jsonl")
    customer_texts = [
        row["text"] for path in sorted((data / "urgency").glob("messages_*.jsonl")) for row in _read_jsonl(path)
    ]
    for index in range(count):
        template = templates[rng.randrange(len(templates))]
        times = [parse_timestamp(m.get("timestamp")) for m in template["messages"]]
        origin = next((t for t in times if t is not None), _FALLBACK_START)
        opened = start + timedelta(days=days * index / max(count, 1), minutes=rng.randrange(600))
        swap = rng.randrange(len(template["messages"])) if rng.random() < 0.5 else -1
        messages = []
        for position, (message, moment) in enumerate(zip(template["messages"], times)):
            text = message["text"]
            if position == swap and message["role"] == "customer":
                text = customer_texts[rng.randrange(len(customer_texts))]
            entry = {"id": message.get("id") or f"m{position + 1}", "role": message["role"], "text": text}
            if moment is not None:
                entry["timestamp"] = (opened + (moment - origin)).isoformat().replace("+00:00", "Z")
            messages.append(entry)
        yield {
            "conversation_id": f"conv-{index:07d}",
            "channel": template.get("channel", "other"),
            "customer_id": f"cust-{rng.randrange(count // 3 + 1):06d}",
            "messages": messages,
        }


def message_rows(transcripts: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The same conversations as one row per message, grouped by conversation."""
    for transcript in transcripts:
        for message in transcript["messages"]:
            yield {
                "conversation_id": transcript["conversation_id"],
                "message_id": message["id"],
                "role": message["role"],
                "text": message["text"],
                "timestamp": message.get("timestamp"),
                "channel": transcript["channel"],
                "customer_id": transcript["customer_id"],
            }


def write_rows(rows: Iterator[dict[str, Any]], path: Path) -> int:
    """Write rows as .jsonl, .csv (nested fields as JSON text) or .parquet; returns the count."""
    suffix = path.suffix.lower()
    count = 0
    if suffix == ".jsonl":
        with path.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")
                count += 1
        return count
    materialised = [{k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()} for row in rows]
    if suffix == ".csv":
        names = list(dict.fromkeys(k for row in materialised for k in row))
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=names)
            writer.writeheader()
            writer.writerows(materialised)
        return len(materialised)
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(materialised), path, row_group_size=1000)
        return len(materialised)
    raise ValueError(f"unknown format {suffix!r}")
