"""Group commit: the per-message writes of concurrent requests share one database
transaction, and so one commit and one fsync.

A request hands its write (a function of the conversation's `ConversationTransaction`) to
`GroupCommit.commit` and waits. One writer at a time takes everything queued (up to
`max_writes`) as a group and runs it on a worker thread in one store transaction
(`ConversationStore.transactions`, which locks the group's conversations in id order), each
write in its own savepoint: a write that raises rolls back alone and only its caller sees
the error. Every caller is answered once the transaction has committed, so nothing is
acknowledged before it is on disk; if the commit fails, every caller of the group gets its
error. Writes to one conversation run in the order they were queued.

A lone write never waits: the writer starts as soon as something is queued, and only what
queues while it writes (typically the rest of a micro-batch's callers, answered together)
waits for the next group. With `max_writes` 1 every write is its own transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from anyio.to_thread import run_sync as run_in_threadpool  # the same thread pool as FastAPI's

from service.metrics import COMMIT_GROUP_SIZE
from service.store import ConversationStore, ConversationTransaction

T = TypeVar("T")

Write = Callable[[ConversationTransaction], Any]


@dataclass
class _Queued:
    conversation_id: str
    write: Write
    future: asyncio.Future[Any]


@dataclass
class _Outcome:
    result: Any = None
    error: BaseException | None = None


class GroupCommit:
    """Commits the writes queued by concurrent callers in groups; one per store, used on
    one event loop."""

    def __init__(self, store: ConversationStore, *, max_writes: int) -> None:
        """`max_writes`: the most writes one transaction takes (the setting
        CONVINTEL_COMMIT_GROUP_MAX_MESSAGES; 1: each write is its own transaction)."""
        if max_writes < 1:
            raise ValueError("a group commit holds at least one write")
        self.store = store
        self.max_writes = max_writes
        self.groups = 0
        self.grouped_writes = 0
        self._queue: list[_Queued] = []
        self._writer: asyncio.Task[None] | None = None

    async def commit(self, conversation_id: str, write: Callable[[ConversationTransaction], T]) -> T:
        """Run `write` on `conversation_id`'s transaction, in a savepoint of the next group,
        and return what it returned once the group has committed. Raises what `write`
        raised (its writes rolled back, the group's others committed), or the commit's error."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(conversation_id, write, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued(), name="convintel-group-commit")
        return await future

    async def _write_queued(self) -> None:
        """Commit what is queued, a group at a time, until nothing is."""
        while self._queue:
            group = [queued for queued in self._queue[: self.max_writes] if not queued.future.done()]  # callers gone
            del self._queue[: self.max_writes]
            if not group:
                continue
            self.groups += 1
            self.grouped_writes += len(group)
            COMMIT_GROUP_SIZE.observe(len(group))
            try:
                outcomes = await run_in_threadpool(self._write_group, group)
            except Exception as exc:  # the transaction did not commit: nothing in it is kept
                for queued in group:
                    if not queued.future.done():
                        queued.future.set_exception(exc)
                continue
            except BaseException:  # cancelled (the loop is closing): so are the callers
                for queued in group:
                    queued.future.cancel()
                raise
            for queued, outcome in zip(group, outcomes):
                if queued.future.done():
                    continue
                if outcome.error is not None:
                    queued.future.set_exception(outcome.error)
                else:
                    queued.future.set_result(outcome.result)

    def _write_group(self, group: list[_Queued]) -> list[_Outcome]:
        """One transaction: each write in its savepoint, in queue order; their outcomes."""
        with self.store.transactions(queued.conversation_id for queued in group) as opened:
            return [_write_one(queued.write, opened[queued.conversation_id]) for queued in group]


def _write_one(write: Write, transaction: ConversationTransaction) -> _Outcome:
    """`write` in a savepoint of `transaction`: its result, or its error (its writes rolled
    back). An error of the savepoint itself goes on: the transaction cannot continue."""
    outcome = _Outcome()
    try:
        with transaction.savepoint():
            try:
                outcome.result = write(transaction)
            except Exception as exc:
                outcome.error = exc
                raise  # rolls the savepoint back
    except Exception as exc:
        if exc is not outcome.error:
            raise
    return outcome
