"""The per-message write, in one place: a helpdesk posts one new message of a conversation,
and `ConversationRecorder.record` analyses it (in a shared micro-batch), commits it with
the conversation's new escalation level in one transaction, and returns the message, the
conversation's summary and whether the level changed.

Guarantees: the level is committed in the same transaction as its message, so it never
lags behind; so are the alert events a level change queues (service/alerts/); a retry (a
message id the conversation already holds) encodes nothing and writes nothing; only the
redacted text is written."""

from __future__ import annotations

import time
from dataclasses import dataclass

from anyio.to_thread import run_sync as run_in_threadpool  # the same thread pool as FastAPI's

from nlp.analyzer import AnalyzedTurn, Analyzer
from nlp.conversation import ConversationSummarizer
from nlp.message_ids import PENDING_ID
from nlp.schemas import ConversationSummary, IncomingMessage
from service.alerts.publisher import AlertPublisher
from service.metrics import record_escalations
from service.microbatch import MicroBatcher
from service.store import ConversationStore, MessageExists, StoredConversation, StoredMessage


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
        alerts: AlertPublisher | None = None,
    ) -> None:
        """`alerts`: where level changes are queued as webhook events (None: alerts are off)."""
        self.analyzer = analyzer
        self.store = store
        self.batcher = batcher
        self.max_messages = max_messages
        self.alerts = alerts

    async def record(self, conversation_id: str, message: IncomingMessage) -> RecordedMessage:
        """Analyse and commit `message`, or find it stored already (a retry). Raises
        ConversationFull when the conversation holds `max_messages` messages."""
        with self.batcher.arrival() as arrival:  # other requests' messages may join this encoder pass
            if not await self._is_retry(conversation_id, message.id):
                started = time.perf_counter()
                turn = (await arrival.analyze_turns([message], [message.id or PENDING_ID]))[0]
                encode_ms = (time.perf_counter() - started) * 1000
                return await run_in_threadpool(self._commit, conversation_id, message, turn, encode_ms)
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

    def _commit(
        self, conversation_id: str, message: IncomingMessage, turn: AnalyzedTurn, encode_ms: float
    ) -> RecordedMessage:
        """One transaction: the message, the level of the conversation it completes and,
        when the level changed, its alert events."""
        queued = 0
        try:
            with self.store.transaction(conversation_id) as transaction:
                if len(transaction.messages) >= self.max_messages:
                    raise ConversationFull(
                        f"conversation {conversation_id!r} already holds {len(transaction.messages)} messages"
                    )
                stored = transaction.append(
                    message, turn.analysis, stored_text=turn.stored_text, model_version=self.analyzer.model_info.version
                )
                conversation = transaction.conversation
                summarizer = self._summarizer(transaction.summary_state, transaction.messages)
                transaction.summary_state = summarizer
                summary = self._summary(
                    conversation, transaction.previous_level, duplicate=False, summarizer=summarizer
                )
                escalation = summary.escalation
                transaction.set_escalation_level(
                    escalation.level, route=escalation.route_to, rules=[r.rule for r in escalation.reasons]
                )
                conversation.escalation_level = summary.escalation.level  # the snapshot, as committed
                if self.alerts is not None and summary.escalation.changed:
                    queued = self.alerts.publish(transaction, stored.id, summary.escalation, self.analyzer.model_info)
        except MessageExists:  # stored by another request since the retry check
            assert message.id is not None
            replayed = self._replay(conversation_id, message.id, encode_ms)
            if replayed is None:  # and deleted by another process in the moment since
                raise
            return replayed
        if queued and self.alerts is not None:
            self.alerts.wake()  # committed: the worker may send them now
        return RecordedMessage(conversation, stored, summary, duplicate=False, encode_ms=encode_ms)

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
        if escalation.changed:
            record_escalations([escalation.level], path="message")
        return summary
