"""Errors raised while loading models, defined apart from the heavy modules that raise them
(torch, sentence-transformers): the command line and the start-up checks catch them
without importing those."""

from __future__ import annotations


class BundleError(RuntimeError):
    """A bundle is missing, malformed, or does not match its manifest."""


class EncoderLoadError(RuntimeError):
    """The encoder's files are missing or unreadable."""


class TopicModelError(RuntimeError):
    """A topic model folder is missing, unreadable or inconsistent."""
