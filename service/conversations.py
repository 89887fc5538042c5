"""The per-message write, in one place: a helpdesk posts one new message of a conversation,
and `ConversationRecorder.record` analyses it (in a shared micro-batch), commits it with
the conversation's new escalation level (in a shared group commit: one transaction, each
message in its own savepoint, service/group_commit.py), and returns the message, the
conversation's summary and whether the level changed.

Guarantees: nothing is answered before it is committed; the level is committed with its
message, so it never lags behind; so are the alert events a level change queues
(service/alerts/); a retry (a message id the conversation already holds) encodes nothing
and writes nothing; only the redacted text is written."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial

from anyio.to_thread import run_sync as run_in_threadpool  # the same thread pool as FastAPI's

from nlp.analyzer import AnalyzedTurn, Analyzer
from nlp.conversation import ConversationSummarizer
from nlp.message_ids import PENDING_ID
from nlp.schemas import ConversationSummary, IncomingMessage
from service.alerts.publisher import AlertPublisher
from service.group_commit import GroupCommit
from service.metrics import record_escalations
from service.microbatch import MicroBatcher
from service.store import (
    ConversationStore,
    ConversationTransaction,
    MessageExists,
    StoredConversation,
    StoredMessage,
)


class ConversationFull(Exception):
    """The conversation already holds the maximum number of messages."""


@dataclass
class RecordedMessage:
    """What one posted message left behind."""

    conversation: StoredConversation
    """The conversation as committed, this message included."""
    message: StoredMessage
    summary: ConversationSummary
    """The conversation's summary; its escalation says whether the level changed."""
    duplicate: bool
    """A retry: the message was already stored, and nothing was written."""
    encode_ms: float


class ConversationRecorder:
    """Records posted messages; one per service, shared by every request."""

    def __init__(
        self,
        analyzer: Analyzer,
        store: ConversationStore,
        batcher: MicroBatcher,
        *,
        max_messages: int,
        commit_group_max_messages: int,
        alerts: AlertPublisher | None = None,
    ) -> None:
        """`commit_group_max_messages`: the most messages committed in one transaction (1:
        one each); `alerts`: where level changes are queued as webhook events (None: alerts
        are off)."""
        self.analyzer = analyzer
        self.store = store
        self.batcher = batcher
        self.max_messages = max_messages
        self.alerts = alerts
        self.commits = GroupCommit(store, max_writes=commit_group_max_messages)

    async def record(self, conversation_id: str, message: IncomingMessage) -> RecordedMessage:
        """Analyse and commit `message`, or find it stored already (a retry). Raises
        ConversationFull when the conversation holds `max_messages` messages."""
        with self.batcher.arrival() as arrival:  # other requests' messages may join this encoder pass
            if not await self._is_retry(conversation_id, message.id):
                started = time.perf_counter()
                turn = (await arrival.analyze_turns([message], [message.id or PENDING_ID]))[0]
                encode_ms = (time.perf_counter() - started) * 1000
                return await self._commit(conversation_id, message, turn, encode_ms)
        replayed = await run_in_threadpool(self._replay, conversation_id, message.id)
        if replayed is None:  # the cache remembered a conversation deleted since: a new message
            return await self.record(conversation_id, message)
        return replayed

    async def _is_retry(self, conversation_id: str, message_id: str | None) -> bool:
        """Whether the conversation already holds `message_id`: from memory when the
        conversation is cached (no thread hop), else from the store. A message stored by
        another process after this check is caught by the store's unique id instead."""
        if message_id is None:
            return False
        cached = self.store.cached_has_message(conversation_id, message_id)
        if cached is not None:
            return cached
        return await run_in_threadpool(self.store.find_message, conversation_id, message_id)

    async def _commit(
        self, conversation_id: str, message: IncomingMessage, turn: AnalyzedTurn, encode_ms: float
    ) -> RecordedMessage:
        """Commit the message in the next group commit; a message stored by another request
        since the retry check is answered as a retry."""
        try:
            recorded, queued = await self.commits.commit(
                conversation_id, partial(self._write, message=message, turn=turn, encode_ms=encode_ms)
            )
        except MessageExists:
            assert message.id is not None
            replayed = await run_in_threadpool(self._replay, conversation_id, message.id, encode_ms)
            if replayed is None:  # and deleted by another process in the moment since
                raise
            return replayed
        if recorded.summary.escalation.changed:  # counted once committed
            record_escalations([recorded.summary.escalation.level], path="message")
        if queued and self.alerts is not None:
            self.alerts.wake()  # committed: the worker may send them now
        return recorded

    def _write(
        self, transaction: ConversationTransaction, *, message: IncomingMessage, turn: AnalyzedTurn, encode_ms: float
    ) -> tuple[RecordedMessage, int]:
        """In the conversation's transaction (a savepoint of it: all of this, or none of it,
        commits): the message, the level of the conversation it completes and, when the level
        changed, its alert events. Returns the recorded message and the events queued."""
        if len(transaction.messages) >= self.max_messages:
            raise ConversationFull(
                f"conversation {transaction.conversation_id!r} already holds {len(transaction.messages)} messages"
            )
        previous_level = transaction.level  # what the messages before this one left
        stored = transaction.append(
            message, turn.analysis, stored_text=turn.stored_text, model_version=self.analyzer.model_info.version
        )
        conversation = transaction.conversation
        summarizer = self._summarizer(transaction.summary_state, transaction.messages)
        transaction.summary_state = summarizer
        summary = self._summary(conversation, previous_level, duplicate=False, summarizer=summarizer)
        escalation = summary.escalation
        transaction.set_escalation_level(
            escalation.level, route=escalation.route_to, rules=[r.rule for r in escalation.reasons]
        )
        conversation.escalation_level = escalation.level  # the snapshot, as committed
        queued = 0
        if self.alerts is not None and escalation.changed:
            queued = self.alerts.publish(transaction, stored.id, escalation, self.analyzer.model_info)
        return RecordedMessage(conversation, stored, summary, duplicate=False, encode_ms=encode_ms), queued

    def _replay(self, conversation_id: str, message_id: str | None, encode_ms: float = 0.0) -> RecordedMessage | None:
        """A retry's answer: the stored message and the conversation as it stands; None when
        the message is no longer stored (its conversation was deleted, and the store has
        dropped what it remembered of it)."""
        assert message_id is not None
        conversation = self.store.get(conversation_id)
        stored = next((m for m in conversation.messages if m.id == message_id), None) if conversation else None
        if conversation is None or stored is None:
            return None
        summary = self._summary(conversation, conversation.escalation_level, duplicate=True)
        return RecordedMessage(conversation, stored, summary, duplicate=True, encode_ms=encode_ms)

    def _summarizer(self, cached: object | None, messages: list[StoredMessage]) -> ConversationSummarizer:
        """The incremental summary of `messages`: the cached one of all but the last, with the
        last added (constant work), or else (not cached, or cached for other messages: another
        process wrote, a transaction rolled back) one rebuilt from every stored analysis."""
        if (
            isinstance(cached, ConversationSummarizer)
            and len(messages) >= 2
            and len(cached) == len(messages) - 1
            and cached.last is messages[-2].analysis
        ):
            cached.add(messages[-1].analysis, messages[-1].turn)
            return cached
        return self.analyzer.summarizer().extend([m.analysis for m in messages], [m.turn for m in messages])

    def _summary(
        self,
        conversation: StoredConversation,
        previous_level: str | None,
        *,
        duplicate: bool,
        summarizer: ConversationSummarizer | None = None,
    ) -> ConversationSummary:
        """The conversation's summary (read from `summarizer` when given: it holds the same
        messages), its escalation marked `changed` when this message moved the level: the
        helpdesk alerts on `changed`, once per change, not per message."""
        channel, metadata = conversation.channel, conversation.metadata
        if summarizer is not None:
            summary = summarizer.summary(channel, metadata=metadata)  # type: ignore[arg-type]  # stored values are channels
        else:
            summary = self.analyzer.summarize(conversation.analyses, conversation.turns, channel, metadata=metadata)
        escalation = summary.escalation
        escalation.previous_level = previous_level  # type: ignore[assignment]  # stored values are levels
        escalation.changed = not duplicate and escalation.level != (previous_level or "none")
        return summary
