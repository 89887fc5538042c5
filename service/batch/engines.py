"""Scoring engines: each turns a stream of chunks into scored chunks, in input order.

- `LocalEngine` scores in this process with one analyzer.
- `RayEngine` hands chunks to Ray Data, where each worker loads the analyzer once
  (`map_batches` with a callable class) and scores whole chunks. The same chunks go through
  the same `score_conversations`, so both engines write the same records.

The driver keeps reading, checkpointing and writing: Ray only does the scoring."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Iterator, Protocol

from nlp.analyzer import Analyzer
from service.batch.records import RowError
from service.batch.scoring import (
    Chunk, conversations_from_payload, conversations_to_payload, errors_from_payload, errors_to_payload,
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


class ChunkScorer:
    """A Ray Data worker: loads the analyzer once, then scores one chunk per batch row.
    Chunks travel as JSON text, records come back as JSON text (no pickled objects)."""

    def __init__(self, settings_json: str) -> None:
        from service.app import load_analyzer

        self.analyzer = load_analyzer(Settings.model_validate_json(settings_json))

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        records_out, errors_out = [], []
        for payload in batch["conversations"]:
            records, errors = score_conversations(self.analyzer, conversations_from_payload(str(payload)))
            records_out.append(json.dumps(records))
            errors_out.append(errors_to_payload(errors))
        return {"index": np.asarray(batch["index"]), "records": np.asarray(records_out, dtype=object),
                "errors": np.asarray(errors_out, dtype=object)}


class RayEngine:
    """Scores chunks on Ray Data: a local Ray started here, or the cluster at `address`
    (else `RAY_ADDRESS`). The driver feeds windows of `ray_window_chunks` chunks, so its
    memory stays bounded; each window's results stream back in order and are committed
    chunk by chunk."""

    name = "ray"

    def __init__(self, settings: Settings, address: str | None = None, num_cpus: int | None = None) -> None:
        import ray

        self.settings = settings
        address = address or settings.ray_address or os.environ.get("RAY_ADDRESS")
        try:
            if address:
                ray.init(address=address, log_to_driver=False)
                self._cpus = int(ray.cluster_resources().get("CPU", 1))
            else:
                self._cpus = num_cpus or settings.ray_num_cpus or os.cpu_count() or 1
                # A private local Ray: no dashboard, quiet, gone when this process ends.
                ray.init(num_cpus=self._cpus, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise EngineError(f"cannot start Ray{f' at {address}' if address else ''}: {exc}") from exc
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # results come back in input order
        ctx.enable_progress_bars = False  # the CLI shows its own
        self.actors = max(1, self._cpus // settings.ray_cpus_per_actor)
        # Each worker runs torch with the threads its CPUs allow.
        worker_settings = settings.model_copy(update={"torch_threads": settings.ray_cpus_per_actor})
        self._settings_json = worker_settings.model_dump_json()

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
                ChunkScorer, fn_constructor_kwargs={"settings_json": self._settings_json},
                batch_size=1, compute=ray.data.ActorPoolStrategy(size=min(self.actors, len(items))),
                num_cpus=self.settings.ray_cpus_per_actor, batch_format="numpy",
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
