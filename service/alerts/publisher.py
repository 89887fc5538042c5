"""From a level change to outbox rows: `AlertPublisher.publish` runs inside the
conversation transaction that commits the message (`service/conversations.py`), so the
events commit, or roll back, with the message and its level."""

from __future__ import annotations

from nlp.schemas import Escalation, ModelInfo
from service.alerts import outbox
from service.alerts.events import escalation_changed
from service.alerts.webhooks import WebhookTarget
from service.store import ConversationTransaction


class AlertPublisher:
    """Queues an `escalation.changed` event for each configured target that wants the change."""

    def __init__(self, targets: tuple[WebhookTarget, ...], box: outbox.Outbox) -> None:
        self.targets = targets
        self.outbox = box

    def publish(
        self, transaction: ConversationTransaction, message_id: str, escalation: Escalation, model: ModelInfo
    ) -> int:
        """Queue the change `escalation` records (its level and `previous_level`) in
        `transaction`; returns the number of events queued. Call `wake` once the
        transaction has committed."""
        old_level = escalation.previous_level or "none"
        queued = 0
        for target in self.targets:
            if target.wants(old_level, escalation.level):
                event = escalation_changed(transaction.conversation_id, message_id, escalation, model)
                outbox.add(transaction.connection, event, target)
                queued += 1
        return queued

    def wake(self) -> None:
        """Deliver what was just committed without waiting for the worker's next poll."""
        self.outbox.wake()
