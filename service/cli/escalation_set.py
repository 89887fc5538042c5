"""The labelled escalation conversations that `convintel evaluate-escalation` and
`convintel policy backtest` score: one file given with `--data`, or the whole set of the
source checkout's data/escalation (its STC-3 dialogues read from the data root).

Both commands take the same three options, defined here once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service.cli.main import fail

EscalationDataOption = Annotated[
    Path | None,
    typer.Option(
        "--data",
        "-d",
        help="One labelled-conversations file (JSONL, see data/escalation/GUIDELINE.md); "
        "default: the whole set of the source checkout's data/escalation",
    ),
]
EscalationSetDirOption = Annotated[
    Path | None,
    typer.Option("--set-dir", help="Without --data: the set's folder; default: data/escalation of the source checkout"),
]
DataRootOption = Annotated[
    Path,
    typer.Option("--data-root", envvar="CONVINTEL_DATA_ROOT", help="The public data sets folder (STC-3 texts)"),
]


def read_escalation_rows(data: Path | None, set_dir: Path | None, data_root: Path) -> tuple[list, str]:
    """The labelled conversations to score, and what to call them in the report: `data`
    alone, or the whole set of the source checkout (skipped conversations counted on the
    terminal)."""
    from training.agreement import LabelFileError
    from training.escalation_eval import EscalationDataError, read_labelled

    try:
        rows, source = (
            (read_labelled(data), str(data)) if data is not None else read_whole_escalation_set(set_dir, data_root)
        )
    except (EscalationDataError, LabelFileError) as exc:
        fail(str(exc))
    except KeyError as exc:  # a reference the data root's STC-3 does not hold
        fail(f"STC-3 under {data_root}: {exc.args[0]}")
    except OSError as exc:
        fail(f"cannot read {exc.filename}: {exc.strerror}")
    if not rows:
        fail(f"{source} holds no labelled conversations")
    return rows, source


def read_whole_escalation_set(set_dir: Path | None, data_root: Path) -> tuple[list, str]:
    """`read_escalation_rows` without `--data`: every conversation of the set with a final label."""
    from nlp.paths import source_root
    from training.escalation_set import SET_DIR, read_escalation_set

    if set_dir is None:
        checkout = source_root()
        if checkout is None:
            fail("without --data or --set-dir, this command reads data/escalation of convintel's source checkout")
        set_dir = checkout / SET_DIR
    whole = read_escalation_set(set_dir, data_root)
    if whole.unlabelled:
        typer.echo(f"skipped {whole.unlabelled} conversation(s) with no final label yet")
    if whole.unresolved:
        typer.echo(f"skipped {whole.unresolved} labelled STC-3 conversation(s): {data_root} lacks stc3/")
    return whole.rows, f"{set_dir} (whole set)"
