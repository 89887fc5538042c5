"""The `convintel` command line (typer)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="convintel: conversation intelligence for support teams.")


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option(help="Bind address (default: CONVINTEL_HOST)")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (default: CONVINTEL_PORT)")] = None,
    workers: Annotated[int, typer.Option(help="Server processes (each loads the models)")] = 1,
) -> None:
    """Start the HTTP API with the configured model bundle."""
    import uvicorn

    from nlp.bundle import BundleError, load_bundle
    from nlp.policy import PolicyError, load_policy
    from service.settings import get_settings
    from nlp.backends import prepare_encoder
    from nlp.encoder import EncoderLoadError

    settings = get_settings()
    try:  # check bundle and policy here too, so a bad one ends with one clear line, not a traceback
        load_policy(settings.policy_file)
        bundle = load_bundle(settings.model_path)
        # An ONNX backend's graph is exported here, once, before the server workers start.
        prepare_encoder(settings.encoder_backend, settings.encoder_path, cache_dir=settings.encoder_cache_dir,
                        max_seq_length=bundle.manifest.encoder.max_seq_length)
    except (BundleError, PolicyError, EncoderLoadError) as exc:
        _fail(f"cannot start: {exc}")
    uvicorn.run("service.app:create_app", factory=True, host=host or settings.host, port=port or settings.port,
                workers=workers, log_level=settings.log_level)


@app.command()
def analyze(
    source: Annotated[str, typer.Argument(help="Transcript JSON file, or - for standard input")],
    pretty: Annotated[bool, typer.Option(help="Indent the JSON output")] = True,
) -> None:
    """Analyse one transcript (the /v1/analyze body) and print the analysis JSON."""
    from pydantic import ValidationError

    from nlp.bundle import BundleError
    from nlp.policy import PolicyError
    from nlp.schemas import Transcript
    from service.app import load_analyzer
    from service.settings import get_settings

    try:
        raw = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot read {source}: {exc.strerror}")
    try:
        transcript = Transcript.model_validate_json(raw)
    except ValidationError as exc:
        _fail(f"{source} is not a valid transcript:\n{exc}")
    try:
        analyzer = load_analyzer(get_settings())
    except (BundleError, PolicyError) as exc:
        _fail(str(exc))
    result = analyzer.analyze(transcript)
    typer.echo(result.model_dump_json(indent=2 if pretty else None))


@app.command()
def train(
    recipe: Annotated[str, typer.Option(help="Training recipe: 'default' (the shipped bundle)")] = "default",
    output: Annotated[Path, typer.Option("--output", "-o", help="Bundle directory to write")] = Path("models/convintel-base"),
    data_root: Annotated[Path, typer.Option(envvar="CONVINTEL_DATA_ROOT", help="Public data sets folder")] = Path("../shared/data"),
    name: Annotated[str, typer.Option(help="Bundle name")] = "convintel-base",
    version: Annotated[str, typer.Option(help="Bundle version")] = "0.1.0",
    cache_dir: Annotated[Path, typer.Option(help="Encoder feature cache")] = Path(".cache/features"),
    epochs: Annotated[int, typer.Option(help="Maximum epochs per head")] = 40,
    learning_rate: Annotated[float, typer.Option(help="Head learning rate")] = 1e-3,
    batch_size: Annotated[int, typer.Option(help="Head training batch size")] = 256,
    hidden_dim: Annotated[int, typer.Option(help="Head hidden layer width")] = 512,
    patience: Annotated[int, typer.Option(help="Early-stopping patience (epochs)")] = 5,
    class_weighting: Annotated[bool, typer.Option(help="Balance classes in multi-class losses")] = True,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same bundle)")] = 13,
) -> None:
    """Train the task heads and write a model bundle."""
    from training.datasets import DataError
    from training.head_trainer import HeadTrainingConfig
    from training.recipes import default_recipe
    from training.train import train_bundle

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if recipe != "default":
        _fail(f"unknown recipe {recipe!r}; available: default")
    if not data_root.is_dir():
        _fail(f"data folder {data_root} does not exist (set --data-root or CONVINTEL_DATA_ROOT)")
    try:
        tasks = default_recipe(data_root)
    except (DataError, OSError) as exc:
        _fail(str(exc))
    config = HeadTrainingConfig(hidden_dim=hidden_dim, learning_rate=learning_rate, batch_size=batch_size,
                                max_epochs=epochs, patience=patience, class_weighting=class_weighting, seed=seed)
    manifest, _ = train_bundle(tasks, output, name=name, version=version, config=config, cache_dir=cache_dir,
                               recipe_name=recipe)
    typer.echo(f"wrote {output} in {manifest.training['seconds']} s")
    for task, entry in manifest.tasks.items():
        typer.echo(f"  {task}: " + ", ".join(f"{k}={v:.3f}" for k, v in entry.metrics.items()))


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option("--model", "-m", help="Model bundle directory")],
    data: Annotated[list[str], typer.Option(
        "--data", "-d",
        help="Labelled data, repeatable: a JSONL or CSV file of labelled interactions (a quoted glob pools "
             "files), or shared:SET[:SPLIT] (tweeteval/sentiment, goemotions/original, meld/sentiment, "
             "goemotions/group-sentiment)")],
    task: Annotated[Optional[str], typer.Option(help="Only this task: sentiment, urgency or emotions")] = None,
    split: Annotated[Optional[str], typer.Option(
        help="Only this split of labelled-interaction files (e.g. heldout); default: every row")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for metrics.json and report.html")] = Path("var/evaluation"),
    data_root: Annotated[Path, typer.Option(envvar="CONVINTEL_DATA_ROOT", help="Public data sets folder (for shared:)")] = Path("../shared/data"),
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Skip invalid rows (and count them) instead of stopping")] = False,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Encoder feature cache, e.g. .cache/features; default: none")] = None,
) -> None:
    """Evaluate a model bundle on labelled data, beside a VADER baseline for sentiment;
    writes metrics.json and report.html."""
    from nlp.bundle import BundleError
    from nlp.encoder import EncoderLoadError
    from training.datasets import DataError
    from training.evaluate import SourceError, evaluate_bundle
    from training.report import render_summary, write_outputs

    try:
        result = evaluate_bundle(model, data, data_root=data_root, task=task, split=split,
                                 skip_invalid=skip_invalid, cache_dir=cache_dir)
    except (BundleError, DataError, SourceError, EncoderLoadError) as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot read {exc.filename}: {exc.strerror}")
    if result.skipped_rows:
        typer.secho(f"skipped {len(result.skipped_rows)} invalid row(s):", fg=typer.colors.YELLOW, err=True)
        for problem in result.skipped_rows[:10]:
            typer.echo(f"  {problem}", err=True)
    metrics_path, report_path = write_outputs(result, output)
    typer.echo(render_summary(result))
    for note in result.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"wrote {metrics_path} and {report_path}")


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
