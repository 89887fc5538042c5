"""The scoring run: read, chunk, score with an engine, write and commit, chunk after chunk.

Resume rule: the checkpoint records how many input rows are consumed. `--resume` cuts the
output and errors files back to their committed state and skips every input item that ends
at or before that row (`service.batch.source`), so each input conversation ends up in the
output exactly once. When the engine writes a Parquet folder itself (Ray), the folder's
parts are the commits (`service.batch.parts`) and the same rule applies from the last one."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from nlp.archive import FileFormat, detect_format, format_of
from service.batch.checkpoint import (
    DRIVER_WRITER,
    PARTS_WRITER,
    Checkpoint,
    CheckpointError,
    checkpoint_path,
    input_fingerprint,
)
from service.batch.engines import Engine, PartsEngine, SourceEngine
from service.batch.parts import committed_parts, cut_back
from service.batch.records import RowError, Shape
from service.batch.scoring import chunk_failures
from service.batch.sinks import OUTPUT_FORMATS, ErrorSink, open_sink, remove_leftovers
from service.batch.source import ArchiveSource, ChunkPlan
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

    @classmethod
    def of(
        cls,
        checkpoint: Checkpoint,
        seconds: float,
        resumed_at_row: int,
        messages_this_run: int = 0,
        already_complete: bool = False,
    ) -> ScoreSummary:
        """The run's totals as `checkpoint` records them."""
        totals = (checkpoint.conversations, checkpoint.messages, checkpoint.errors, checkpoint.rows)
        return cls(*totals, seconds, resumed_at_row, messages_this_run, already_complete)

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
            raise ScoreJobError(f"{job.input} changed since the checkpoint was written; start again with --overwrite")
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
    output_format = format_of(job.output)
    if output_format not in OUTPUT_FORMATS:
        suffix = job.output.suffix or "(no suffix)"
        raise ScoreJobError(f"{job.output}: scored output is .jsonl, .csv or .parquet, not {suffix}")
    if not job.input.exists():
        raise ScoreJobError(f"{job.input} does not exist")
    resumed = _prepare(job, input_format, output_format)
    if resumed is not None and resumed.complete:
        return ScoreSummary.of(resumed, 0.0, resumed.rows, already_complete=True)
    for folder in {job.output.parent, job.errors_path.parent}:
        folder.mkdir(parents=True, exist_ok=True)
    size, mtime = input_fingerprint(job.input)
    checkpoint = resumed or Checkpoint(
        input=str(job.input),
        input_size=size,
        input_mtime_ns=mtime,
        output_format=output_format.value,
        shape=job.shape.value,
    )
    source = ArchiveSource(job.input, input_format, ChunkPlan(Shape(checkpoint.shape)), settings)
    source.reader  # noqa: B018 - a missing or unreadable input fails here, before anything starts
    engine = make_engine()
    try:
        parts = output_format is FileFormat.parquet and isinstance(engine, PartsEngine) and engine.writes_parts()
        writer = PARTS_WRITER if parts else DRIVER_WRITER
        if resumed is not None and resumed.writer != writer:
            raise ScoreJobError(
                f"{job.output} was written by the {resumed.writer} writer, this engine uses the {writer} one: "
                "resume with the engine that started it"
            )
        checkpoint.writer = writer
        if isinstance(engine, PartsEngine) and writer == PARTS_WRITER:
            return _run_parts(job, checkpoint, source, engine, resumed is not None)
        return _run_chunks(job, checkpoint, source, engine, output_format, resumed)
    finally:
        engine.close()


def _run_chunks(
    job: ScoreJob,
    checkpoint: Checkpoint,
    source: ArchiveSource,
    engine: Engine,
    output_format: FileFormat,
    resumed: Checkpoint | None,
) -> ScoreSummary:
    """The driver writes and commits each chunk as it comes back."""
    start_row = checkpoint.rows
    source.plan = ChunkPlan(source.plan.shape, checkpoint.rows, checkpoint.chunks)
    reader = source.reader
    on_cluster = isinstance(engine, SourceEngine) and engine.reads_on_cluster(source)
    sink = open_sink(job.output, output_format, resumed)
    errors = ErrorSink(job.errors_path, resumed.errors_bytes if resumed else None)
    try:
        # The fresh (or cut back) files are the first committed state.
        sink.commit(checkpoint)
        errors.commit(checkpoint)
        checkpoint.save(job.checkpoint_path)
        started = time.perf_counter()
        done_messages = 0
        scored_chunks = (
            engine.score_source(source) if isinstance(engine, SourceEngine) else engine.score(source.chunks())
        )
        with tqdm(
            # Read on the cluster, progress is the committed row (Parquet knows its row count).
            total=(None if reader.unit == "B" else reader.total) if on_cluster else reader.total,
            unit="rows" if on_cluster else reader.unit,
            unit_scale=True,
            desc="scoring",
            disable=not job.progress,
            dynamic_ncols=True,
            mininterval=1.0,
        ) as bar:
            for scored in scored_chunks:
                chunk = scored.chunk
                failures = chunk_failures(chunk.errors, scored.errors)
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
                bar.update((checkpoint.rows if on_cluster else reader.position) - bar.n)
                bar.set_postfix(
                    conversations=checkpoint.conversations,
                    errors=checkpoint.errors,
                    msg_per_s=f"{done_messages / elapsed:.0f}" if elapsed else "-",
                    refresh=False,
                )
        checkpoint.complete = True
        checkpoint.save(job.checkpoint_path)
        return ScoreSummary.of(checkpoint, time.perf_counter() - started, start_row, done_messages)
    finally:
        sink.close()
        errors.close()


def _run_parts(
    job: ScoreJob, checkpoint: Checkpoint, source: ArchiveSource, engine: PartsEngine, resuming: bool
) -> ScoreSummary:
    """The engine writes one part per chunk (`service.batch.parts`); the folder is the
    checkpoint of the scoring, and the errors file is written from the parts at the end."""
    if resuming:
        if not job.output.is_dir():
            raise ScoreJobError(f"{job.output} is missing; cannot resume")
        committed = cut_back(job.output)
    else:
        job.output.mkdir(parents=True)
        committed = []
    checkpoint.rows = committed[-1].last_row if committed else 0
    checkpoint.chunks = len(committed)
    checkpoint.save(job.checkpoint_path)
    start_row, start_messages = checkpoint.rows, sum(p.messages for p in committed)
    source.plan = ChunkPlan(source.plan.shape, checkpoint.rows, checkpoint.chunks)
    started = time.perf_counter()
    engine.write_parts(source, job.output)
    # A temporary still here belongs to a killed earlier writer (a task that outlived its
    # driver): no write of this run will rename it.
    remove_leftovers(job.output)
    parts = committed_parts(job.output)
    if len(parts) != sum(1 for _ in job.output.glob("part-*.parquet")):
        raise ScoreJobError(f"{job.output} has a gap in its parts; rerun with --resume")
    errors = ErrorSink(job.errors_path, None)
    try:
        errors.write([RowError(e["row"], e["reason"], e["conversation_id"]) for p in parts for e in p.errors])
        errors.commit(checkpoint)
    finally:
        errors.close()
    checkpoint.rows = parts[-1].last_row if parts else start_row
    checkpoint.chunks = checkpoint.parts = len(parts)
    checkpoint.conversations = sum(p.conversations for p in parts)
    checkpoint.messages = sum(p.messages for p in parts)
    checkpoint.errors = sum(len(p.errors) for p in parts)
    checkpoint.complete = True
    checkpoint.save(job.checkpoint_path)
    return ScoreSummary.of(checkpoint, time.perf_counter() - started, start_row, checkpoint.messages - start_messages)


__all__ = ["CheckpointError", "ScoreJob", "ScoreJobError", "ScoreSummary", "run_score"]
