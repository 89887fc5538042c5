"""Reading archives for topic work: JSONL, JSON, CSV or Parquet files of messages or of
transcripts, as rows of plain dicts.

A row is either a message (`text`, optional `role`, `timestamp`, `channel`,
`conversation_id`) or a transcript (the `/v1/analyze` body: `messages` plus conversation
fields). Topics are fit on customer messages: rows without a role count as customer
messages (an export of customer queries usually has no role column)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".parquet")
TEXT_ROLES = {"customer"}


class CorpusError(ValueError):
    """The file cannot be read as an archive; the message names the file (and line)."""


@dataclass
class SkipLog:
    """How many rows were skipped, and why (the first few)."""

    skipped: int = 0
    problems: list[str] = field(default_factory=list)

    def skip(self, problem: str) -> None:
        self.skipped += 1
        if len(self.problems) < 20:  # enough to fix the file; a broken export would flood the terminal
            self.problems.append(problem)


@dataclass
class CustomerTexts(SkipLog):
    """Customer message texts from an archive, and what was skipped (with why)."""

    texts: list[str] = field(default_factory=list)


def read_rows(path: Path) -> Iterator[tuple[str, Any]]:
    """(where, row) for each row of `path`: `where` is 'file:line' for error messages.
    Rows that are not JSON objects are passed on as they are (callers skip them)."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise CorpusError(f"{path}: unsupported file type {suffix or '(none)'}; use one of {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise CorpusError(f"{path} does not exist")
    if suffix == ".parquet":
        yield from _parquet_rows(path)
    elif suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            for line, row in enumerate(csv.DictReader(handle), start=2):
                yield f"{path}:{line}", row
    elif suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CorpusError(f"{path} is not valid JSON: {exc}") from exc
        for index, row in enumerate(data if isinstance(data, list) else [data]):
            yield f"{path}[{index}]", row
    else:
        with path.open(encoding="utf-8") as handle:
            for line, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    yield f"{path}:{line}", json.loads(raw)
                except json.JSONDecodeError as exc:
                    yield f"{path}:{line}", CorpusError(f"not valid JSON ({exc.msg})")


def _parquet_rows(path: Path) -> Iterator[tuple[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - pyarrow is a declared dependency
        raise CorpusError("reading Parquet needs pyarrow") from exc
    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise CorpusError(f"{path} is not a readable Parquet file: {exc}") from exc
    row_number = 0
    for batch in parquet.iter_batches(batch_size=8192):  # bounded memory on large archives
        for row in batch.to_pylist():
            row_number += 1
            yield f"{path} row {row_number}", row


def customer_texts(path: Path, *, text_field: str = "text") -> CustomerTexts:
    """Customer message texts of an archive (message rows and transcripts' messages)."""
    result = CustomerTexts()
    for where, row in read_rows(path):
        if isinstance(row, CorpusError):
            result.skip(f"{where}: {row}")
            continue
        if not isinstance(row, dict):
            result.skip(f"{where}: not an object")
            continue
        messages = row.get("messages")
        if isinstance(messages, list):
            for index, message in enumerate(messages):
                _add_message(result, message, f"{where} messages.{index}", text_field)
        else:
            _add_message(result, row, where, text_field)
    return result


def _add_message(result: CustomerTexts, message: Any, where: str, text_field: str) -> None:
    if not isinstance(message, dict):
        result.skip(f"{where}: not an object")
        return
    role = message.get("role")
    if role not in (None, "") and str(role).lower() not in TEXT_ROLES:
        return  # agent, bot and system turns are not what customers contact us about
    text = message.get(text_field)
    if not isinstance(text, str) or not text.strip():
        result.skip(f"{where}: no '{text_field}'")
        return
    result.texts.append(text)
