"""Message ids: the caller's when given, otherwise `m<position>` (1-based), never one the
conversation already uses. Whole transcripts and the per-message store both name
messages with `assign_message_ids`, so a message gets the same id either way."""

from __future__ import annotations

from collections.abc import Collection, Sequence

PENDING_ID = "pending"
"""The id a per-message analysis carries until the store assigns the message its id (the
position is only known inside the write transaction)."""


def assign_message_ids(
    given: Sequence[str | None], *, first_position: int = 1, taken: Collection[str] = ()
) -> list[str]:
    """Keep callers' ids; name the rest `m<position>`, counting from `first_position`,
    with a `-1`, `-2`... suffix where that id is already in use (in `given` or `taken`)."""
    used = set(taken) | {mid for mid in given if mid is not None}
    ids: list[str] = []
    for position, mid in enumerate(given, start=first_position):
        if mid is None:
            mid = _unused(f"m{position}", used)
            used.add(mid)
        ids.append(mid)
    return ids


def _unused(base: str, used: set[str]) -> str:
    candidate, suffix = base, 1
    while candidate in used:
        candidate, suffix = f"{base}-{suffix}", suffix + 1
    return candidate
