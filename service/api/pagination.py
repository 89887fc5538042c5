"""Opaque cursors for the conversation listing: a cursor is the last item's position
(change time, id), base64url-encoded JSON. Keyset pagination on that pair, not an offset:
a conversation added while a client pages never shifts an item into or out of a page it
has not read yet."""

from __future__ import annotations

import base64
import binascii
import json
import re

from nlp.schemas import IDENTIFIER_PATTERN
from nlp.timestamps import parse_timestamp
from service.store import ListPosition

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
"""Items per page at most: each item is a few hundred bytes and a page is one short read
transaction, so a page stays well under 100 KB and holds a pooled connection only briefly."""
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"
MAX_CURSOR_LENGTH = 512  # a stored time (29 characters) and an id (at most 128), encoded


class InvalidCursor(ValueError):
    """The text is not a cursor this service handed out."""


def encode_cursor(position: ListPosition) -> str:
    """The cursor for `position` (base64url, without padding)."""
    raw = json.dumps([position.updated_at, position.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> ListPosition:
    """The position `cursor` holds; InvalidCursor when it is not one `encode_cursor` made."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError) as exc:  # bad base64, bad UTF-8, bad JSON
        raise InvalidCursor("cursor is not one this service returned (pass next_cursor as it came)") from exc
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(part, str) and part for part in value)
        or parse_timestamp(value[0]) is None
        or re.fullmatch(IDENTIFIER_PATTERN, value[1]) is None  # every stored conversation id matches
    ):
        raise InvalidCursor("cursor is not one this service returned (pass next_cursor as it came)")
    return ListPosition(updated_at=value[0], id=value[1])
