"""Where a scoring run's chunks come from: the one pipeline from archive rows to chunks
(validate, group, skip what a resumed run already committed, chunk), whoever reads the rows:
this process (`RowReader`), or a Ray actor on the cluster (`service.batch.ray_pipeline`).

Resume rule: every item that ends at or before the committed row is skipped; chunk numbers
carry on from the committed chunk count."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from nlp.archive import ArchiveRow, FileFormat, RowReader
from service.batch.records import InputItem, Shape, read_conversations
from service.batch.scoring import Chunk, make_chunks
from service.settings import Settings


@dataclass(frozen=True)
class ChunkPlan:
    """How rows become chunks in this run: the rows' shape and where a resume starts."""

    shape: Shape
    start_row: int = 0
    """Input rows already committed: items ending at or before it are skipped."""
    start_index: int = 0
    """Chunks already committed: the first new chunk gets this number."""

    def to_json(self) -> str:
        return json.dumps({"shape": self.shape.value, "start_row": self.start_row, "start_index": self.start_index})

    @classmethod
    def from_json(cls, text: str) -> ChunkPlan:
        raw = json.loads(text)
        return cls(Shape(raw["shape"]), int(raw["start_row"]), int(raw["start_index"]))


def chunks_from_rows(rows: Iterator[ArchiveRow], settings: Settings, plan: ChunkPlan) -> Iterator[Chunk]:
    """The chunks still to score, in input order."""
    items = after_row(read_conversations(rows, settings, plan.shape), plan.start_row)
    return make_chunks(items, settings.batch_chunk_messages, start_index=plan.start_index)


def after_row(items: Iterator[InputItem], row: int) -> Iterator[InputItem]:
    """Items not yet committed: those ending after input row `row`."""
    for item in items:
        if item.last_row > row:
            yield item


@dataclass
class ArchiveSource:
    """A run's input: the archive, and the plan for turning it into chunks."""

    path: Path
    format: FileFormat
    plan: ChunkPlan
    settings: Settings

    @cached_property
    def reader(self) -> RowReader:
        """The reader this process uses when it reads the rows itself (it also measures progress)."""
        return RowReader(self.path, self.format)

    def chunks(self) -> Iterator[Chunk]:
        """The chunks, read in this process."""
        return chunks_from_rows(iter(self.reader), self.settings, self.plan)
