"""`convintel topics fit`, `topics edit` and `topics trends`: topic discovery on archives,
curation of a topic model, and topic trends."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from nlp.archive import ArchiveError
from nlp.errors import EncoderLoadError, TopicModelError
from service.cli.main import app, fail, load_settings, report_skipped

topics_app = typer.Typer(no_args_is_help=True, help="Topic discovery on archives, and topic trends.")
app.add_typer(topics_app, name="topics")

# Heavy modules (torch, transformers, spaCy) are imported inside the commands that use them: see __init__.py.


@topics_app.command("fit")
def topics_fit(
    source: Annotated[Path, typer.Argument(help="Messages or transcripts: .jsonl, .json, .csv or .parquet")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the topic model")],
    text_field: Annotated[str, typer.Option(help="Field (or CSV column) holding the message text")] = "text",
    reduction: Annotated[
        str | None, typer.Option(help="pca (default), umap (needs the topics-umap extra) or none")
    ] = None,
    n_components: Annotated[
        int | None, typer.Option(help="Dimensions after reduction (default: from the archive size)")
    ] = None,
    min_cluster_size: Annotated[
        int | None, typer.Option(help="Smallest topic HDBSCAN keeps (default: from the archive size)")
    ] = None,
    min_samples: Annotated[
        int | None, typer.Option(help="HDBSCAN density smoothing (default: from the archive size)")
    ] = None,
    selection: Annotated[
        str | None, typer.Option(help="HDBSCAN cluster selection: leaf (fine, default) or eom (broad)")
    ] = None,
    neighbours: Annotated[
        int | None,
        typer.Option(help="Pull each message towards the mean of this many nearest ones before clustering; 0: off"),
    ] = None,
    smoothing_weight: Annotated[
        float | None, typer.Option(help="How strongly --neighbours pulls (embedding + weight x their mean)")
    ] = None,
    outlier_threshold: Annotated[
        float | None,
        typer.Option(help="Cosine similarity to a centroid for a message to join that topic (also the live floor)"),
    ] = None,
    merge_threshold: Annotated[
        float | None, typer.Option(help="Merge topics with centroids at least this similar; 1 disables")
    ] = None,
    merge_margin: Annotated[
        float | None,
        typer.Option(help="Loose archives merge at their tightness + this, if below --merge-threshold; 1 disables"),
    ] = None,
    target_topics: Annotated[int | None, typer.Option(help="Merge the closest topics down to this many")] = None,
    refine_iterations: Annotated[
        int | None, typer.Option(help="Rounds of k-means refinement (1: outlier reassignment only)")
    ] = None,
    previous: Annotated[
        Path | None, typer.Option(help="Previous topic model: topics found again keep their ids")
    ] = None,
    match_similarity: Annotated[
        float | None, typer.Option(help="Centroid similarity for a refit topic to keep an old id")
    ] = None,
    examples: Annotated[int | None, typer.Option(help="Representative examples per topic")] = None,
    seeds: Annotated[
        Path | None, typer.Option(help="YAML file of seed topics: name, description and/or examples (docs/topics.md)")
    ] = None,
    seed_mode: Annotated[
        str | None, typer.Option(help="zero-shot (default: seeds claim similar messages first) or guided")
    ] = None,
    seed_threshold: Annotated[
        float | None, typer.Option(help="Cosine similarity to a seed for a message to belong to it")
    ] = None,
    parent_similarity: Annotated[
        float | None, typer.Option(help="Average centroid similarity at which topics share a parent topic")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="Embedding cache, e.g. .cache/features; default: none")] = None,
) -> None:
    """Fit a topic model on an archive of customer messages and save it (safetensors +
    manifest.json). Unset options take the defaults listed in docs/topics.md (TopicFitConfig)."""
    from nlp.encoder import Encoder
    from nlp.topics import TopicFitConfig, load_topic_model
    from nlp.topics.matching import DEFAULT_MIN_SIMILARITY
    from nlp.topics.model import describe
    from nlp.topics.reduction import ReductionUnavailable
    from nlp.topics.seeds import SeedFileError, load_seed_file
    from training.topic_fit import fit_topic_file

    given = {
        "reduction": reduction,
        "n_components": n_components,
        "min_cluster_size": min_cluster_size,
        "min_samples": min_samples,
        "cluster_selection": selection,
        "neighbours": neighbours,
        "smoothing_weight": smoothing_weight,
        "outlier_threshold": outlier_threshold,
        "merge_threshold": merge_threshold,
        "merge_margin": merge_margin,
        "target_topics": target_topics,
        "refine_iterations": refine_iterations,
        "examples": examples,
        "seed_mode": seed_mode,
        "seed_threshold": seed_threshold,
        "parent_similarity": parent_similarity,
        "seed": seed,
    }
    options = {name: value for name, value in given.items() if value is not None}
    for disabled_at_one in ("merge_threshold", "merge_margin"):
        if options.get(disabled_at_one, 0) >= 1:
            options[disabled_at_one] = None
    try:
        if options.get("cluster_selection", "leaf") not in ("leaf", "eom"):
            raise ValueError(f"selection must be 'leaf' or 'eom', not {selection!r}")
        config = TopicFitConfig(**options)
        old = load_topic_model(previous) if previous else None
        seed_file = load_seed_file(seeds) if seeds else None
    except (ValueError, TopicModelError, SeedFileError) as exc:
        fail(str(exc))
    settings = load_settings()
    try:
        encoder = Encoder(
            settings.encoder_path, batch_size=settings.encode_batch_size, num_threads=settings.torch_threads
        )
        fitted = fit_topic_file(
            source,
            output,
            encoder,
            config,
            text_field=text_field,
            previous=old,
            match_similarity=DEFAULT_MIN_SIMILARITY if match_similarity is None else match_similarity,
            cache_dir=cache_dir,
            seeds=seed_file,
        )
    except (ArchiveError, EncoderLoadError, ReductionUnavailable, ValueError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot read {exc.filename}: {exc.strerror}")
    report_skipped(fitted.skipped, fitted.problems)
    result = fitted.result
    typer.echo(describe(result.model.manifest))
    typer.echo(
        f"{fitted.documents} messages; HDBSCAN clustered {result.clustered_share:.1%}, "
        f"unassigned after reassignment {result.unassigned_share:.1%}; {merged_at(result.model.manifest.trained_on)}; "
        + ", ".join(f"{step} {secs:.1f} s" for step, secs in result.seconds.items())
    )
    if result.match is not None:
        typer.echo(f"refit: {len(result.match.kept)} kept, new {result.match.new}, gone {result.match.gone}")
    for line in result.curation:
        typer.echo(f"curation: {line}")
    typer.echo(f"wrote {output}")


@topics_app.command("trends")
def topics_trends(
    scored: Annotated[
        Path,
        typer.Argument(
            help="Scored conversations: `convintel score` output or analyses with "
            "timestamps (.jsonl, .json, .csv or .parquet; see docs/topics.md)"
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for CSV, JSON and report.html")],
    period: Annotated[str, typer.Option(help="day or week")] = "week",
    min_volume: Annotated[int, typer.Option(help="Messages in the last period for a topic to count as emerging")] = 5,
    growth: Annotated[float, typer.Option(help="Growth over the previous period to flag a topic (0.5 = +50%)")] = 0.5,
) -> None:
    """Topic volume per day or week and channel, average sentiment per topic, emerging topics."""
    from nlp.topics.trends import compute_trends
    from service.batch.trends import read_scored, write_trends

    if period not in ("day", "week"):
        fail(f"period must be 'day' or 'week', not {period!r}")
    try:
        scored_messages = read_scored(scored)
    except ArchiveError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot read {exc.filename}: {exc.strerror}")
    report_skipped(scored_messages.skipped, scored_messages.problems, "row(s) or message(s)")
    if not scored_messages.with_topics:
        fail(f"{scored} has no customer messages with topics: analyse with CONVINTEL_TOPIC_MODEL set")
    trends = compute_trends(
        scored_messages.mentions,
        period=period,
        min_volume=min_volume,  # type: ignore[arg-type]
        growth_threshold=growth,
    )
    paths = write_trends(trends, output, skipped=scored_messages.skipped, problems=scored_messages.problems)
    typer.echo(
        f"{trends.messages} customer messages over {len(trends.periods)} {period}(s), "
        f"{len(trends.topics)} topics, {len(trends.emerging)} emerging"
        + (": " + ", ".join(t.name for t in trends.emerging) if trends.emerging else "")
    )
    typer.echo("wrote " + ", ".join(str(p) for p in paths))


def merged_at(trained_on: dict[str, Any]) -> str:
    """How the fit merged: at what similarity, and the archive's tightness that set it."""
    threshold, tightness = trained_on.get("merge_threshold"), trained_on.get("tightness")
    if threshold is None:
        return "no merging on similarity"
    return f"merged at similarity {threshold:.2f}" + ("" if tightness is None else f" (tightness {tightness:.2f})")
