"""Append-only outputs with durable commits. JSONL and CSV grow one file; a commit fsyncs
it and returns its length. Parquet output is a folder with one part file per chunk, each
written under a temporary name and renamed once complete. On resume each sink is cut back
to its committed state, so nothing written after the last checkpoint survives."""

from __future__ import annotations

import csv
import io
import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from nlp.archive import FileFormat
from service.batch.checkpoint import Checkpoint, fsync_dir
from service.batch.records import RowError
from service.batch.scoring import FLAT_COLUMNS, FLAT_NAMES, flatten

PART_PATTERN = "part-{index:06d}.parquet"
# Formats `convintel score` writes: append-only with durable commits (a JSON array is not).
OUTPUT_FORMATS = (FileFormat.jsonl, FileFormat.csv, FileFormat.parquet)


class RecordSink(Protocol):
    def write(self, records: Sequence[dict[str, Any]]) -> None: ...
    def commit(self, checkpoint: Checkpoint) -> None: ...
    def close(self) -> None: ...


class _AppendFile:
    """An append-only file cut back to `committed` bytes when opened."""

    def __init__(self, path: Path, committed: int | None) -> None:
        if committed is None:  # a fresh run
            self.handle = path.open("wb")
        else:
            if not path.exists():
                raise FileNotFoundError(f"{path} is missing; cannot resume")
            self.handle = path.open("r+b")
            self.handle.truncate(committed)
            self.handle.seek(committed)
        self.path = path

    def write(self, data: bytes) -> None:
        self.handle.write(data)

    def sync(self) -> int:
        self.handle.flush()
        os.fsync(self.handle.fileno())
        return self.handle.tell()

    def close(self) -> None:
        self.handle.close()


class _OutputFile:
    """A single-file output: committing syncs it and records its length in the checkpoint."""

    def __init__(self, path: Path, committed: int | None) -> None:
        self.file = _AppendFile(path, committed)

    def commit(self, checkpoint: Checkpoint) -> None:
        checkpoint.output_bytes = self.file.sync()

    def close(self) -> None:
        self.file.close()


class JsonlSink(_OutputFile):
    """One scored record per line."""

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        self.file.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8"))


class CsvSink(_OutputFile):
    """One flat row per conversation (see `scoring.FLAT_COLUMNS`)."""

    def __init__(self, path: Path, committed: int | None) -> None:
        super().__init__(path, committed)
        if committed is None:
            self._write_rows([list(FLAT_NAMES)])

    def _write_rows(self, rows: list[list[Any]]) -> None:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        self.file.write(buffer.getvalue().encode("utf-8"))

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        flat = [flatten(r) for r in records]
        self._write_rows([["" if row[name] is None else row[name] for name in FLAT_NAMES] for row in flat])


class ParquetSink:
    """A folder of part files, one per committed chunk, all with the flat schema."""

    def __init__(self, folder: Path, committed_parts: int | None) -> None:
        self.folder = folder
        if committed_parts is None:
            folder.mkdir(parents=True, exist_ok=False)
            committed_parts = 0
        elif not folder.is_dir():
            raise FileNotFoundError(f"{folder} is missing; cannot resume")
        remove_leftovers(folder, committed_parts)  # parts written after the last checkpoint, and temporaries
        self.parts = committed_parts
        self._pending: Path | None = None

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        if not records:
            return
        final = self.folder / PART_PATTERN.format(index=self.parts)
        self._pending = write_part_tmp(final, flat_table(records))

    def commit(self, checkpoint: Checkpoint) -> None:
        if self._pending is not None:
            os.replace(self._pending, self.folder / PART_PATTERN.format(index=self.parts))
            fsync_dir(self.folder)
            self.parts += 1
            self._pending = None
        checkpoint.parts = self.parts

    def close(self) -> None:
        pass


def flat_table(records: Sequence[dict[str, Any]], metadata: dict[str, str] | None = None) -> Any:
    """Scored records as a `pyarrow.Table` with the flat schema (see `scoring.FLAT_COLUMNS`)."""
    import pyarrow as pa

    types = {"string": pa.string(), "int64": pa.int64(), "double": pa.float64(), "bool": pa.bool_()}
    schema = pa.schema([(name, types[kind]) for name, kind in FLAT_COLUMNS], metadata=metadata)
    return pa.Table.from_pylist([flatten(r) for r in records], schema=schema)


def write_part_tmp(final: Path, table: Any) -> Path:
    """Write `table` durably next to `final` under a temporary name, and return that name:
    renaming it to `final` is the commit, so a reader never sees half a part. The name is
    unique to this write: a worker of a killed run can still be writing the same chunk while
    a `--resume` run writes it, and two writers truncating one shared name would interleave."""
    import pyarrow.parquet as pq

    tmp = final.with_name(f"{final.name}.{uuid.uuid4().hex}.tmp")
    with tmp.open("wb") as handle:
        pq.write_table(table, handle)
        handle.flush()
        os.fsync(handle.fileno())
    return tmp


def remove_leftovers(folder: Path, keep_parts: int | None = None) -> None:
    """Delete the folder's temporaries, and its parts numbered `keep_parts` or later (None:
    keep every part)."""
    for leftover in folder.iterdir():
        index = part_index(leftover.name)
        later = keep_parts is not None and index is not None and index >= keep_parts
        if leftover.name.endswith(".tmp") or later:
            leftover.unlink(missing_ok=True)
    fsync_dir(folder)


def part_index(name: str) -> int | None:
    """The number of a committed part file (`part-000012.parquet`), else None."""
    if name.startswith("part-") and name.endswith(".parquet"):
        digits = name[len("part-") : -len(".parquet")]
        return int(digits) if digits.isdigit() else None
    return None


class ErrorSink:
    """The errors file: one JSON object per bad row, `{row, conversation_id, reason}`."""

    def __init__(self, path: Path, committed: int | None) -> None:
        self.file = _AppendFile(path, committed)

    def write(self, errors: Sequence[RowError]) -> None:
        self.file.write("".join(json.dumps(e.to_json(), ensure_ascii=False) + "\n" for e in errors).encode("utf-8"))

    def commit(self, checkpoint: Checkpoint) -> None:
        checkpoint.errors_bytes = self.file.sync()

    def close(self) -> None:
        self.file.close()


def open_sink(path: Path, fmt: FileFormat, checkpoint: Checkpoint | None) -> RecordSink:
    """The sink for `fmt`, fresh (no checkpoint) or cut back to `checkpoint`."""
    if fmt is FileFormat.parquet:
        return ParquetSink(path, checkpoint.parts if checkpoint else None)
    committed = checkpoint.output_bytes if checkpoint else None
    if fmt is FileFormat.jsonl:
        return JsonlSink(path, committed)
    if fmt is FileFormat.csv:
        return CsvSink(path, committed)
    raise ValueError(f"{path}: no {fmt.value} output; scored output is .jsonl, .csv or .parquet")
