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

    from nlp.bundle import BundleError, load_bundle
    from nlp.policy import PolicyError, load_policy
    from service.settings import get_settings

    from nlp.topics.model import TopicModelError, load_topic_model

    settings = get_settings()
    try:  # check bundle, policy and topic model here too, so a bad one ends with one clear line, not a traceback
        load_policy(settings.policy_file)
        load_bundle(settings.model_path)
        if settings.topic_model is not None:
            load_topic_model(settings.topic_model)
    except (BundleError, PolicyError, TopicModelError) as exc:
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
    _report_skipped(len(result.skipped_rows), result.skipped_rows)
    metrics_path, report_path = write_outputs(result, output)
    typer.echo(render_summary(result))
    for note in result.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"wrote {metrics_path} and {report_path}")


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
    from training.topic_corpus import CorpusError
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
    except (CorpusError, EncoderLoadError, ReductionUnavailable, ValueError) as exc:
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
    scored: Annotated[Path, typer.Argument(help="Scored conversations (JSONL of analyses with timestamps; see README)")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for CSV, JSON and report.html")],
    period: Annotated[str, typer.Option(help="day or week")] = "week",
    min_volume: Annotated[int, typer.Option(help="Messages in the last period for a topic to count as emerging")] = 5,
    growth: Annotated[float, typer.Option(help="Growth over the previous period to flag a topic (0.5 = +50%)")] = 0.5,
) -> None:
    """Topic volume per day or week and channel, average sentiment per topic, emerging topics."""
    from nlp.topics.trends import compute_trends
    from training.topic_corpus import CorpusError
    from training.topic_trends import read_scored, write_trends

    if period not in ("day", "week"):
        _fail(f"period must be 'day' or 'week', not {period!r}")
    try:
        scored_messages = read_scored(scored)
    except CorpusError as exc:
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
