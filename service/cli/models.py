"""`convintel train`, `evaluate` and `evaluate-escalation`: model bundles, trained and measured."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

from nlp.errors import BundleError, EncoderLoadError
from nlp.extras import MissingExtra
from service.cli.escalation_set import (
    DataRootOption,
    EscalationDataOption,
    EscalationSetDirOption,
    read_escalation_rows,
)
from service.cli.main import DATA_ROOT, app, check_output_folder, fail, load_settings, report_skipped
from training.datasets import DataError

# Heavy modules (torch, transformers, spaCy) are imported inside the commands that use them: see __init__.py.


@app.command()
def train(
    config_file: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML training config (flags override it)")
    ] = None,
    recipe: Annotated[
        str | None, typer.Option(help="'default' (public sets + own data) or 'none' (only --data)")
    ] = None,
    data: Annotated[
        list[Path] | None, typer.Option("--data", "-d", help="Labelled interactions, JSONL or CSV (repeatable)")
    ] = None,
    skip_invalid: Annotated[
        bool | None, typer.Option("--skip-invalid", help="Skip and count invalid rows instead of stopping")
    ] = None,
    tasks: Annotated[
        str | None, typer.Option(help="Comma-separated tasks (default: sentiment,emotions,urgency)")
    ] = None,
    mode: Annotated[str | None, typer.Option(help="'heads' (frozen encoder) or 'finetune'")] = None,
    method: Annotated[
        str | None, typer.Option(help="finetune: 'lora' adapters, 'partial' (top layers) or 'full'")
    ] = None,
    encoder_path: Annotated[Path | None, typer.Option(help="Base encoder directory (default: the package)")] = None,
    base_bundle: Annotated[
        Path | None,
        typer.Option(
            help="heads mode: refit the --tasks heads on this bundle's encoder and keep its other heads "
            "(e.g. --tasks complaint)"
        ),
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Bundle directory to write")] = None,
    data_root: Annotated[
        Path | None, typer.Option(envvar="CONVINTEL_DATA_ROOT", help="Public data sets folder")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Bundle name")] = None,
    version: Annotated[str | None, typer.Option(help="Bundle version")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="Encoder feature cache (heads mode)")] = None,
    epochs: Annotated[int | None, typer.Option(help="Maximum epochs")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Learning rate (heads, or encoder/adapter)")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size")] = None,
    max_length: Annotated[int | None, typer.Option(help="Word pieces read per text while training")] = None,
    max_steps: Annotated[int | None, typer.Option(help="finetune: stop after this many steps")] = None,
    hidden_dim: Annotated[int | None, typer.Option(help="Head hidden layer width")] = None,
    patience: Annotated[int | None, typer.Option(help="Early stopping: dev checks without improvement")] = None,
    class_weighting: Annotated[
        bool | None,
        typer.Option("--class-weighting/--no-class-weighting", help="Balance classes in single-label losses"),
    ] = None,
    label_smoothing: Annotated[float | None, typer.Option(help="Label smoothing of single-label losses")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (same seed, same bundle)")] = None,
    device: Annotated[str | None, typer.Option(help="'auto' (GPU when present), 'cpu' or 'cuda'")] = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads (1 is fastest on a busy machine)")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="finetune: continue from the last checkpoint")] = False,
) -> None:
    """Train a model bundle: heads on the frozen encoder, or fine-tune the encoder (LoRA,
    partial unfreezing or full) with the heads, or refit some heads on an existing bundle
    (--base-bundle). Settings come from --config and/or flags. The wall time is printed at
    the end; an interrupted fine-tune continues with --resume."""
    import torch

    from nlp.encoder import Encoder
    from training.checkpoint import CheckpointError
    from training.config import ConfigError, load_train_config
    from training.recipes import build_recipe
    from training.refit import RefitError, refit_bundle
    from training.train import finetune_bundle, train_bundle

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    overrides = {
        "recipe": recipe,
        "data": data,
        "skip_invalid": skip_invalid,
        "mode": mode,
        "finetune.method": method,
        "tasks": [t.strip() for t in tasks.split(",") if t.strip()] if tasks else None,
        "encoder_path": encoder_path,
        "base_bundle": base_bundle,
        "output": output,
        "data_root": data_root,
        "name": name,
        "version": version,
        "cache_dir": cache_dir,
        "epochs": epochs,
        "learning_rate": learning_rate,
        "batch_size": batch_size,
        "max_length": max_length,
        "finetune.max_steps": max_steps,
        "hidden_dim": hidden_dim,
        "patience": patience,
        "class_weighting": class_weighting,
        "label_smoothing": label_smoothing,
        "seed": seed,
        "device": device,
        "threads": threads,
    }
    try:
        config = load_train_config(config_file, overrides)
    except ConfigError as exc:
        fail(str(exc))
    if "output" not in config.model_fields_set:
        # The default folder is the shipped bundle's: writing there unasked would replace it.
        fail("say where to write the bundle: --output DIR, or output: in the config")
    if config.recipe == "default" and not config.data_root.is_dir():
        fail(f"data folder {config.data_root} does not exist (set --data-root or CONVINTEL_DATA_ROOT)")
    try:
        task_data, skipped = build_recipe(config)
    except DataError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot read {exc.filename}: {exc.strerror}")
    if skipped:
        typer.secho(f"skipped {len(skipped)} invalid row(s):", fg=typer.colors.YELLOW, err=True)
        for problem in skipped[:10]:
            typer.echo(f"  {problem}", err=True)
    try:
        if config.threads:
            torch.set_num_threads(config.threads)
        if config.base_bundle is not None and config.mode == "heads":
            manifest, _ = refit_bundle(
                config.base_bundle,
                task_data,
                config.output,
                name=config.name,
                version=config.version,
                config=config.head_config(),
                cache_dir=config.cache_dir,
                device=config.resolved_device(),
                recipe_name=config.recipe,
            )
        elif config.mode == "heads":
            encoder = Encoder(config.encoder_path, max_seq_length=config.max_length, device=config.resolved_device())
            manifest, _ = train_bundle(
                task_data,
                config.output,
                name=config.name,
                version=config.version,
                config=config.head_config(),
                cache_dir=config.cache_dir,
                encoder=encoder,
                recipe_name=config.recipe,
            )
        else:
            manifest, _ = finetune_bundle(task_data, config, recipe_name=config.recipe, resume=resume)
    except (EncoderLoadError, CheckpointError, BundleError, RefitError, MissingExtra) as exc:
        fail(str(exc))
    resumed = manifest.training.get("resumed_from_step")
    typer.echo(
        f"wrote {config.output} in {manifest.training['seconds']} s of wall time"
        + (f" (this part, resumed at step {resumed})" if resumed else "")
    )
    refit = manifest.training.get("refit_tasks")
    for task, entry in manifest.tasks.items():
        kept = " (kept from the base bundle)" if refit is not None and task not in refit else ""
        typer.echo(f"  {task}{kept}: " + ", ".join(f"{k}={v:.3f}" for k, v in entry.metrics.items()))


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option("--model", "-m", help="Model bundle directory")],
    data: Annotated[
        list[str],
        typer.Option(
            "--data",
            "-d",
            help="Labelled data, repeatable: a JSONL or CSV file of labelled interactions (a quoted glob pools "
            "files), or shared:SET[:SPLIT] (tweeteval/sentiment, goemotions/original, meld/sentiment, "
            "goemotions/group-sentiment, xci/complaint)",
        ),
    ],
    task: Annotated[str | None, typer.Option(help="Only this task: sentiment, urgency, emotions or complaint")] = None,
    split: Annotated[
        str | None,
        typer.Option(help="Only this split of labelled-interaction files (e.g. heldout); default: every row"),
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for metrics.json and report.html")] = Path(
        "var/evaluation"
    ),
    data_root: Annotated[
        Path, typer.Option(envvar="CONVINTEL_DATA_ROOT", help="Public data sets folder (for shared:)")
    ] = DATA_ROOT,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Skip invalid rows (and count them) instead of stopping")
    ] = False,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Encoder feature cache, e.g. .cache/features; default: none")
    ] = None,
) -> None:
    """Evaluate a model bundle on labelled data, beside a VADER baseline for sentiment;
    writes metrics.json and report.html."""
    from training.evaluate import SourceError, evaluate_bundle
    from training.report import render_summary, write_outputs

    check_output_folder(output)
    try:
        result = evaluate_bundle(
            model, data, data_root=data_root, task=task, split=split, skip_invalid=skip_invalid, cache_dir=cache_dir
        )
    except (BundleError, DataError, SourceError, EncoderLoadError, MissingExtra) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot read {exc.filename}: {exc.strerror}")
    report_skipped(len(result.skipped_rows), result.skipped_rows)
    metrics_path, report_path = write_outputs(result, output)
    typer.echo(render_summary(result))
    for note in result.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"wrote {metrics_path} and {report_path}")


@app.command("evaluate-escalation")
def evaluate_escalation_command(
    data: EscalationDataOption = None,
    set_dir: EscalationSetDirOption = None,
    data_root: DataRootOption = DATA_ROOT,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for escalation_metrics.json and escalation_report.md")
    ] = Path("var/evaluation"),
) -> None:
    """Score the escalation advice (configured bundle and policy) against labelled
    conversations: precision/recall of `recommended` and level accuracy, on all of them
    and on the held-out part."""
    from service.runtime import STARTUP_ERRORS, load_analyzer
    from training.escalation_eval import evaluate_escalation, render_markdown

    check_output_folder(output)
    rows, source = read_escalation_rows(data, set_dir, data_root)
    try:
        analyzer = load_analyzer(load_settings())
    except STARTUP_ERRORS as exc:
        fail(str(exc))
    report = evaluate_escalation(analyzer, rows)
    output.mkdir(parents=True, exist_ok=True)
    (output / "escalation_metrics.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    markdown = render_markdown(report, source)
    (output / "escalation_report.md").write_text(markdown, encoding="utf-8")
    typer.echo(markdown)
    typer.echo(f"wrote {output / 'escalation_metrics.json'} and {output / 'escalation_report.md'}")


@app.command("evaluate-cues")
def evaluate_cues_command(
    data_root: Annotated[
        Path, typer.Option("--data-root", envvar="CONVINTEL_DATA_ROOT", help="The public data sets folder")
    ] = DATA_ROOT,
    split: Annotated[str, typer.Option(help="'heldout' (never tuned on) or 'train'")] = "heldout",
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for cue_metrics.json and cue_report.md")
    ] = Path("var/evaluation"),
) -> None:
    """Score the risk cues of the configured bundle per family on the double-labelled
    messages (data/urgency, data/cues and the public pool): patterns alone, the cue head
    alone, and both together, as the service reports them."""
    from nlp.paths import source_root
    from service.runtime import STARTUP_ERRORS, load_analyzer
    from training.cue_data import cue_interactions
    from training.cue_eval import evaluate_cues, render_markdown

    if split not in ("heldout", "train"):
        fail(f"--split must be 'heldout' or 'train', not {split!r}")
    checkout = source_root()
    if checkout is None:
        fail("evaluate-cues reads data/urgency and data/cues of convintel's source checkout")
    check_output_folder(output)
    rows = [row for row in cue_interactions(data_root, checkout) if row.split == split]
    try:
        analyzer = load_analyzer(load_settings())
        report = evaluate_cues(analyzer, rows)
    except (*STARTUP_ERRORS, ValueError) as exc:
        fail(str(exc))
    output.mkdir(parents=True, exist_ok=True)
    (output / "cue_metrics.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    markdown = render_markdown(report, f"double-labelled messages, {split} part")
    (output / "cue_report.md").write_text(markdown, encoding="utf-8")
    typer.echo(markdown)
    typer.echo(f"wrote {output / 'cue_metrics.json'} and {output / 'cue_report.md'}")
