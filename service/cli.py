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

    settings = get_settings()
    try:  # check bundle and policy here too, so a bad one ends with one clear line, not a traceback
        load_policy(settings.policy_file)
        load_bundle(settings.model_path)
    except (BundleError, PolicyError) as exc:
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
    config_file: Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML training config (flags override it)")] = None,
    recipe: Annotated[Optional[str], typer.Option(help="'default' (public sets + own data) or 'none' (only --data)")] = None,
    data: Annotated[Optional[list[Path]], typer.Option("--data", "-d", help="Labelled interactions, JSONL or CSV (repeatable)")] = None,
    skip_invalid: Annotated[Optional[bool], typer.Option("--skip-invalid", help="Skip and count invalid rows instead of stopping")] = None,
    tasks: Annotated[Optional[str], typer.Option(help="Comma-separated tasks (default: sentiment,emotions,urgency)")] = None,
    mode: Annotated[Optional[str], typer.Option(help="'heads' (frozen encoder) or 'finetune'")] = None,
    method: Annotated[Optional[str], typer.Option(help="finetune: 'lora' adapters or 'full'")] = None,
    encoder_path: Annotated[Optional[Path], typer.Option(help="Base encoder directory (default: the package)")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Bundle directory to write")] = None,
    data_root: Annotated[Optional[Path], typer.Option(envvar="CONVINTEL_DATA_ROOT", help="Public data sets folder")] = None,
    name: Annotated[Optional[str], typer.Option(help="Bundle name")] = None,
    version: Annotated[Optional[str], typer.Option(help="Bundle version")] = None,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Encoder feature cache (heads mode)")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Maximum epochs")] = None,
    learning_rate: Annotated[Optional[float], typer.Option(help="Learning rate (heads, or encoder/adapter)")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Batch size")] = None,
    max_length: Annotated[Optional[int], typer.Option(help="Word pieces read per text while training")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="finetune: stop after this many steps")] = None,
    hidden_dim: Annotated[Optional[int], typer.Option(help="Head hidden layer width")] = None,
    patience: Annotated[Optional[int], typer.Option(help="Early stopping: dev checks without improvement")] = None,
    class_weighting: Annotated[Optional[bool], typer.Option("--class-weighting/--no-class-weighting", help="Balance classes in single-label losses")] = None,
    label_smoothing: Annotated[Optional[float], typer.Option(help="Label smoothing of single-label losses")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed (same seed, same bundle)")] = None,
    device: Annotated[Optional[str], typer.Option(help="'auto' (GPU when present), 'cpu' or 'cuda'")] = None,
    threads: Annotated[Optional[int], typer.Option(help="torch CPU threads (1 is fastest on a busy machine)")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="finetune: continue from the last checkpoint")] = False,
) -> None:
    """Train a model bundle: heads on the frozen encoder, or fine-tune the encoder (LoRA or
    full) with the heads. Settings come from --config and/or flags."""
    from nlp.bundle import BundleError
    from nlp.encoder import Encoder, EncoderLoadError
    from training.checkpoint import CheckpointError
    from training.config import ConfigError, load_train_config
    from training.datasets import DataError
    from training.recipes import build_recipe
    from training.train import finetune_bundle, train_bundle

    import torch

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    overrides = {
        "recipe": recipe, "data": data, "skip_invalid": skip_invalid, "mode": mode, "finetune.method": method,
        "tasks": [t.strip() for t in tasks.split(",") if t.strip()] if tasks else None,
        "encoder_path": encoder_path, "output": output, "data_root": data_root, "name": name, "version": version,
        "cache_dir": cache_dir, "epochs": epochs, "learning_rate": learning_rate, "batch_size": batch_size,
        "max_length": max_length, "finetune.max_steps": max_steps, "hidden_dim": hidden_dim, "patience": patience,
        "class_weighting": class_weighting, "label_smoothing": label_smoothing, "seed": seed, "device": device,
        "threads": threads,
    }
    try:
        config = load_train_config(config_file, overrides)
    except ConfigError as exc:
        _fail(str(exc))
    if config.recipe == "default" and not config.data_root.is_dir():
        _fail(f"data folder {config.data_root} does not exist (set --data-root or CONVINTEL_DATA_ROOT)")
    try:
        task_data, skipped = build_recipe(config)
    except DataError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot read {exc.filename}: {exc.strerror}")
    if skipped:
        typer.secho(f"skipped {len(skipped)} invalid row(s):", fg=typer.colors.YELLOW, err=True)
        for problem in skipped[:10]:
            typer.echo(f"  {problem}", err=True)
    try:
        if config.threads:
            torch.set_num_threads(config.threads)
        if config.mode == "heads":
            encoder = Encoder(config.encoder_path, max_seq_length=config.max_length, device=config.resolved_device())
            manifest, _ = train_bundle(task_data, config.output, name=config.name, version=config.version,
                                       config=config.head_config(), cache_dir=config.cache_dir, encoder=encoder,
                                       recipe_name=config.recipe)
        else:
            manifest, _ = finetune_bundle(task_data, config, recipe_name=config.recipe, resume=resume)
    except (EncoderLoadError, CheckpointError, BundleError) as exc:
        _fail(str(exc))
    typer.echo(f"wrote {config.output} in {manifest.training['seconds']} s")
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
