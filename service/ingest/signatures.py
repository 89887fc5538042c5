"""The helpdesks' proof that a delivery is theirs, checked against the raw body before
anything parses it:

- Zendesk signs `timestamp + body` with HMAC-SHA256 and the webhook's signing secret,
  sent base64 in `X-Zendesk-Webhook-Signature`, with the timestamp (ISO-8601) in
  `X-Zendesk-Webhook-Signature-Timestamp`. A timestamp too far from our clock is a replay.
- Intercom signs the body with HMAC-SHA1 and the app's client secret, sent as
  `X-Hub-Signature: sha1=<hex>`.
- Freshdesk signs nothing: the automation rule sends a shared token in a header of our
  choosing (`X-Convintel-Ingest-Token`).

Every comparison is `hmac.compare_digest` over bytes, so the reply time says nothing about
how much of a signature matched (and a header with odd characters cannot raise)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

from nlp.timestamps import parse_timestamp

ZENDESK_SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
ZENDESK_TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"
INTERCOM_SIGNATURE_HEADER = "X-Hub-Signature"
INGEST_TOKEN_HEADER = "X-Convintel-Ingest-Token"


class SignatureError(Exception):
    """The delivery is not proven to come from the helpdesk; the message says why."""


def zendesk_signature(secret: str, timestamp: str, body: bytes) -> str:
    """base64(HMAC-SHA256(secret, timestamp + body)), as Zendesk computes it."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("latin-1") + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_zendesk(
    secret: str, body: bytes, signature: str | None, timestamp: str | None, *, now: datetime, max_age_s: float
) -> None:
    """Raise SignatureError unless `signature` signs `timestamp + body` and `timestamp` is
    within `max_age_s` seconds of `now` (either way: clocks drift)."""
    if not signature or not timestamp:
        raise SignatureError(f"{ZENDESK_SIGNATURE_HEADER} and {ZENDESK_TIMESTAMP_HEADER} are required")
    expected = zendesk_signature(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode("ascii"), signature.strip().encode("latin-1")):
        raise SignatureError(f"{ZENDESK_SIGNATURE_HEADER} does not match the body")
    signed_at = parse_timestamp(timestamp)
    if signed_at is None:
        raise SignatureError(f"{ZENDESK_TIMESTAMP_HEADER} is not an ISO-8601 time")
    try:
        age = abs((now - signed_at).total_seconds())
    except OverflowError:  # a year-1 time with an offset cannot be compared
        raise SignatureError(f"{ZENDESK_TIMESTAMP_HEADER} is not a usable time") from None
    if age > max_age_s:
        raise SignatureError(
            f"{ZENDESK_TIMESTAMP_HEADER} is {age:.0f} s away from the server's clock; at most {max_age_s:g} s is "
            "accepted (a replayed delivery, or a clock to fix)"
        )


def intercom_signature(secret: str, body: bytes) -> str:
    """`sha1=` and the hex HMAC-SHA1 of the body, as Intercom computes it."""
    return "sha1=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha1).hexdigest()


def verify_intercom(secret: str, body: bytes, signature: str | None) -> None:
    """Raise SignatureError unless `signature` is Intercom's signature of `body`."""
    if not signature:
        raise SignatureError(f"{INTERCOM_SIGNATURE_HEADER} is required")
    expected = intercom_signature(secret, body)
    if not hmac.compare_digest(expected.encode("ascii"), signature.strip().lower().encode("latin-1")):
        raise SignatureError(f"{INTERCOM_SIGNATURE_HEADER} does not match the body")


def verify_token(expected: str, presented: str | None, header: str = INGEST_TOKEN_HEADER) -> None:
    """Raise SignatureError unless `presented` is the shared token."""
    if not presented:
        raise SignatureError(f"{header} is required")
    if not hmac.compare_digest(expected.encode("utf-8"), presented.strip().encode("latin-1")):
        raise SignatureError(f"{header} is not the configured token")
