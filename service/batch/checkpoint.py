"""Durable progress of a scoring run. After each chunk the output and errors files are
fsync'd, then this checkpoint is replaced atomically (write, fsync, rename). Everything up to
the checkpoint is therefore on disk; anything after it is cut away on `--resume`."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

CHECKPOINT_VERSION = 1
DRIVER_WRITER = "driver"
"""The command writes each chunk and then this checkpoint."""
PARTS_WRITER = "parts"
"""The engine writes each chunk as a self-describing part (`service.batch.parts`)."""


class CheckpointError(ValueError):
    """No usable checkpoint, or one written for another input."""


@dataclass
class Checkpoint:
    input: str
    input_size: int
    input_mtime_ns: int
    output_format: str
    shape: str
    rows: int = 0
    """Input rows consumed: conversations and errors up to this row are in the outputs."""
    chunks: int = 0
    conversations: int = 0
    messages: int = 0
    errors: int = 0
    output_bytes: int = 0
    """Committed length of a JSONL or CSV output."""
    errors_bytes: int = 0
    parts: int = 0
    """Committed part files of a Parquet output."""
    writer: str = DRIVER_WRITER
    complete: bool = False
    version: int = CHECKPOINT_VERSION

    def save(self, path: Path) -> None:
        """Replace the checkpoint atomically and durably."""
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            json.dump(asdict(self), handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise CheckpointError(f"no checkpoint at {path}: nothing to resume") from exc
        except (OSError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"unreadable checkpoint {path}: {exc}") from exc
        if raw.get("version") != CHECKPOINT_VERSION:
            raise CheckpointError(f"checkpoint {path} has version {raw.get('version')}; expected {CHECKPOINT_VERSION}")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


def checkpoint_path(output: Path) -> Path:
    return output.with_name(output.name + ".checkpoint.json")


def input_fingerprint(path: Path) -> tuple[int, int]:
    """(size, newest mtime in ns) of a file, or of the .parquet parts in a folder."""
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    stats = [f.stat() for f in files]
    return sum(s.st_size for s in stats), max((s.st_mtime_ns for s in stats), default=0)


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
