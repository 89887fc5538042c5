"""The stages of a Ray scoring run: one Ray Data dataset over the whole input.

    source -> [ChunkBuilder, one actor] -> ChunkScorer (actor pool) -> driver, or ChunkPartsDatasink

- Source, on the cluster (a JSONL or Parquet path every node can read): Ray read tasks,
  `ray.data.read_parquet` for Parquet and `JsonlLinesDatasource` (a `FileBasedDatasource`)
  for JSONL. JSONL is not read with `ray.data.read_json`: that parses with pandas/pyarrow,
  which drops a whole file for one bad line and retypes values (dates), where the archive
  reader reports a bad line with its number and goes on. Rows then become chunks in
  `ChunkBuilder`, one actor fed in input order: numbering rows, grouping message rows
  into conversations and catching repeated ones is sequential by nature, and this actor
  runs exactly the code the driver runs (`source.chunks_from_rows`).
- Source, on the driver (CSV, JSON, a path only the driver sees): the driver reads and
  chunks, and `DriverFeedDatasource` streams its chunks into the dataset through a
  bounded queue.
- `ChunkScorer`: a `map_batches` callable class on a fixed actor pool; each actor loads
  the analyzer once per run and scores one chunk per call.
- Sink: rows stream back to the driver, which writes and checkpoints them in order, or,
  for a Parquet folder output, `ChunkPartsDatasink` writes one part per chunk in Ray write
  tasks (`service.batch.parts`).

Chunks and results travel as JSON text, never pickled objects."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from ray.data import Datasink, Datasource, ReadTask
from ray.data.block import Block, BlockAccessor, BlockMetadata
from ray.data.datasource import FileBasedDatasource

from nlp.archive import ArchiveRow, decode_line, jsonl_row, parquet_row
from service.batch.parts import write_chunk_part
from service.batch.records import RowError
from service.batch.scoring import (
    Chunk,
    chunk_failures,
    conversations_from_payload,
    conversations_to_payload,
    errors_from_payload,
    errors_to_payload,
    score_conversations,
)
from service.batch.source import ChunkPlan, chunks_from_rows
from service.settings import Settings

LINES_PER_BLOCK = 1024  # JSONL lines per block read: small blocks keep the builder streaming
_READ_BYTES = 1 << 20

CHUNK_SCHEMA = pa.schema(
    [("index", pa.int64()), ("last_row", pa.int64()), ("conversations", pa.string()), ("errors", pa.string())]
)
"""A chunk to score: its conversations (`conversations_to_payload`) and its read errors."""
SCORED_SCHEMA = pa.schema(
    [("index", pa.int64()), ("last_row", pa.int64()), ("records", pa.string()), ("errors", pa.string())]
)
"""A scored chunk: its records (JSON list) and all its row errors (read and scoring), by row."""


def chunk_row(chunk: Chunk) -> dict[str, Any]:
    """A chunk as a `CHUNK_SCHEMA` row."""
    return {
        "index": chunk.index,
        "last_row": chunk.last_row,
        "conversations": conversations_to_payload(chunk.conversations),
        "errors": errors_to_payload(chunk.errors),
    }


@dataclass(frozen=True)
class ScoredRow:
    """A `SCORED_SCHEMA` row, decoded."""

    index: int
    last_row: int
    records: list[dict[str, Any]]
    errors: list[RowError]

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ScoredRow:
        return cls(
            int(row["index"]), int(row["last_row"]), json.loads(row["records"]), errors_from_payload(row["errors"])
        )


# --- sources ---------------------------------------------------------------------------


class JsonlLinesDatasource(FileBasedDatasource):
    """A JSONL file's lines, numbered as the archive reader numbers them (a line is up to
    and including `\\n`; blank lines count), then one `end` row: the builder's cue to flush."""

    def __init__(self, path: str, **kwargs: Any) -> None:
        super().__init__(path, file_extensions=None, **kwargs)

    def _read_stream(self, f: Any, path: str) -> Iterator[Block]:
        numbers: list[int] = []
        texts: list[str] = []
        for number, raw in enumerate(_raw_lines(f), start=1):
            numbers.append(number)
            texts.append(decode_line(raw, number == 1))
            if len(numbers) >= LINES_PER_BLOCK:
                yield _lines_block(numbers, texts, end=False)
                numbers, texts = [], []
        if numbers:
            yield _lines_block(numbers, texts, end=False)
        yield _lines_block([0], [""], end=True)


def _lines_block(numbers: list[int], texts: list[str], end: bool) -> pa.Table:
    return pa.table({"line": numbers, "text": texts, "end": [end] * len(numbers)})


def _raw_lines(handle: Any) -> Iterator[bytes]:
    """The lines of a binary stream, split on b"\\n" only (as iterating a file is)."""
    rest = b""
    while block := handle.read(_READ_BYTES):
        lines = (rest + block).split(b"\n")
        rest = lines.pop()
        for line in lines:
            yield line + b"\n"
    if rest:
        yield rest


class DriverFeedDatasource(Datasource):
    """Chunks the driver reads itself, streamed into the dataset through `feed` (a
    `ray.util.queue.Queue` of `CHUNK_SCHEMA` rows, None at the end). One read task."""

    def __init__(self, feed: Any) -> None:
        self._feed = feed

    def estimate_inmemory_data_size(self) -> int | None:
        return None

    def get_read_tasks(
        self, parallelism: int, per_task_row_limit: int | None = None, data_context: Any = None
    ) -> list[ReadTask]:
        feed = self._feed

        def read() -> Iterable[Block]:
            while (row := feed.get()) is not None:
                yield pa.Table.from_pylist([row], schema=CHUNK_SCHEMA)

        return [ReadTask(read, BlockMetadata(num_rows=None, size_bytes=None, exec_stats=None, input_files=None))]


# --- rows to chunks, in one actor --------------------------------------------------------

_BARRIER = object()
_END = object()


@dataclass(frozen=True)
class _Failure:
    error: BaseException


class _Pump:
    """Runs a pull-style generator pipeline (`build(rows)`) over rows pushed in batches: a
    thread runs the pipeline; `push` hands it rows and returns what it could yield from
    them. It can yield nothing more once it asks for a row after the last one pushed."""

    def __init__(self, build: Callable[[Iterator[Any]], Iterator[Any]]) -> None:
        self._rows: queue.Queue[Any] = queue.Queue()
        self._out: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._run, args=(build,), name="convintel-chunks", daemon=True)
        self._thread.start()

    def _pull(self) -> Iterator[Any]:
        while True:
            item = self._rows.get()
            if item is _END:
                return
            if item is _BARRIER:
                self._out.put(_BARRIER)
            else:
                yield item

    def _run(self, build: Callable[[Iterator[Any]], Iterator[Any]]) -> None:
        try:
            for produced in build(self._pull()):
                self._out.put(produced)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the actor by push()
            self._out.put(_Failure(exc))
        self._out.put(_END)

    def push(self, rows: Iterable[Any], end: bool) -> list[Any]:
        for row in rows:
            self._rows.put(row)
        self._rows.put(_END if end else _BARRIER)
        produced: list[Any] = []
        while (item := self._out.get()) is not _BARRIER and item is not _END:
            if isinstance(item, _Failure):
                raise item.error
            produced.append(item)
        return produced


class ChunkBuilder:
    """Rows in input order to chunks (run on one actor; see the module doc). `kind` is
    "jsonl" (line batches from `JsonlLinesDatasource`) or "parquet" (row batches from
    `read_parquet`; the input has `total_rows`, so the last one is known)."""

    def __init__(self, settings_json: str, plan_json: str, kind: str, total_rows: int | None = None) -> None:
        settings = Settings.model_validate_json(settings_json)
        plan = ChunkPlan.from_json(plan_json)
        self.kind, self.total_rows, self.rows_seen = kind, total_rows, 0
        self._pump = _Pump(lambda rows: chunks_from_rows(rows, settings, plan))

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows, end = self._rows(batch)
        chunks = self._pump.push(rows, end)
        return pa.Table.from_pylist([chunk_row(c) for c in chunks], schema=CHUNK_SCHEMA)

    def _rows(self, batch: pa.Table) -> tuple[list[ArchiveRow], bool]:
        if self.kind == "jsonl":
            lines = batch.to_pydict()
            parsed = [jsonl_row(n, t) for n, t, e in zip(lines["line"], lines["text"], lines["end"]) if not e]
            return [r for r in parsed if r is not None], any(lines["end"])
        rows = []
        for values in batch.to_pylist():
            self.rows_seen += 1
            rows.append(parquet_row(self.rows_seen, values))
        return rows, self.rows_seen == self.total_rows


# --- scoring -------------------------------------------------------------------------------


class ChunkScorer:
    """A `map_batches` callable class: loads the analyzer once per actor, then scores one
    chunk per call (conversations encoded together, as in every engine)."""

    def __init__(self, settings_json: str) -> None:
        from service.runtime import load_analyzer

        self.analyzer = load_analyzer(Settings.model_validate_json(settings_json))

    def __call__(self, batch: pa.Table) -> pa.Table:
        out = []
        for row in batch.to_pylist():
            records, errors = score_conversations(self.analyzer, conversations_from_payload(row["conversations"]))
            failures = chunk_failures(errors_from_payload(row["errors"]), errors)
            out.append({**row, "records": json.dumps(records), "errors": errors_to_payload(failures)})
        return pa.Table.from_pylist(out, schema=SCORED_SCHEMA)


# --- sink ------------------------------------------------------------------------------------


class ChunkPartsDatasink(Datasink[None]):
    """Writes each scored chunk as its own part of a Parquet folder (`service.batch.parts`)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def write(self, blocks: Iterable[Block], ctx: Any) -> None:
        folder = Path(self.folder)
        for block in blocks:
            for row in BlockAccessor.for_block(block).to_arrow().to_pylist():
                scored = ScoredRow.from_row(row)
                write_chunk_part(folder, scored.index, scored.last_row, scored.records, scored.errors)
