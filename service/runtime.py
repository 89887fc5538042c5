"""Loading what every entry point needs, checked in one place: the HTTP app, `convintel
serve` (before its worker processes start), the CLI commands and the archive-scoring
workers all go through here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nlp.analyzer import Analyzer
from nlp.backends import prepare_encoder
from nlp.bundle import BundleError, ModelBundle, load_bundle
from nlp.categories import load_categories
from nlp.cue_patterns import load_cues
from nlp.encoder import EncoderLoadError
from nlp.extras import MissingExtra, require
from nlp.policy import load_policy
from nlp.topics.model import TopicModelError, load_topic_model
from nlp.yaml_config import ConfigFileError
from service.alerts.webhooks import AlertConfigError, load_alert_config
from service.memory import HeapTrimmer
from service.settings import Settings

STARTUP_ERRORS = (BundleError, ConfigFileError, EncoderLoadError, TopicModelError, AlertConfigError, MissingExtra)
"""What a bad configuration raises at start-up (an API-key file error is a ConfigFileError)."""


class StartupError(Exception):
    """The configuration cannot start the service; the message says why, in one line."""


@dataclass(frozen=True)
class StartupCheck:
    """What `check_startup` found: the configured bundle, and the ONNX graph it prepared
    (None for the torch backend)."""

    bundle: ModelBundle
    onnx_graph: Path | None


def load_analyzer(settings: Settings) -> Analyzer:
    """The analyzer `settings` describe, returning freed heap memory to the OS after
    encoder passes as configured (`heap_trim_interval_s`). Raises one of STARTUP_ERRORS."""
    trimmer = HeapTrimmer(settings.heap_trim_interval_s)
    return Analyzer.load(settings.analyzer_config(), after_encode=trimmer.maybe_trim)


def check_startup(settings: Settings) -> StartupCheck:
    """Validate every configured file and the bundle without loading the models, and
    export the ONNX graph when the backend needs one (once, before worker processes
    start, so they never race to write it). Raises StartupError."""
    from service.api.auth import load_keyring  # the API-key files are checked too

    try:
        load_policy(settings.policy_file)
        load_categories(settings.categories_file)
        load_cues(settings.cues_file)
        bundle = load_bundle(settings.model_path)
        load_keyring(settings)
        load_alert_config(settings)
        if not settings.store_url().startswith("sqlite"):
            require("psycopg", "postgres", "a PostgreSQL store (CONVINTEL_DATABASE_URL)")
        if settings.topic_model is not None:
            load_topic_model(settings.topic_model)
        check_database(settings)
        graph = prepare_encoder(
            settings.encoder_config(), max_seq_length=bundle.manifest.encoder.max_seq_length, adapter=bundle.adapter
        )
    except STARTUP_ERRORS as exc:
        raise StartupError(str(exc)) from exc
    return StartupCheck(bundle=bundle, onnx_graph=graph)


def check_database(settings: Settings) -> None:
    """Connect to a database server (PostgreSQL) once before the server's worker processes
    start, so an unreachable server or a wrong password ends the start-up with one line
    naming the database (password hidden), not a traceback. A SQLite file is left alone:
    `convintel check` writes no state, and the service creates the file when it starts."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    from service.database_url import describe_database_url
    from service.store.database import Database

    url = settings.store_url()
    if url.startswith("sqlite"):
        return
    database = Database(url, settings.database_pool())
    try:
        with database.read() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise StartupError(f"cannot open the database {describe_database_url(url)}: {reason}") from exc
    finally:
        database.close()
