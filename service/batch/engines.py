"""Scoring engines: each turns a stream of chunks into scored chunks, in input order.

- `LocalEngine` scores in this process with one analyzer.
- `WorkerPoolEngine` scores in worker processes on this machine (the standard library's
  process pool), each with its own analyzer and an equal share of the torch threads. Two
  single-threaded workers keep both cores of a small machine busy: while one runs spaCy
  or writes its summaries (one core), the other encodes.
- `RayEngine` runs one Ray Data dataset over the whole input: read on the cluster when it
  can be, scored by a pool of actors that each load the analyzer once (`map_batches` with a
  callable class), and written by the driver or, for a Parquet folder, by Ray write tasks
  (`service.batch.ray_pipeline`). The same chunks go through the same
  `score_conversations`, so every engine writes the same records.

Results come back in input order; the driver checkpoints after each chunk (`runner`)."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from nlp.analyzer import Analyzer
from nlp.archive import FileFormat, parquet_parts
from nlp.extras import MissingExtra, require
from service.batch.records import RowError
from service.batch.scoring import (
    Chunk,
    conversations_from_payload,
    conversations_to_payload,
    errors_from_payload,
    errors_to_payload,
    score_conversations,
)
from service.batch.source import ArchiveSource
from service.settings import Settings


class EngineError(RuntimeError):
    """The engine cannot start (e.g. no Ray cluster at the address)."""


@dataclass
class ScoredChunk:
    chunk: Chunk
    records: list[dict[str, Any]]
    errors: list[RowError] = field(default_factory=list)
    """Scoring failures; the chunk's read errors stay in `chunk.errors`."""


class Engine(Protocol):
    name: str

    def score(self, chunks: Iterator[Chunk]) -> Iterator[ScoredChunk]: ...
    def close(self) -> None: ...


@runtime_checkable
class SourceEngine(Engine, Protocol):
    """An engine that takes the whole input, and may read it itself (Ray on the cluster)."""

    def score_source(self, source: ArchiveSource) -> Iterator[ScoredChunk]: ...
    def reads_on_cluster(self, source: ArchiveSource) -> bool: ...


@runtime_checkable
class PartsEngine(Protocol):
    """An engine that can write a Parquet folder output itself, one part per chunk (`parts`)."""

    def writes_parts(self) -> bool: ...
    def write_parts(self, source: ArchiveSource, folder: Path) -> None: ...


class LocalEngine:
    """Scores chunks in this process."""

    name = "local"

    def __init__(self, analyzer: Analyzer) -> None:
        self.analyzer = analyzer

    def score(self, chunks: Iterator[Chunk]) -> Iterator[ScoredChunk]:
        for chunk in chunks:
            records, errors = score_conversations(self.analyzer, chunk.conversations)
            yield ScoredChunk(chunk, records, errors)

    def close(self) -> None:
        pass


def score_payload(analyzer: Analyzer, payload: str) -> tuple[str, str]:
    """Score one chunk that travelled as JSON text (`conversations_to_payload`); the records
    and the scoring errors go back as JSON text too (no pickled objects)."""
    records, errors = score_conversations(analyzer, conversations_from_payload(payload))
    return json.dumps(records), errors_to_payload(errors)


_worker_analyzer: Analyzer | None = None
"""The analyzer of a `WorkerPoolEngine` worker process, loaded by its first chunk."""


def _exit_with_parent(parent_pid: int, interval_s: float = 1.0) -> None:
    """Pool initializer: end this worker when the driver is gone. A driver killed with
    SIGKILL cannot stop its pool, and the orphans would sit on their models' memory."""
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval_s)
        os._exit(1)

    threading.Thread(target=watch, name="convintel-parent-watch", daemon=True).start()


def _score_in_worker(settings_json: str, payload: str) -> tuple[str, str]:
    global _worker_analyzer
    if _worker_analyzer is None:
        from service.runtime import load_analyzer

        # Loaded here rather than in a pool initializer, so that a bad bundle or policy
        # reaches the driver as its own error, not as a broken pool.
        _worker_analyzer = load_analyzer(Settings.model_validate_json(settings_json))
    return score_payload(_worker_analyzer, payload)


def worker_settings(settings: Settings, workers: int) -> Settings:
    """The settings of one of `workers` worker processes: an equal share of the threads."""
    return settings.model_copy(
        update={
            "torch_threads": max(1, settings.torch_threads // workers),
            "onnx_threads": max(1, settings.onnx_threads // workers),
        }
    )


class WorkerPoolEngine:
    """Scores chunks in `workers` processes on this machine. Each loads the analyzer once
    and runs torch (and ONNX Runtime) with an equal share of the configured threads. At most
    two chunks per worker are in flight, so the driver's memory stays bounded, and results
    are yielded in input order."""

    name = "local"

    def __init__(self, settings: Settings, workers: int) -> None:
        from nlp.backends import prepare_encoder
        from nlp.bundle import load_bundle

        # Checked (and an ONNX graph exported) once here: a bad bundle fails with its own
        # error before any worker starts, and workers never race to write the graph.
        bundle = load_bundle(settings.model_path)
        prepare_encoder(
            settings.encoder_config(), max_seq_length=bundle.manifest.encoder.max_seq_length, adapter=bundle.adapter
        )
        self.workers = workers
        self._settings_json = worker_settings(settings, workers).model_dump_json()
        # spawn, not fork: a forked copy of a process that has started threads (torch,
        # tqdm) can deadlock.
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_exit_with_parent,
            initargs=(os.getpid(),),
        )

    def score(self, chunks: Iterator[Chunk]) -> Iterator[ScoredChunk]:
        in_flight: deque[tuple[Chunk, Future[tuple[str, str]]]] = deque()
        for chunk in chunks:
            payload = conversations_to_payload(chunk.conversations)
            in_flight.append((chunk, self._pool.submit(_score_in_worker, self._settings_json, payload)))
            if len(in_flight) >= 2 * self.workers:
                yield self._collect(*in_flight.popleft())
        while in_flight:
            yield self._collect(*in_flight.popleft())

    @staticmethod
    def _collect(chunk: Chunk, future: Future[tuple[str, str]]) -> ScoredChunk:
        try:
            records, errors = future.result()
        except BrokenProcessPool as exc:
            raise EngineError(f"a scoring worker process died ({exc}); rerun with --resume") from None
        return ScoredChunk(chunk, json.loads(records), errors_from_payload(errors))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class RayEngine:
    """Scores on Ray Data: a local Ray started here, the Ray this process already joined,
    or the cluster at `address` (else `CONVINTEL_RAY_ADDRESS`, else `RAY_ADDRESS`). Each run
    is one streaming dataset over the whole input, scored by one pool of actors that load
    the analyzer once (see `service.batch.ray_pipeline`)."""

    name = "ray"

    def __init__(self, settings: Settings, address: str | None = None, num_cpus: int | None = None) -> None:
        try:
            ray = require("ray", "ray", "--engine ray")
        except MissingExtra as exc:
            raise EngineError(str(exc)) from exc
        self.settings = settings
        address = address or settings.ray_address or os.environ.get("RAY_ADDRESS")
        # A Ray this process already joined is used as it is, and left running.
        self._owns_ray = not ray.is_initialized()
        try:
            if not self._owns_ray:
                pass
            elif address:
                ray.init(address=address, log_to_driver=False)
            else:
                cpus = num_cpus or settings.ray_num_cpus or os.cpu_count() or 1
                # A private local Ray: no dashboard, quiet, gone when this process ends.
                ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
            self._cpus = int(ray.cluster_resources().get("CPU", 1))
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise EngineError(f"cannot start Ray{f' at {address}' if address else ''}: {exc}") from exc
        # Ray Client (ray://) runs read tasks on the cluster, where the driver's files are not.
        self._client = ray.util.client.ray.is_connected()
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # results come back in input order
        ctx.enable_progress_bars = False  # the CLI shows its own
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # its plans and stats would drown the CLI's
        # The V1 Parquet read runs as read tasks that take the CPUs we give them (none); V2
        # first lists files in a task that needs a whole CPU, which the scoring actors of a
        # small Ray already hold, and would wait forever.
        ctx.use_datasource_v2 = False
        self.actors = max(1, self._cpus // settings.ray_cpus_per_actor)
        # Each worker runs torch with the threads its CPUs allow.
        actor_settings = settings.model_copy(update={"torch_threads": settings.ray_cpus_per_actor})
        self._settings_json = actor_settings.model_dump_json()
        self._feed_errors: list[BaseException] = []
        """What stopped the driver reading its input (raised once the dataset ends)."""

    def reads_on_cluster(self, source: ArchiveSource) -> bool:
        """Whether Ray reads `source` itself: a JSONL or Parquet path, unless the settings
        say only the driver sees it (or the driver is a Ray Client, which never shares files)."""
        return (
            source.format in (FileFormat.jsonl, FileFormat.parquet)
            and not self.settings.ray_read_on_driver
            and not self._client
        )

    def score(self, chunks: Iterator[Chunk]) -> Iterator[ScoredChunk]:
        """Score chunks the driver reads itself, in input order."""
        return self._collect(self._scored(self._driver_chunks(chunks)))

    def score_source(self, source: ArchiveSource) -> Iterator[ScoredChunk]:
        """Score a run's input, read on the cluster when it can be, in input order."""
        if not self.reads_on_cluster(source):
            return self.score(source.chunks())
        return self._collect(self._scored(self._cluster_chunks(source)))

    def writes_parts(self) -> bool:
        """Whether Ray writes a Parquet folder output: not through Ray Client, whose driver
        does not see the cluster's files."""
        return not self._client

    def write_parts(self, source: ArchiveSource, folder: Path) -> None:
        """Score a run's input into one part per chunk in `folder`, written by Ray write tasks."""
        from service.batch.ray_pipeline import ChunkPartsDatasink

        cluster = self.reads_on_cluster(source)
        chunks = self._cluster_chunks(source) if cluster else self._driver_chunks(source.chunks())
        # Writing a part is I/O: it takes no CPU from the scoring actors.
        self._scored(chunks).write_datasink(ChunkPartsDatasink(str(folder)), ray_remote_args={"num_cpus": 0})
        self._raise_feed_error()

    def _cluster_chunks(self, source: ArchiveSource) -> Any:
        import ray

        from service.batch.ray_pipeline import ChunkBuilder, JsonlLinesDatasource

        # Reading and chunking are light next to the encoder: they take no CPU from the actors.
        if source.format is FileFormat.parquet:
            # The archive reader's parts, in its order (`.pq` files included).
            parts = [str(p) for p in parquet_parts(source.path)]
            rows = ray.data.read_parquet(parts, file_extensions=None, num_cpus=0)
            kind, total = "parquet", source.reader.total
        else:
            rows = ray.data.read_datasource(JsonlLinesDatasource(str(source.path)), num_cpus=0)
            kind, total = "jsonl", None
        plan = source.plan.to_json()
        return rows.map_batches(
            ChunkBuilder,
            fn_constructor_kwargs={
                "settings_json": source.settings.model_dump_json(),
                "plan_json": plan,
                "kind": kind,
                "total_rows": total,
            },
            batch_size=None,  # whole blocks, in order: the builder sees every row once
            batch_format="pyarrow",
            # One block at a time: with several in flight, the actor may run a later block
            # first (seen with a Parquet folder: its second block before its first), and
            # preserve_order only orders what an operator outputs, not what its actor runs.
            compute=ray.data.ActorPoolStrategy(size=1, max_tasks_in_flight_per_actor=1),
            num_cpus=0,
        )

    def _driver_chunks(self, chunks: Iterator[Chunk]) -> Any:
        import ray
        from ray.util.queue import Queue

        from service.batch.ray_pipeline import DriverFeedDatasource, chunk_row

        feed = Queue(maxsize=self.settings.ray_window_chunks, actor_options={"num_cpus": 0})
        self._feed_errors.clear()

        def produce() -> None:
            try:
                for chunk in chunks:
                    feed.put(chunk_row(chunk))
            except BaseException as exc:  # noqa: BLE001 - raised on the driver once the dataset ends
                self._feed_errors.append(exc)
            feed.put(None)

        threading.Thread(target=produce, name="convintel-ray-feed", daemon=True).start()
        return ray.data.read_datasource(DriverFeedDatasource(feed), num_cpus=0)

    def _scored(self, chunks: Any) -> Any:
        import ray

        from service.batch.ray_pipeline import ChunkScorer

        return chunks.map_batches(
            ChunkScorer,
            fn_constructor_kwargs={"settings_json": self._settings_json},
            batch_size=1,  # one chunk per call: its conversations share encoder batches
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=self.actors),
            num_cpus=self.settings.ray_cpus_per_actor,
        )

    def _collect(self, scored: Any) -> Iterator[ScoredChunk]:
        from service.batch.ray_pipeline import ScoredRow

        expected: int | None = None
        for row in scored.iter_rows():
            result = ScoredRow.from_row(row)
            if expected is not None and result.index != expected:  # pragma: no cover - never commit past a gap
                raise EngineError(f"Ray returned chunk {result.index} where {expected} was due; rerun with --resume")
            expected = result.index + 1
            yield ScoredChunk(Chunk(result.index, last_row=result.last_row), result.records, result.errors)
        self._raise_feed_error()

    def _raise_feed_error(self) -> None:
        if self._feed_errors:
            raise self._feed_errors[0]

    def close(self) -> None:
        import ray

        if self._owns_ray:
            ray.shutdown()
