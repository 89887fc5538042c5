"""Scoring engines: each turns a stream of chunks into scored chunks, in input order.

- `LocalEngine` scores in this process with one analyzer.
- `WorkerPoolEngine` scores in worker processes on this machine (the standard library's
  process pool), each with its own analyzer and an equal share of the torch threads. Two
  single-threaded workers keep both cores of a small machine busy: while one runs spaCy
  or writes its summaries (one core), the other encodes.
- `RayEngine` hands chunks to Ray Data, where each worker loads the analyzer once
  (`map_batches` with a callable class) and scores whole chunks. The same chunks go through
  the same `score_conversations`, so both engines write the same records.

The driver keeps reading, checkpointing and writing: Ray only does the scoring."""

from __future__ import annotations

import json
import multiprocessing
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Protocol

from nlp.analyzer import Analyzer
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


class ChunkScorer:
    """A Ray Data worker: loads the analyzer once, then scores one chunk per batch row."""

    def __init__(self, settings_json: str) -> None:
        from service.runtime import load_analyzer

        self.analyzer = load_analyzer(Settings.model_validate_json(settings_json))

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        scored = [score_payload(self.analyzer, str(payload)) for payload in batch["conversations"]]
        return {
            "index": np.asarray(batch["index"]),
            "records": np.asarray([r for r, _ in scored], dtype=object),
            "errors": np.asarray([e for _, e in scored], dtype=object),
        }


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
    """Scores chunks on Ray Data: a local Ray started here, or the cluster at `address`
    (else `RAY_ADDRESS`). The driver feeds windows of `ray_window_chunks` chunks, so its
    memory stays bounded; each window's results stream back in order and are committed
    chunk by chunk."""

    name = "ray"

    def __init__(self, settings: Settings, address: str | None = None, num_cpus: int | None = None) -> None:
        try:
            ray = require("ray", "ray", "--engine ray")
        except MissingExtra as exc:
            raise EngineError(str(exc)) from exc
        self.settings = settings
        address = address or settings.ray_address or os.environ.get("RAY_ADDRESS")
        try:
            if address:
                ray.init(address=address, log_to_driver=False)
                self._cpus = int(ray.cluster_resources().get("CPU", 1))
            else:
                self._cpus = num_cpus or settings.ray_num_cpus or os.cpu_count() or 1
                # A private local Ray: no dashboard, quiet, gone when this process ends.
                ray.init(num_cpus=self._cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise EngineError(f"cannot start Ray{f' at {address}' if address else ''}: {exc}") from exc
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # results come back in input order
        ctx.enable_progress_bars = False  # the CLI shows its own
        self.actors = max(1, self._cpus // settings.ray_cpus_per_actor)
        # Each worker runs torch with the threads its CPUs allow.
        actor_settings = settings.model_copy(update={"torch_threads": settings.ray_cpus_per_actor})
        self._settings_json = actor_settings.model_dump_json()

    def score(self, chunks: Iterator[Chunk]) -> Iterator[ScoredChunk]:
        import ray

        while True:
            window = list(islice(chunks, self.settings.ray_window_chunks))
            if not window:
                return
            waiting = {chunk.index: chunk for chunk in window}
            done: dict[int, ScoredChunk] = {}
            expected = window[0].index
            items = [{"index": c.index, "conversations": conversations_to_payload(c.conversations)} for c in window]
            dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
                ChunkScorer,
                fn_constructor_kwargs={"settings_json": self._settings_json},
                batch_size=1,
                compute=ray.data.ActorPoolStrategy(size=min(self.actors, len(items))),
                num_cpus=self.settings.ray_cpus_per_actor,
                batch_format="numpy",
            )
            for row in dataset.iter_rows():
                chunk = waiting.pop(int(row["index"]))
                done[chunk.index] = ScoredChunk(chunk, json.loads(row["records"]), errors_from_payload(row["errors"]))
                # Commit strictly in input order, whatever order results arrive in.
                while expected in done:
                    yield done.pop(expected)
                    expected += 1
            if waiting:  # pragma: no cover - Ray lost rows: never commit past them
                raise RuntimeError(f"Ray returned no result for chunks {sorted(waiting)}")

    def close(self) -> None:
        import ray

        ray.shutdown()
