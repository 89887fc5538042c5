"""`convintel serve`, `check` and `analyze`: the service, its start-up check, and one transcript."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from pydantic import ValidationError

from nlp.schemas import Transcript
from service.cli.main import app, fail, load_settings
from service.database_url import describe_database_url
from service.logs import log_config

# Heavy modules (torch, transformers, spaCy) are imported inside the commands that use them: see __init__.py.


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default: CONVINTEL_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: CONVINTEL_PORT)")] = None,
    workers: Annotated[int, typer.Option(help="Server processes (each loads the models)")] = 1,
) -> None:
    """Start the HTTP API with the configured model bundle."""

    from service.runtime import StartupError, check_startup

    settings = load_settings()
    try:  # checked before uvicorn starts, so a bad configuration ends with one clear line
        check_startup(settings)
    except StartupError as exc:
        fail(f"cannot start: {exc}")
    # The service writes its own JSON line per request, so uvicorn's access log is off.
    uvicorn.run(
        "service.api.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level=settings.log_level,
        log_config=log_config(settings),
        access_log=False,
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
    )


@app.command()
def check() -> None:
    """Check the configuration as `serve` does, and prepare what its start-up would.

    Checks the bundle, policy, categories, API keys, alert webhooks and topic model, and exports the ONNX
    graph of an ONNX encoder backend into CONVINTEL_ENCODER_CACHE_DIR (the Docker image runs
    this at build time to bake the graph in)."""
    from service.runtime import StartupError, check_startup

    settings = load_settings()
    try:
        found = check_startup(settings)
    except StartupError as exc:
        fail(f"configuration check failed: {exc}")
    typer.echo(f"model bundle: {found.bundle.name} {found.bundle.version} ({found.bundle.path})")
    typer.echo(
        f"encoder backend: {settings.encoder_backend}"
        + (f" (graph {found.onnx_graph.resolve()})" if found.onnx_graph else "")
    )
    typer.echo(f"conversation state: {describe_database_url(settings.store_url())}")
    typer.echo("configuration ok")


@app.command()
def analyze(
    source: Annotated[str, typer.Argument(help="Transcript JSON file, or - for standard input")],
    pretty: Annotated[bool, typer.Option(help="Indent the JSON output")] = True,
) -> None:
    """Analyse one transcript (the /v1/analyze body) and print the analysis JSON."""

    from service.runtime import STARTUP_ERRORS, load_analyzer

    try:
        raw = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read {source}: {exc.strerror}")
    try:
        transcript = Transcript.model_validate_json(raw)
    except ValidationError as exc:
        fail(f"{source} is not a valid transcript:\n{exc}")
    try:
        analyzer = load_analyzer(load_settings())
    except STARTUP_ERRORS as exc:
        fail(str(exc))
    result = analyzer.analyze(transcript)
    typer.echo(result.model_dump_json(indent=2 if pretty else None))
