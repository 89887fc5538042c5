"""Fixtures of the archive scoring tests."""

from __future__ import annotations

import pytest

from nlp.analyzer import Analyzer
from nlp.inspection import build_inspector
from service.settings import Settings


@pytest.fixture(scope="module")
def full_analyzer(analyzer: Analyzer) -> Analyzer:
    """The shipped configuration (cues and redaction on), sharing the session's encoder."""
    inspector = build_inspector(Settings(_env_file=None).analyzer_config().inspection)
    return Analyzer(analyzer.encoder, analyzer.bundle, inspector=inspector)
