"""The bytes each target format sends for an event, rendered from the stored event JSON,
so every attempt of one event sends the same body.

- `json`: the event itself (`events.EscalationChangedEvent`), byte for byte as stored.
- `slack`: a Slack incoming-webhook message, `{"text", "blocks"}`: `text` is the
  one-line summary Slack shows in notifications, `blocks` the formatted message."""

from __future__ import annotations

import json

from service.alerts.events import EscalationChangedEvent
from service.alerts.webhooks import AlertFormat

# Slack's documented limits: a section block's text is at most 3,000 characters, and
# `text` is truncated by Slack past 40,000 (ours stays far below it).
SLACK_SECTION_LIMIT = 3000
ELLIPSIS = "…"


def render_body(event_json: str, format: AlertFormat) -> bytes:
    """What one delivery sends for the stored event `event_json`, in `format`."""
    if format is AlertFormat.slack:
        return json.dumps(slack_message(EscalationChangedEvent.model_validate_json(event_json))).encode("utf-8")
    return event_json.encode("utf-8")


def _escape(text: str) -> str:
    """Slack's mrkdwn escaping: `&`, `<` and `>` would otherwise start links and mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int = SLACK_SECTION_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)] + ELLIPSIS


def slack_message(event: EscalationChangedEvent) -> dict:
    """The Slack message for `event`: a summary line, the reasons with their quotes, and a
    context line with the event id and model."""
    conversation = _escape(event.conversation_id)
    summary = f"Conversation {conversation}: escalation {event.old_level} → {event.new_level}"
    if event.route_to != "none":
        summary += f" (route to {_escape(event.route_to)})"
    details = [f"*Conversation `{conversation}`*: escalation *{event.old_level}* → *{event.new_level}*"]
    facts = [f"route: {_escape(event.route_to)}", f"confidence {event.confidence:.2f}"]
    if event.response_style is not None:
        facts.append(f"respond: {_escape(event.response_style.style)}")
    details.append(" · ".join(facts))
    reasons = []
    for reason in event.reasons:
        line = f"• *{_escape(reason.rule)}* ({reason.level}): {_escape(reason.detail)}"
        quotes = [f"“{_escape(e.quote)}”" for e in reason.evidence if e.quote]
        if quotes:
            line += " — " + ", ".join(quotes)
        reasons.append(line)
    blocks: list[dict] = [{"type": "section", "text": {"type": "mrkdwn", "text": _clip("\n".join(details))}}]
    if reasons:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip("\n".join(reasons))}})
    context = f"event {event.id} · message {_escape(event.message_id)} · model {event.model.name} {event.model.version}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(context)}]})
    return {"text": summary, "blocks": blocks}
