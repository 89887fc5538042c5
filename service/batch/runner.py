"""The scoring run: read, chunk, score with an engine, write and commit, chunk after chunk.

Resume rule: the checkpoint records how many input rows are consumed. `--resume` cuts the
output and errors files back to their committed state and skips every input item that ends
at or before that row, so each input conversation ends up in the output exactly once."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from nlp.archive import FileFormat, RowReader, detect_format
from service.batch.checkpoint import Checkpoint, CheckpointError, checkpoint_path, input_fingerprint
from service.batch.engines import Engine
from service.batch.records import InputItem, Shape, read_conversations
from service.batch.scoring import make_chunks
from service.batch.sinks import OUTPUT_FORMATS, ErrorSink, open_sink
from service.settings import Settings


class ScoreJobError(ValueError):
    """The run cannot start: output exists, nothing to resume, input changed..."""


@dataclass(frozen=True)
class ScoreJob:
    input: Path
    output: Path
    errors: Path | None = None
    shape: Shape = Shape.auto
    resume: bool = False
    overwrite: bool = False
    progress: bool = True

    @property
    def errors_path(self) -> Path:
        return self.errors or self.output.with_name(self.output.name + ".errors.jsonl")

    @property
    def checkpoint_path(self) -> Path:
        return checkpoint_path(self.output)


@dataclass(frozen=True)
class ScoreSummary:
    conversations: int
    messages: int
    errors: int
    rows: int
    seconds: float
    resumed_at_row: int
    messages_this_run: int = 0
    already_complete: bool = False

    @property
    def messages_per_second(self) -> float:
        """Scoring rate of this run (a resumed run counts only what it scored itself)."""
        return self.messages_this_run / self.seconds if self.seconds > 0 else 0.0


def _prepare(job: ScoreJob, input_format: FileFormat, output_format: FileFormat) -> Checkpoint | None:
    """The checkpoint to resume from (None for a fresh run), after safety checks."""
    size, mtime = input_fingerprint(job.input)
    if job.resume:
        checkpoint = Checkpoint.load(job.checkpoint_path)
        if (checkpoint.input_size, checkpoint.input_mtime_ns) != (size, mtime):
            raise ScoreJobError(f"{job.input} changed since the checkpoint was written; start again without --resume")
        if checkpoint.output_format != output_format.value:
            raise ScoreJobError(
                f"the checkpoint was written for {checkpoint.output_format} output, not {output_format.value}"
            )
        return checkpoint
    existing = [p for p in (job.output, job.checkpoint_path, job.errors_path) if p.exists()]
    if existing and not job.overwrite:
        raise ScoreJobError(f"{existing[0]} exists: rerun with --resume to continue, or --overwrite to start again")
    for path in existing:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return None


def run_score(job: ScoreJob, settings: Settings, make_engine: Callable[[], Engine]) -> ScoreSummary:
    """Score `job.input` into `job.output` (see the module doc for the resume rule)."""
    input_format = detect_format(job.input)
    output_format = detect_format(job.output)
    if output_format not in OUTPUT_FORMATS:
        raise ScoreJobError(f"{job.output}: scored output is .jsonl, .csv or .parquet, not .{output_format.value}")
    resumed = _prepare(job, input_format, output_format)
    if resumed is not None and resumed.complete:
        return ScoreSummary(
            resumed.conversations,
            resumed.messages,
            resumed.errors,
            resumed.rows,
            0.0,
            resumed.rows,
            already_complete=True,
        )
    size, mtime = input_fingerprint(job.input)
    checkpoint = resumed or Checkpoint(
        input=str(job.input),
        input_size=size,
        input_mtime_ns=mtime,
        output_format=output_format.value,
        shape=job.shape.value,
    )
    start_row = checkpoint.rows
    reader = RowReader(job.input, input_format)
    sink = open_sink(job.output, output_format, resumed)
    errors = ErrorSink(job.errors_path, resumed.errors_bytes if resumed else None)
    engine = None
    try:
        # The fresh (or cut back) files are the first committed state.
        sink.commit(checkpoint)
        errors.commit(checkpoint)
        checkpoint.save(job.checkpoint_path)
        engine = make_engine()
        started = time.perf_counter()
        done_messages = 0
        shape = Shape(checkpoint.shape)
        items = _after_row(read_conversations(iter(reader), settings, shape), checkpoint.rows)
        chunks = make_chunks(items, settings.batch_chunk_messages, start_index=checkpoint.chunks)
        with tqdm(
            total=reader.total,
            unit=reader.unit,
            unit_scale=True,
            desc="scoring",
            disable=not job.progress,
            dynamic_ncols=True,
            mininterval=1.0,
        ) as bar:
            for scored in engine.score(chunks):
                chunk = scored.chunk
                failures = sorted([*chunk.errors, *scored.errors], key=lambda e: e.row)
                sink.write(scored.records)
                errors.write(failures)
                sink.commit(checkpoint)
                errors.commit(checkpoint)
                checkpoint.rows = chunk.last_row
                checkpoint.chunks = chunk.index + 1
                checkpoint.conversations += len(scored.records)
                checkpoint.messages += sum(len(r["messages"]) for r in scored.records)
                checkpoint.errors += len(failures)
                checkpoint.save(job.checkpoint_path)
                done_messages += sum(len(r["messages"]) for r in scored.records)
                elapsed = time.perf_counter() - started
                bar.update(reader.position - bar.n)
                bar.set_postfix(
                    conversations=checkpoint.conversations,
                    errors=checkpoint.errors,
                    msg_per_s=f"{done_messages / elapsed:.0f}" if elapsed else "-",
                    refresh=False,
                )
        checkpoint.complete = True
        checkpoint.save(job.checkpoint_path)
        return ScoreSummary(
            checkpoint.conversations,
            checkpoint.messages,
            checkpoint.errors,
            checkpoint.rows,
            time.perf_counter() - started,
            start_row,
            done_messages,
        )
    finally:
        sink.close()
        errors.close()
        if engine is not None:
            engine.close()


def _after_row(items: Iterator[InputItem], row: int) -> Iterator[InputItem]:
    """Items not yet committed: those ending after input row `row`."""
    for item in items:
        if item.last_row > row:
            yield item


__all__ = ["CheckpointError", "ScoreJob", "ScoreJobError", "ScoreSummary", "run_score"]
