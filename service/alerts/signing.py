"""The signature every delivery carries, so a receiver can tell a genuine, recent event
from a forged or replayed one:

    X-Convintel-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">

keyed with `CONVINTEL_ALERT_WEBHOOK_SECRET`. The timestamp is signed with the body, so an
old delivery cannot be replayed with a fresh time; receivers reject timestamps older than
`RECEIVER_TOLERANCE_S` (docs/alerts.md has the check in ten lines). Each attempt is signed
at the time it is sent; the body and event id stay the same."""

from __future__ import annotations

import hashlib
import hmac

EVENT_ID_HEADER = "X-Convintel-Event-Id"
EVENT_TYPE_HEADER = "X-Convintel-Event-Type"
SIGNATURE_HEADER = "X-Convintel-Signature"
SIGNATURE_VERSION = "v1"
RECEIVER_TOLERANCE_S = 300
"""What docs/alerts.md tells receivers: reject a signature more than five minutes old."""


def signature(secret: bytes, body: bytes, timestamp: int) -> str:
    """The hex HMAC-SHA256 of `"<timestamp>.<body>"` under `secret`."""
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: bytes, body: bytes, timestamp: int) -> str:
    """The `X-Convintel-Signature` value for `body` sent at `timestamp` (unix seconds)."""
    return f"t={timestamp},{SIGNATURE_VERSION}={signature(secret, body, timestamp)}"
