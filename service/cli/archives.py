"""`convintel score` and `report`: scoring archives, and the trend report over scored ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from nlp.archive import ArchiveError
from nlp.errors import BundleError, EncoderLoadError
from nlp.policy import PolicyError
from service.batch.records import Shape
from service.batch.report import PERIODS, build_figures, write_report
from service.batch.scoring import read_scored
from service.cli.main import app, fail, load_settings

# Heavy modules (torch, transformers, spaCy) are imported inside the commands that use them: see __init__.py.


@app.command()
def score(
    source: Annotated[Path, typer.Argument(help="Archive: .jsonl, .json, .csv or .parquet (file or folder of parts)")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Scored output: .jsonl, .csv or .parquet (a folder of parts)")
    ],
    shape: Annotated[
        str,
        typer.Option(
            help="Rows hold 'transcripts' (/v1/analyze bodies) or 'messages' "
            "(one message with a conversation_id); 'auto' looks at the first row"
        ),
    ] = "auto",
    errors: Annotated[Path | None, typer.Option(help="Errors file (JSONL); default: OUTPUT.errors.jsonl")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from its checkpoint")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output")] = False,
    engine: Annotated[
        str, typer.Option(help="'local' (this machine: this process, or --workers processes) or 'ray' (Ray Data)")
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(help="Ray cluster address (else CONVINTEL_RAY_ADDRESS or RAY_ADDRESS; none: a local Ray)"),
    ] = None,
    num_cpus: Annotated[
        int | None, typer.Option(help="CPUs of the local Ray (default: CONVINTEL_RAY_NUM_CPUS or all)")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="--engine local: scoring processes, each with an equal share "
            "of the torch threads (default: CONVINTEL_BATCH_WORKERS, 1)",
        ),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar")] = True,
) -> None:
    """Score an archive of conversations: per-message and per-conversation results, with
    a checkpoint after every chunk so that an interrupted run continues with --resume."""
    from service.batch.runner import CheckpointError, ScoreJob, ScoreJobError, run_score

    if shape not in {s.value for s in Shape}:
        fail(f"--shape must be auto, transcripts or messages, not {shape!r}")
    if engine not in {"local", "ray"}:
        fail(f"--engine must be local or ray, not {engine!r}")
    settings = load_settings()
    job = ScoreJob(
        input=source,
        output=output,
        errors=errors,
        shape=Shape(shape),
        resume=resume,
        overwrite=overwrite,
        progress=progress,
    )

    def make_engine():
        if engine == "ray":
            try:
                from service.batch.engines import RayEngine
            except ImportError:
                fail("--engine ray needs Ray: pip install 'convintel[ray]'")
            return RayEngine(settings, address=ray_address, num_cpus=num_cpus)
        from service.batch.engines import LocalEngine, WorkerPoolEngine

        if (workers or settings.batch_workers) > 1:
            return WorkerPoolEngine(settings, workers or settings.batch_workers)
        from service.runtime import load_analyzer

        return LocalEngine(load_analyzer(settings))

    from service.batch.engines import EngineError

    try:
        summary = run_score(job, settings, make_engine)
    except (
        ArchiveError,
        ScoreJobError,
        CheckpointError,
        BundleError,
        PolicyError,
        EncoderLoadError,
        EngineError,
    ) as exc:
        fail(str(exc))
    if summary.already_complete:
        typer.echo(f"{output} is already complete: {summary.conversations} conversations, {summary.errors} errors")
        return
    resumed = f", resumed after input row {summary.resumed_at_row}" if summary.resumed_at_row else ""
    typer.echo(
        f"scored {summary.conversations} conversations ({summary.messages} messages) into {output} "
        f"in {summary.seconds:.1f} s ({summary.messages_per_second:.0f} messages/s{resumed}); "
        f"{summary.errors} bad rows in {job.errors_path}"
    )


@app.command()
def report(
    scored: Annotated[Path, typer.Argument(help="Output of `convintel score` (.jsonl, .json, .csv or .parquet)")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="HTML report to write")] = None,
    json_output: Annotated[
        Path | None, typer.Option("--json", help="Also write the figures as JSON (- for standard output)")
    ] = None,
    period: Annotated[str, typer.Option(help="Time bucket: day, week, month or auto (by the archive's span)")] = "auto",
    top_issues: Annotated[int, typer.Option(help="Recurring issues to list")] = 10,
    title: Annotated[str, typer.Option(help="Report title")] = "Conversation trends",
) -> None:
    """Trend report over a scored archive: one self-contained HTML file with charts and KPIs,
    and/or the same figures as JSON."""

    if output is None and json_output is None:
        fail("give --output for the HTML report, --json for the figures, or both")
    if period not in (*PERIODS, "auto"):
        fail(f"--period must be day, week, month or auto, not {period!r}")
    try:
        figures = build_figures(read_scored(scored), period=period, top_issues=top_issues)
    except (ArchiveError, ValueError, KeyError) as exc:
        fail(f"{scored} is not a scored archive: {exc}")
    if json_output is not None:
        text = json.dumps(figures, indent=2, ensure_ascii=False)
        if str(json_output) == "-":
            typer.echo(text)
        else:
            json_output.write_text(text + "\n", encoding="utf-8")
    if output is not None:
        write_report(figures, output, title)
        typer.echo(
            f"wrote {output}: {figures['conversations']} conversations",
            err=json_output is not None and str(json_output) == "-",
        )
