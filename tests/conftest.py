"""Shared fixtures: the real shipped bundle (loaded once per session) and app instances
over a temporary conversation store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings

from nlp.analyzer import Analyzer
from nlp.config import AnalyzerConfig, InspectionConfig
from service.api.app import create_app
from service.settings import Settings

# CI (CI=true) replays the same examples every run, so a red build always means a change
# broke something; local runs keep exploring new examples (`make test-fuzz` explores more).
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
BUNDLE = ROOT / "models" / "convintel-base"
NO_INSPECTION = InspectionConfig(detect_cues=False, redact_pii=False, match_categories=False)
"""The session analyzer loads no spaCy pipeline; tests that need one build their own."""


def load_fixture(name: str) -> dict:
    return json.loads((FIXTURES / "transcripts" / name).read_text())


@pytest.fixture(scope="session")
def analyzer() -> Analyzer:
    return Analyzer.load(AnalyzerConfig(BUNDLE, inspection=NO_INSPECTION))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, db_path=tmp_path / "conversations.sqlite3", models_dir=ROOT / "models")


@pytest.fixture
def client(settings: Settings, analyzer: Analyzer):
    with TestClient(create_app(settings, analyzer)) as test_client:
        yield test_client
