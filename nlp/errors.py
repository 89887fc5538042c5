"""Errors raised while loading models, defined apart from the heavy modules that raise them
(torch, sentence-transformers): the command line and the start-up checks catch them
without importing those."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class BundleError(RuntimeError):
    """A bundle is missing, malformed, or does not match its manifest."""


class EncoderLoadError(RuntimeError):
    """The encoder's files are missing or unreadable."""


class TopicModelError(RuntimeError):
    """A topic model folder is missing, unreadable or inconsistent."""


def describe_validation_error(exc: ValidationError, *, limit: int | None = 3, root: str = "row") -> str:
    """One line naming the failing fields, e.g. `messages.0.role: Input should be ...`: the
    first `limit` problems (None: all), then how many more; `root` names a problem with the
    whole object."""
    errors = exc.errors()
    shown = errors if limit is None else errors[:limit]
    parts = [f"{'.'.join(str(p) for p in err['loc']) or root}: {err['msg']}" for err in shown]
    more = len(errors) - len(shown)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
