"""Handing freed heap memory back to the operating system.

Each encoder pass allocates activations sized by its batch (messages x word pieces) and
frees them afterwards. glibc's malloc keeps freed pages for reuse, and with batch shapes that
change on every call (micro-batches of 1 to 32 messages of any length) its heap fragments:
resident memory climbs by hundreds of MiB with nothing leaked (README, "Memory":
`bench/load.py --memory-requests 10000`). Trimming costs a few milliseconds, so `HeapTrimmer` does it at most once per
interval, right after an encoder pass (when the most memory has just been freed)."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import time
from collections.abc import Callable
from functools import lru_cache

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None on another C library (musl, macOS), where it is absent."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


def trim_heap() -> bool:
    """Return the heap's free pages to the operating system; False where that is unsupported."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


class HeapTrimmer:
    """Calls `trim_heap` at most once per `interval_s` seconds (never when it is None or 0)."""

    def __init__(self, interval_s: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s or 0.0
        self._clock = clock
        self._last = clock()
        self.trims = 0

    def maybe_trim(self) -> None:
        if self.interval_s <= 0 or self._clock() - self._last < self.interval_s:
            return
        self._last = self._clock()
        if trim_heap():
            self.trims += 1
