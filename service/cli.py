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


def _print_version(value: bool) -> None:
    """--version: print the version and stop before any command runs."""
    if value:
        from nlp import __version__

        typer.echo(f"convintel {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit")] = False,
) -> None:
    """convintel: conversation intelligence for support teams."""


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _report_skipped(count: int, problems: list[str], what: str = "invalid row(s)") -> None:
    """Say on stderr how much input was skipped, with the first few problems."""
    if count:
        typer.secho(f"skipped {count} {what}:", fg=typer.colors.YELLOW, err=True)
        for problem in problems[:10]:
            typer.echo(f"  {problem}", err=True)


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option(help="Bind address (default: CONVINTEL_HOST)")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (default: CONVINTEL_PORT)")] = None,
    workers: Annotated[int, typer.Option(help="Server processes (each loads the models)")] = 1,
) -> None:
    """Start the HTTP API with the configured model bundle."""
    import uvicorn

    from service.logs import log_config
    from service.runtime import StartupError, check_startup
    from service.settings import get_settings

    settings = get_settings()
    try:  # checked before uvicorn starts, so a bad configuration ends with one clear line
        check_startup(settings)
    except StartupError as exc:
        _fail(f"cannot start: {exc}")
    # The service writes its own JSON line per request, so uvicorn's access log is off.
    uvicorn.run("service.api.app:create_app", factory=True, host=host or settings.host, port=port or settings.port,
                workers=workers, log_level=settings.log_level, log_config=log_config(settings), access_log=False,
                timeout_graceful_shutdown=settings.shutdown_timeout_s)


@app.command()
def check() -> None:
    """Check the configuration as `serve` does, and prepare what its start-up would.

    Checks the bundle, policy, categories, API keys and topic model, and exports the ONNX
    graph of an ONNX encoder backend into CONVINTEL_ENCODER_CACHE_DIR (the Docker image runs
    this at build time to bake the graph in)."""
    from service.runtime import StartupError, check_startup
    from service.settings import get_settings

    settings = get_settings()
    try:
        found = check_startup(settings)
    except StartupError as exc:
        _fail(f"configuration check failed: {exc}")
    typer.echo(f"model bundle: {found.bundle.name} {found.bundle.version} ({found.bundle.path})")
    typer.echo(f"encoder backend: {settings.encoder_backend}"
               + (f" (graph {found.onnx_graph.resolve()})" if found.onnx_graph else ""))
    typer.echo(f"conversation state: {settings.db_path.resolve()}")
    typer.echo("configuration ok")


@app.command()
def analyze(
    source: Annotated[str, typer.Argument(help="Transcript JSON file, or - for standard input")],
    pretty: Annotated[bool, typer.Option(help="Indent the JSON output")] = True,
) -> None:
    """Analyse one transcript (the /v1/analyze body) and print the analysis JSON."""
    from pydantic import ValidationError

    from nlp.bundle import BundleError
    from nlp.yaml_config import ConfigFileError
    from nlp.schemas import Transcript
    from service.runtime import load_analyzer
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
    except (BundleError, ConfigFileError) as exc:
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
    method: Annotated[Optional[str], typer.Option(help="finetune: 'lora' adapters, 'partial' (top layers) or 'full'")] = None,
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
    """Train a model bundle: heads on the frozen encoder, or fine-tune the encoder (LoRA,
    partial unfreezing or full) with the heads. Settings come from --config and/or flags.
    The wall time is printed at the end; an interrupted fine-tune continues with --resume."""
    from nlp.bundle import BundleError
    from nlp.encoder import Encoder, EncoderLoadError
    from nlp.extras import MissingExtra
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
    except (EncoderLoadError, CheckpointError, BundleError, MissingExtra) as exc:
        _fail(str(exc))
    resumed = manifest.training.get("resumed_from_step")
    typer.echo(f"wrote {config.output} in {manifest.training['seconds']} s of wall time"
               + (f" (this part, resumed at step {resumed})" if resumed else ""))
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
    from nlp.extras import MissingExtra
    from training.datasets import DataError
    from training.evaluate import SourceError, evaluate_bundle
    from training.report import render_summary, write_outputs

    try:
        result = evaluate_bundle(model, data, data_root=data_root, task=task, split=split,
                                 skip_invalid=skip_invalid, cache_dir=cache_dir)
    except (BundleError, DataError, SourceError, EncoderLoadError, MissingExtra) as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot read {exc.filename}: {exc.strerror}")
    _report_skipped(len(result.skipped_rows), result.skipped_rows)
    metrics_path, report_path = write_outputs(result, output)
    typer.echo(render_summary(result))
    for note in result.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"wrote {metrics_path} and {report_path}")


@app.command("evaluate-escalation")
def evaluate_escalation_command(
    data: Annotated[Path, typer.Option("--data", "-d", help="Labelled conversations (JSONL, see data/escalation/GUIDELINE.md)")]
    = Path("data/escalation/conversations.jsonl"),
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for escalation_metrics.json and escalation_report.md")]
    = Path("var/evaluation"),
) -> None:
    """Score the escalation advice (configured bundle and policy) against labelled
    conversations: precision/recall of `recommended` and level accuracy, on all of them
    and on the held-out part."""
    from nlp.bundle import BundleError
    from nlp.yaml_config import ConfigFileError
    from service.runtime import load_analyzer
    from service.settings import get_settings
    from training.escalation_eval import EscalationDataError, evaluate_escalation, read_labelled, render_markdown

    try:
        rows = read_labelled(data)
    except EscalationDataError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot read {data}: {exc.strerror}")
    if not rows:
        _fail(f"{data} holds no labelled conversations")
    try:
        analyzer = load_analyzer(get_settings())
    except (BundleError, ConfigFileError) as exc:
        _fail(str(exc))
    report = evaluate_escalation(analyzer, rows)
    output.mkdir(parents=True, exist_ok=True)
    (output / "escalation_metrics.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    markdown = render_markdown(report, str(data))
    (output / "escalation_report.md").write_text(markdown, encoding="utf-8")
    typer.echo(markdown)
    typer.echo(f"wrote {output / 'escalation_metrics.json'} and {output / 'escalation_report.md'}")


@app.command()
def score(
    source: Annotated[Path, typer.Argument(help="Archive: .jsonl, .json, .csv or .parquet (file or folder of parts)")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Scored output: .jsonl, .csv or .parquet (a folder of parts)")],
    shape: Annotated[str, typer.Option(help="Rows hold 'transcripts' (/v1/analyze bodies) or 'messages' "
                                            "(one message with a conversation_id); 'auto' looks at the first row")] = "auto",
    errors: Annotated[Optional[Path], typer.Option(help="Errors file (JSONL); default: OUTPUT.errors.jsonl")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from its checkpoint")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output")] = False,
    engine: Annotated[str, typer.Option(help="'local' (this machine: this process, or --workers processes) or 'ray' "
                                             "(Ray Data)")] = "local",
    ray_address: Annotated[Optional[str], typer.Option(help="Ray cluster address (else CONVINTEL_RAY_ADDRESS or RAY_ADDRESS; "
                                                            "none: a local Ray)")] = None,
    num_cpus: Annotated[Optional[int], typer.Option(help="CPUs of the local Ray (default: CONVINTEL_RAY_NUM_CPUS or all)")] = None,
    workers: Annotated[Optional[int], typer.Option(min=1, help="--engine local: scoring processes, each with an equal share "
                                                              "of the torch threads (default: CONVINTEL_BATCH_WORKERS, 1)")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar")] = True,
) -> None:
    """Score an archive of conversations: per-message and per-conversation results, with
    a checkpoint after every chunk so that an interrupted run continues with --resume."""
    from nlp.bundle import BundleError
    from nlp.encoder import EncoderLoadError
    from nlp.policy import PolicyError
    from nlp.archive import ArchiveError
    from service.batch.records import Shape
    from service.batch.runner import CheckpointError, ScoreJob, ScoreJobError, run_score
    from service.settings import get_settings

    if shape not in {s.value for s in Shape}:
        _fail(f"--shape must be auto, transcripts or messages, not {shape!r}")
    if engine not in {"local", "ray"}:
        _fail(f"--engine must be local or ray, not {engine!r}")
    settings = get_settings()
    job = ScoreJob(input=source, output=output, errors=errors, shape=Shape(shape), resume=resume,
                   overwrite=overwrite, progress=progress)

    def make_engine():
        if engine == "ray":
            try:
                from service.batch.engines import RayEngine
            except ImportError:
                _fail("--engine ray needs Ray: pip install 'convintel[ray]'")
            return RayEngine(settings, address=ray_address, num_cpus=num_cpus)
        from service.batch.engines import LocalEngine, WorkerPoolEngine

        if (workers or settings.batch_workers) > 1:
            return WorkerPoolEngine(settings, workers or settings.batch_workers)
        from service.runtime import load_analyzer

        return LocalEngine(load_analyzer(settings))

    from service.batch.engines import EngineError

    try:
        summary = run_score(job, settings, make_engine)
    except (ArchiveError, ScoreJobError, CheckpointError, BundleError, PolicyError, EncoderLoadError,
            EngineError) as exc:
        _fail(str(exc))
    if summary.already_complete:
        typer.echo(f"{output} is already complete: {summary.conversations} conversations, {summary.errors} errors")
        return
    resumed = f", resumed after input row {summary.resumed_at_row}" if summary.resumed_at_row else ""
    typer.echo(f"scored {summary.conversations} conversations ({summary.messages} messages) into {output} "
               f"in {summary.seconds:.1f} s ({summary.messages_per_second:.0f} messages/s{resumed}); "
               f"{summary.errors} bad rows in {job.errors_path}")


@app.command()
def report(
    scored: Annotated[Path, typer.Argument(help="Output of `convintel score` (.jsonl, .json, .csv or .parquet)")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="HTML report to write")] = None,
    json_output: Annotated[Optional[Path], typer.Option("--json", help="Also write the figures as JSON (- for standard output)")] = None,
    period: Annotated[str, typer.Option(help="Time bucket: day, week, month or auto (by the archive's span)")] = "auto",
    top_issues: Annotated[int, typer.Option(help="Recurring issues to list")] = 10,
    title: Annotated[str, typer.Option(help="Report title")] = "Conversation trends",
) -> None:
    """Trend report over a scored archive: one self-contained HTML file with charts and KPIs,
    and/or the same figures as JSON."""
    from nlp.archive import ArchiveError
    from service.batch.report import PERIODS, build_figures, write_report
    from service.batch.scoring import read_scored

    if output is None and json_output is None:
        _fail("give --output for the HTML report, --json for the figures, or both")
    if period not in (*PERIODS, "auto"):
        _fail(f"--period must be day, week, month or auto, not {period!r}")
    try:
        figures = build_figures(read_scored(scored), period=period, top_issues=top_issues)
    except (ArchiveError, ValueError, KeyError) as exc:
        _fail(f"{scored} is not a scored archive: {exc}")
    if json_output is not None:
        text = json.dumps(figures, indent=2, ensure_ascii=False)
        if str(json_output) == "-":
            typer.echo(text)
        else:
            json_output.write_text(text + "\n", encoding="utf-8")
    if output is not None:
        write_report(figures, output, title)
        typer.echo(f"wrote {output}: {figures['conversations']} conversations", err=json_output is not None and str(json_output) == "-")



topics_app = typer.Typer(no_args_is_help=True, help="Topic discovery on archives, and topic trends.")
app.add_typer(topics_app, name="topics")


@topics_app.command("fit")
def topics_fit(
    source: Annotated[Path, typer.Argument(help="Messages or transcripts: .jsonl, .json, .csv or .parquet")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the topic model")],
    text_field: Annotated[str, typer.Option(help="Field (or CSV column) holding the message text")] = "text",
    reduction: Annotated[Optional[str], typer.Option(help="pca (default), umap (needs the topics-umap extra) or none")] = None,
    n_components: Annotated[Optional[int], typer.Option(help="Dimensions after reduction")] = None,
    min_cluster_size: Annotated[Optional[int], typer.Option(help="Smallest topic HDBSCAN keeps")] = None,
    min_samples: Annotated[Optional[int], typer.Option(help="HDBSCAN density smoothing")] = None,
    selection: Annotated[Optional[str], typer.Option(help="HDBSCAN cluster selection: leaf (fine, default) or eom (broad)")] = None,
    outlier_threshold: Annotated[Optional[float], typer.Option(
        help="Cosine similarity to a centroid for a message to join that topic (also the live floor)")] = None,
    merge_threshold: Annotated[Optional[float], typer.Option(help="Merge topics with centroids at least this similar; 1 disables")] = None,
    target_topics: Annotated[Optional[int], typer.Option(help="Merge the closest topics down to this many")] = None,
    refine_iterations: Annotated[Optional[int], typer.Option(help="Rounds of k-means refinement (1: outlier reassignment only)")] = None,
    previous: Annotated[Optional[Path], typer.Option(help="Previous topic model: topics found again keep their ids")] = None,
    match_similarity: Annotated[Optional[float], typer.Option(help="Centroid similarity for a refit topic to keep an old id")] = None,
    examples: Annotated[Optional[int], typer.Option(help="Representative examples per topic")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed")] = None,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Embedding cache, e.g. .cache/features; default: none")] = None,
) -> None:
    """Fit a topic model on an archive of customer messages and save it (safetensors +
    manifest.json). Unset options take the defaults listed in the README (TopicFitConfig)."""
    from nlp.encoder import Encoder, EncoderLoadError
    from nlp.topics import TopicFitConfig, TopicModelError, load_topic_model
    from nlp.topics.matching import DEFAULT_MIN_SIMILARITY
    from nlp.topics.model import describe
    from nlp.topics.reduction import ReductionUnavailable
    from service.settings import get_settings
    from nlp.archive import ArchiveError
    from training.topic_fit import fit_topic_file

    given = {"reduction": reduction, "n_components": n_components, "min_cluster_size": min_cluster_size,
             "min_samples": min_samples, "cluster_selection": selection, "outlier_threshold": outlier_threshold,
             "merge_threshold": merge_threshold, "target_topics": target_topics,
             "refine_iterations": refine_iterations, "examples": examples, "seed": seed}
    options = {name: value for name, value in given.items() if value is not None}
    if options.get("merge_threshold", 0) >= 1:
        options["merge_threshold"] = None
    try:
        if options.get("cluster_selection", "leaf") not in ("leaf", "eom"):
            raise ValueError(f"selection must be 'leaf' or 'eom', not {selection!r}")
        config = TopicFitConfig(**options)
        old = load_topic_model(previous) if previous else None
    except (ValueError, TopicModelError) as exc:
        _fail(str(exc))
    settings = get_settings()
    try:
        encoder = Encoder(settings.encoder_path, batch_size=settings.encode_batch_size,
                          num_threads=settings.torch_threads)
        fitted = fit_topic_file(source, output, encoder, config, text_field=text_field, previous=old,
                                match_similarity=DEFAULT_MIN_SIMILARITY if match_similarity is None else match_similarity,
                                cache_dir=cache_dir)
    except (ArchiveError, EncoderLoadError, ReductionUnavailable, ValueError) as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot read {exc.filename}: {exc.strerror}")
    _report_skipped(fitted.skipped, fitted.problems)
    result = fitted.result
    typer.echo(describe(result.model.manifest))
    typer.echo(f"{fitted.documents} messages; HDBSCAN clustered {result.clustered_share:.1%}, "
               f"unassigned after reassignment {result.unassigned_share:.1%}; "
               + ", ".join(f"{step} {secs:.1f} s" for step, secs in result.seconds.items()))
    if result.match is not None:
        typer.echo(f"refit: {len(result.match.kept)} kept, new {result.match.new}, gone {result.match.gone}")
    typer.echo(f"wrote {output}")


@topics_app.command("trends")
def topics_trends(
    scored: Annotated[Path, typer.Argument(help="Scored conversations: `convintel score` output or analyses with "
                                                "timestamps (.jsonl, .json, .csv or .parquet; see docs/topics.md)")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for CSV, JSON and report.html")],
    period: Annotated[str, typer.Option(help="day or week")] = "week",
    min_volume: Annotated[int, typer.Option(help="Messages in the last period for a topic to count as emerging")] = 5,
    growth: Annotated[float, typer.Option(help="Growth over the previous period to flag a topic (0.5 = +50%)")] = 0.5,
) -> None:
    """Topic volume per day or week and channel, average sentiment per topic, emerging topics."""
    from nlp.archive import ArchiveError
    from nlp.topics.trends import compute_trends
    from service.batch.trends import read_scored, write_trends

    if period not in ("day", "week"):
        _fail(f"period must be 'day' or 'week', not {period!r}")
    try:
        scored_messages = read_scored(scored)
    except ArchiveError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot read {exc.filename}: {exc.strerror}")
    _report_skipped(scored_messages.skipped, scored_messages.problems, "row(s) or message(s)")
    if not scored_messages.with_topics:
        _fail(f"{scored} has no customer messages with topics: analyse with CONVINTEL_TOPIC_MODEL set")
    trends = compute_trends(scored_messages.mentions, period=period, min_volume=min_volume,  # type: ignore[arg-type]
                            growth_threshold=growth)
    paths = write_trends(trends, output, skipped=scored_messages.skipped, problems=scored_messages.problems)
    typer.echo(f"{trends.messages} customer messages over {len(trends.periods)} {period}(s), "
               f"{len(trends.topics)} topics, {len(trends.emerging)} emerging"
               + (": " + ", ".join(t.name for t in trends.emerging) if trends.emerging else ""))
    typer.echo("wrote " + ", ".join(str(p) for p in paths))

def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
