"""Outbound alerts: signed `escalation.changed` events delivered to configured webhooks.

- `webhooks`: the configuration (targets parsed from `CONVINTEL_ALERT_WEBHOOK_URLS`, the
  signing secret, retry timing).
- `events`: the event body.
- `payloads`: the bytes each target format sends (`json`: the event; `slack`: an
  incoming-webhook message).
- `signing`: the `X-Convintel-Signature` header.
- `outbox`: the SQLite outbox table and its queries.
- `publisher`: writes a level change's events into the outbox, inside the message's transaction.
- `delivery`: the background worker that sends due events with backoff and marks them
  delivered or failed.

Delivery is at least once: an event id never changes across attempts, so receivers
de-duplicate on `X-Convintel-Event-Id`. docs/alerts.md describes it for receivers."""
