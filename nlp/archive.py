"""Reading archive files row by row: the one reader behind `convintel score`, `report`,
`topics fit` and `topics trends`, so every command takes the same file types.

Formats, by suffix:
- `.jsonl` / `.ndjson`: one JSON object per line; rows are numbered by line.
- `.json`: one JSON array of objects (or one object), read incrementally, so a large array
  streams like JSONL; rows are numbered from 1. A syntax error ends the file there.
- `.csv`: a header, then one row per record; rows are numbered by the line they start on
  (the header is line 1). Empty cells mean "not given".
- `.parquet` / `.pq`: a file or a folder of `.parquet` parts; rows are numbered from 1.

What a row means is the caller's business (a transcript, a message, a scored record); this
module yields each as a plain dict, or says why it could not be read, and never stops at a
bad row. Nested fields that flat formats carry as JSON text (`messages`, `metadata`) are
decoded. Memory stays flat: rows are read one at a time (Parquet in batches), and pyarrow is
imported only for Parquet. No HTTP or settings types here."""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import IO, Any


class FileFormat(str, Enum):
    jsonl = "jsonl"
    json = "json"
    csv = "csv"
    parquet = "parquet"


SUFFIXES = {
    ".jsonl": FileFormat.jsonl,
    ".ndjson": FileFormat.jsonl,
    ".json": FileFormat.json,
    ".csv": FileFormat.csv,
    ".parquet": FileFormat.parquet,
    ".pq": FileFormat.parquet,
}
NESTED_FIELDS = ("messages", "metadata")
"""Fields a flat format (CSV cells, some Parquet exports) may hold as JSON text: an array
or object given as text is decoded, anything else is left as it is."""
PARQUET_BATCH_ROWS = 8192  # rows decoded at a time: bounded memory however wide the rows are
_READ_BYTES = 1 << 20
_SKIP_LOG_PROBLEMS = 20  # enough to fix a file; a broken export would flood the terminal


class ArchiveError(ValueError):
    """The file cannot be read at all (missing, unsupported type, unreadable header or
    Parquet metadata); the message names the file."""


def format_of(path: Path) -> FileFormat | None:
    """The format its suffix names, or None for another suffix."""
    return SUFFIXES.get(path.suffix.lower())


def detect_format(path: Path) -> FileFormat:
    """The format from the file name (see the module doc)."""
    fmt = format_of(path)
    if fmt is None:
        # Both wordings: "unknown format" is what `convintel score` has always said.
        raise ArchiveError(
            f"{path}: unsupported file type {path.suffix or '(no suffix)'!r} (unknown format); "
            "use .jsonl, .json, .csv or .parquet"
        )
    return fmt


@dataclass(frozen=True)
class ArchiveRow:
    """One row: its number (see the module doc) and fields, or why it could not be read."""

    number: int
    fields: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class SkipLog:
    """For tolerant readers: how many rows (or messages) were skipped, and why (the first few)."""

    skipped: int = 0
    problems: list[str] = field(default_factory=list)

    def skip(self, problem: str) -> None:
        self.skipped += 1
        if len(self.problems) < _SKIP_LOG_PROBLEMS:
            self.problems.append(problem)


class RowReader:
    """Iterates an archive's rows (`ArchiveRow`); `position` / `total` measure progress in
    `unit`: bytes for the text formats, rows for Parquet."""

    def __init__(self, path: Path, fmt: FileFormat | None = None) -> None:
        if fmt is None:
            fmt = detect_format(path)
        if not path.exists():
            raise ArchiveError(f"{path} does not exist")
        self.path = path
        self.format = fmt
        self.position = 0
        if fmt is FileFormat.parquet:
            self._parquet_files = parquet_parts(path)
            self.total = sum(_parquet_rows(p) for p in self._parquet_files)
            self.unit = "rows"
        else:
            if path.is_dir():
                raise ArchiveError(f"{path} is a folder; only Parquet input may be a folder of parts")
            self.total = path.stat().st_size
            self.unit = "B"

    def where(self, number: int) -> str:
        """A row's place for messages: `file:line` in JSONL and CSV, `file row N` otherwise."""
        if self.format in (FileFormat.jsonl, FileFormat.csv):
            return f"{self.path}:{number}"
        return f"{self.path} row {number}"

    def __iter__(self) -> Iterator[ArchiveRow]:
        readers = {
            FileFormat.jsonl: self._jsonl,
            FileFormat.json: self._json,
            FileFormat.csv: self._csv,
            FileFormat.parquet: self._parquet,
        }
        return readers[self.format]()

    def _advance(self, size: int) -> None:
        self.position += size

    def _lines(self) -> Iterator[str]:
        with self.path.open("rb") as handle:
            for index, raw in enumerate(handle):
                self.position += len(raw)
                yield decode_line(raw, index == 0)

    def _jsonl(self) -> Iterator[ArchiveRow]:
        for number, line in enumerate(self._lines(), start=1):
            row = jsonl_row(number, line)
            if row is not None:
                yield row

    def _json(self) -> Iterator[ArchiveRow]:
        decoder = json.JSONDecoder()
        with self.path.open("rb") as handle:
            text = _TextBuffer(handle, self._advance)
            first = text.next_char()
            if not first:
                return
            if first != "[":  # one value: the file is one row
                value, error = text.value(decoder)
                yield ArchiveRow(1, error=error) if error else _object_row(1, value)
                if not error and text.next_char():
                    yield ArchiveRow(2, error="invalid JSON: more data after the first value")
                return
            text.at += 1
            number = 0
            while True:
                char = text.next_char()
                if char == "]":
                    text.at += 1
                    break
                number += 1
                if not char:
                    yield ArchiveRow(number, error="invalid JSON: the array is not closed")
                    return
                value, error = text.value(decoder)
                if error:
                    yield ArchiveRow(number, error=f"{error}; the rest of the file cannot be read")
                    return
                yield _object_row(number, value)
                char = text.next_char()
                if char == ",":
                    text.at += 1
                elif char == "]":
                    text.at += 1
                    break
                else:
                    yield ArchiveRow(
                        number + 1,
                        error=f"invalid JSON: expected ',' or ']' after row {number}; "
                        "the rest of the file cannot be read",
                    )
                    return
            if text.next_char():
                yield ArchiveRow(number + 1, error="invalid JSON: more data after the closing ']'")

    def _csv(self) -> Iterator[ArchiveRow]:
        reader = csv.reader(self._lines(), strict=True)  # an unclosed quote is an error, not the rest of the file
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ArchiveError(f"{self.path}: unreadable CSV header: {exc}") from exc
        header = [name.strip() for name in header]
        last_line = reader.line_num
        while True:
            start = last_line + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield ArchiveRow(start, error=f"malformed CSV: {exc}")
                last_line = reader.line_num
                continue
            last_line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                yield ArchiveRow(start, error=f"{len(values)} fields where the header has {len(header)}")
                continue
            # Empty cells mean "not given": optional fields then take their defaults.
            yield ArchiveRow(start, fields=_decode_nested({k: v for k, v in zip(header, values) if v != ""}))

    def _parquet(self) -> Iterator[ArchiveRow]:
        import pyarrow.parquet as pq

        number = 0
        for part in self._parquet_files:
            for batch in pq.ParquetFile(part).iter_batches(batch_size=PARQUET_BATCH_ROWS):
                for row in batch.to_pylist():
                    number += 1
                    self.position = number
                    yield parquet_row(number, row)


def jsonl_row(number: int, line: str) -> ArchiveRow | None:
    """Line `number` of a JSONL file as a row; None for a blank line (skipped, still counted)."""
    if not line.strip():
        return None
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        return ArchiveRow(number, error=f"invalid JSON: {exc.msg} at column {exc.colno}")
    return _object_row(number, value)


def parquet_row(number: int, values: dict[str, Any]) -> ArchiveRow:
    """A Parquet row (`pyarrow` `to_pylist` item) as a row: nulls mean "not given"."""
    return ArchiveRow(number, fields=_decode_nested({k: v for k, v in values.items() if v is not None}))


def decode_line(raw: bytes, first: bool) -> str:
    """A JSONL or CSV line as text: bad UTF-8 becomes U+FFFD (one odd byte must not make
    the whole file unreadable) and the first line loses its byte-order mark."""
    line = raw.decode("utf-8", errors="replace")
    return line.lstrip("\ufeff") if first else line


def _object_row(number: int, value: Any) -> ArchiveRow:
    if not isinstance(value, dict):
        return ArchiveRow(number, error=f"a row must be a JSON object, not {type(value).__name__}")
    return ArchiveRow(number, fields=_decode_nested(value))


def _decode_nested(fields: dict[str, Any]) -> dict[str, Any]:
    for name in NESTED_FIELDS:
        value = fields.get(name)
        # Only arrays and objects: a flat scored row's `messages` is a count, "4" stays "4".
        if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
            try:
                fields[name] = json.loads(value)
            except json.JSONDecodeError:
                pass  # left as text: the caller's validation names the field
    return fields


class _TextBuffer:
    """A file's text decoded incrementally (bad UTF-8 replaced) in a sliding buffer, for
    reading one JSON value after another without holding the whole file."""

    def __init__(self, handle: IO[bytes], on_read: Callable[[int], None]) -> None:
        self._handle = handle
        self._decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
        self._on_read = on_read
        self.buffer = ""
        self.at = 0
        self.eof = False

    def more(self) -> bool:
        """Append the next block of the file; False when there is nothing left to read."""
        if self.eof:
            return False
        # At least as much as is buffered already: a value spanning many blocks is re-parsed
        # only a logarithmic number of times.
        raw = self._handle.read(max(_READ_BYTES, len(self.buffer) - self.at))
        self._on_read(len(raw))
        self.eof = not raw
        self.buffer = self.buffer[self.at :] + self._decode(raw, final=self.eof)
        self.at = 0
        return True

    def next_char(self) -> str:
        """The next character that is not white space (left unread), or '' at the end."""
        while True:
            while self.at < len(self.buffer) and self.buffer[self.at] in " \t\r\n\ufeff":
                self.at += 1
            if self.at < len(self.buffer):
                return self.buffer[self.at]
            if not self.more():
                return ""

    def value(self, decoder: json.JSONDecoder) -> tuple[Any, str | None]:
        """The JSON value at the read position and None, or None and why it is invalid."""
        while True:
            try:
                value, end = decoder.raw_decode(self.buffer, self.at)
            except json.JSONDecodeError as exc:
                # An error near the end of the buffer (or an unterminated string) may only mean
                # the value goes on in the next block; anything earlier is a real error.
                maybe_cut = exc.pos >= len(self.buffer) - 16 or exc.msg.startswith("Unterminated string")
                if maybe_cut and self.more():
                    continue
                return None, f"invalid JSON: {exc.msg}"
            if end == len(self.buffer) and self.more():
                continue  # a number or literal may go on in the next block
            self.at = end
            return value, None


def parquet_parts(path: Path) -> list[Path]:
    """The Parquet files of an archive, in reading order: the file, or a folder's parts
    (hidden and `_` files left out) sorted by name."""
    if path.is_dir():
        parts = sorted(p for p in path.glob("*.parquet") if not p.name.startswith((".", "_")))
        if not parts:
            raise ArchiveError(f"{path} holds no .parquet files")
        return parts
    return [path]


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).metadata.num_rows
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise ArchiveError(f"{path}: not a readable Parquet file: {exc}") from exc
