"""Retention: conversations not changed for `CONVINTEL_RETENTION_DAYS` days are deleted, by
a background task in the service (`RetentionPurger`, started and stopped with the app) and
by `convintel purge`. Both delete in batches (`ConversationStore.delete_updated_before`),
one short write transaction each, so a webhook write never waits for a whole purge."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from anyio.to_thread import run_sync as run_in_threadpool  # the same thread pool as FastAPI's

from service.metrics import record_deletions
from service.store import DELETE_BATCH, ConversationStore

log = logging.getLogger(__name__)


def retention_cutoff(days: int, now: datetime | None = None) -> datetime:
    """The moment before which a conversation's last change makes it expire."""
    return (now or datetime.now(UTC)) - timedelta(days=days)


def purge_expired(store: ConversationStore, cutoff: datetime) -> int:
    """Delete every conversation last changed before `cutoff`, batch by batch; how many."""
    deleted = 0
    while True:
        batch = store.delete_updated_before(cutoff, limit=DELETE_BATCH)
        deleted += batch
        if batch < DELETE_BATCH:
            return deleted


class RetentionPurger:
    """Deletes expired conversations at start-up and every `interval_s` seconds after."""

    def __init__(self, store: ConversationStore, *, days: int, interval_s: float) -> None:
        self.store = store
        self.days = days
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="convintel-retention")

    async def stop(self) -> None:
        """Stop; a batch being deleted finishes first (it is one transaction)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def purge_once(self) -> int:
        """One purge, each batch in the thread pool: the event loop keeps serving, and a
        stop waits for one batch at most."""
        cutoff = retention_cutoff(self.days)
        deleted = 0
        while True:
            batch = await run_in_threadpool(lambda: self.store.delete_updated_before(cutoff, limit=DELETE_BATCH))
            deleted += batch
            record_deletions(batch, reason="retention")
            if batch < DELETE_BATCH:
                break
        if deleted:
            log.info("retention: deleted %d conversation(s) not changed since %s", deleted, cutoff.isoformat())
        return deleted

    async def _run(self) -> None:
        while True:
            try:
                await self.purge_once()
            except Exception:  # a locked or broken file: say so, and try again next time
                log.exception("retention purge failed; the next attempt is in %s s", self.interval_s)
            await asyncio.sleep(self.interval_s)
