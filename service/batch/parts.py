"""Chunk parts: a Parquet output written where the scoring runs (Ray write tasks), one part
per chunk, `part-{chunk:06d}.parquet`. A part is written under a temporary name, fsync'd and
renamed, so a part that exists is whole. It carries its chunk's number, last input row and
row errors in the Parquet metadata, so the folder is its own checkpoint: on `--resume`
the longest run of parts 0, 1, 2... is committed, everything after it is deleted, and
scoring carries on after that run's last row (the rule of `service.batch.source`). A chunk
with errors only still gets a part, with no rows, so the run has no holes."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.batch.checkpoint import fsync_dir
from service.batch.records import RowError
from service.batch.sinks import PART_PATTERN, flat_table, part_index, remove_leftovers, write_part_tmp

META_KEY = "convintel.chunk"


@dataclass(frozen=True)
class PartInfo:
    index: int
    last_row: int
    conversations: int
    messages: int
    errors: list[dict[str, Any]]
    """The chunk's row errors, as the errors file holds them."""


def write_chunk_part(
    folder: Path, index: int, last_row: int, records: Sequence[dict[str, Any]], errors: Sequence[RowError]
) -> None:
    """Write chunk `index`'s part atomically (a rewrite of the same chunk replaces it whole)."""
    meta = {
        "index": index,
        "last_row": last_row,
        "messages": sum(len(r["messages"]) for r in records),
        "errors": [e.to_json() for e in errors],
    }
    final = folder / PART_PATTERN.format(index=index)
    os.replace(write_part_tmp(final, flat_table(records, {META_KEY: json.dumps(meta)})), final)
    fsync_dir(folder)


def read_part_info(path: Path) -> PartInfo | None:
    """A part's chunk metadata from its footer; None when it is not a readable chunk part."""
    import pyarrow.parquet as pq

    try:
        metadata = pq.ParquetFile(path).metadata
        meta = json.loads((metadata.metadata or {})[META_KEY.encode()])
        return PartInfo(meta["index"], meta["last_row"], metadata.num_rows, meta["messages"], meta["errors"])
    except (OSError, KeyError, ValueError, TypeError):  # pyarrow's errors are OSError/ValueError kinds
        return None


def committed_parts(folder: Path) -> list[PartInfo]:
    """The committed run of parts 0, 1, 2... (stops at the first missing or unreadable one)."""
    found = {part_index(p.name): p for p in folder.glob("part-*.parquet")}
    committed: list[PartInfo] = []
    while (path := found.get(len(committed))) is not None:
        info = read_part_info(path)
        if info is None or info.index != len(committed):
            break
        committed.append(info)
    return committed


def cut_back(folder: Path) -> list[PartInfo]:
    """Keep the committed run of parts; delete later parts and temporaries. Returns the run."""
    committed = committed_parts(folder)
    remove_leftovers(folder, len(committed))
    return committed
