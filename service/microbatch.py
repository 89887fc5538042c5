"""Dynamic micro-batching: messages from concurrent requests share encoder passes.

Every model call runs on one worker thread, so two requests never fight over the cores
with two half-speed forward passes. Per-message requests queue their messages; while the
worker is busy the queue fills, and when it is free the collector takes everything
queued (up to `max_messages`) as one batch: encoding, spaCy inspection and the heads all
run once over the whole batch, and each caller's future gets its own rows back.

A lone request never waits: the collector only holds a batch open (for at most
`max_wait_ms`) while other requests have already entered a handler and are on their way
to the queue. Whole transcripts (`/v1/analyze*`) run on the same worker as their own
batches, in arrival order.

`convintel_encode_queue_depth` counts the messages queued and not yet taken into a batch:
it grows while the worker is busy, so it is the backlog an operator watches."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from nlp.analyzer import AnalyzedTurn, Analyzer
from nlp.schemas import Message
from service.metrics import QUEUE_DEPTH

log = logging.getLogger("convintel.microbatch")
T = TypeVar("T")


@dataclass
class _Request:
    messages: Sequence[Message]
    ids: Sequence[str]
    future: asyncio.Future[list[AnalyzedTurn]]


class Arrival:
    """A request that will submit messages soon: while it is open, the collector may hold
    a batch open for it. Use as a context manager around the handler's work."""

    def __init__(self, batcher: MicroBatcher) -> None:
        self._batcher = batcher
        self._open = True
        batcher._arriving += 1

    def close(self) -> None:
        if self._open:
            self._open = False
            self._batcher._arriving -= 1
            self._batcher._changed.set()

    async def analyze_turns(self, messages: Sequence[Message], ids: Sequence[str]) -> list[AnalyzedTurn]:
        """Submit `messages` (closing the arrival) and wait for their analyses."""
        self.close()
        return await self._batcher.analyze_turns(messages, ids)

    def __enter__(self) -> Arrival:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class MicroBatcher:
    """Queues messages from concurrent callers and analyses them together on one worker
    thread. Create and use it on the event loop; `start()` before use, `stop()` after."""

    def __init__(self, analyzer: Analyzer, *, max_messages: int, max_wait_ms: float) -> None:
        self.analyzer = analyzer
        self.max_messages = max_messages
        self.max_wait_s = max_wait_ms / 1000.0
        self.batches = 0
        self.batched_messages = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="convintel-model")
        self._queue: asyncio.Queue[_Request] | None = None
        self._changed: asyncio.Event = asyncio.Event()
        self._arriving = 0
        self._collector: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._changed = asyncio.Event()
        self._collector = asyncio.create_task(self._collect(), name="convintel-microbatch")

    async def stop(self) -> None:
        """Stop collecting; callers still queued get an error, the running batch finishes."""
        if self._collector is not None:
            self._collector.cancel()
            try:
                await self._collector
            except asyncio.CancelledError:
                pass
            self._collector = None
        while self._queue is not None and not self._queue.empty():
            request = self._queue.get_nowait()
            QUEUE_DEPTH.dec(len(request.messages))
            if not request.future.done():
                request.future.set_exception(RuntimeError("the service is shutting down"))
        self._executor.shutdown(wait=True)

    def arrival(self) -> Arrival:
        """Announce a request that is about to submit messages (see `Arrival`)."""
        return Arrival(self)

    async def analyze_turns(self, messages: Sequence[Message], ids: Sequence[str]) -> list[AnalyzedTurn]:
        """Analyses of `messages` (with their stored texts), computed in a shared batch."""
        if self._queue is None:
            raise RuntimeError("the micro-batcher is not started")
        if not messages:
            return []
        future: asyncio.Future[list[AnalyzedTurn]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Request(messages, ids, future))
        QUEUE_DEPTH.inc(len(messages))
        self._changed.set()
        return await future

    async def run(self, function: Callable[..., T], *args: object) -> T:
        """Run other model work (whole transcripts) on the worker thread, in turn."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    async def _collect(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            size = len(batch[0].messages)
            try:
                deadline = loop.time() + self.max_wait_s
                while size < self.max_messages:
                    if not self._queue.empty():
                        request = self._queue.get_nowait()
                        batch.append(request)
                        size += len(request.messages)
                        continue
                    remaining = deadline - loop.time()
                    if self._arriving <= 0 or remaining <= 0:
                        break  # nobody else on the way: go now
                    self._changed.clear()
                    try:
                        await asyncio.wait_for(self._changed.wait(), remaining)
                    except TimeoutError:
                        break
            finally:
                # Out of the queue: handed to the worker, or dropped when stopping mid-collection.
                QUEUE_DEPTH.dec(size)
            batch = [request for request in batch if not request.future.done()]  # callers gone
            if not batch:
                continue
            self.batches += 1
            self.batched_messages += size
            try:
                results = await loop.run_in_executor(self._executor, self._analyze, batch)
            except Exception:  # noqa: BLE001 - retried one by one so only the culprit fails
                log.exception("a batch of %d requests failed; retrying them one by one", len(batch))
                for request in batch:
                    await self._analyze_alone(request, loop)
                continue
            for request, turns in zip(batch, results):
                if not request.future.done():
                    request.future.set_result(turns)

    def _analyze(self, batch: Sequence[_Request]) -> list[list[AnalyzedTurn]]:
        """One shared pass over every request's messages, split back per request."""
        messages = [message for request in batch for message in request.messages]
        ids = [mid for request in batch for mid in request.ids]
        turns = self.analyzer.analyze_turns(messages, ids)
        results, offset = [], 0
        for request in batch:
            results.append(turns[offset : offset + len(request.messages)])
            offset += len(request.messages)
        return results

    async def _analyze_alone(self, request: _Request, loop: asyncio.AbstractEventLoop) -> None:
        try:
            turns = await loop.run_in_executor(
                self._executor, self.analyzer.analyze_turns, request.messages, request.ids
            )
        except Exception as exc:  # noqa: BLE001 - handed to that caller
            if not request.future.done():
                request.future.set_exception(exc)
            return
        if not request.future.done():
            request.future.set_result(turns)
