"""`convintel policy backtest`: an escalation policy scored on labelled conversations, and
compared with another policy, before the team switches to it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nlp.policy import PolicyError, load_policy
from service.cli.escalation_set import (
    DataRootOption,
    EscalationDataOption,
    EscalationSetDirOption,
    read_escalation_rows,
)
from service.cli.main import DATA_ROOT, app, check_output_folder, fail, load_settings

policy_app = typer.Typer(no_args_is_help=True, help="Escalation policies: backtest one on labelled conversations.")
app.add_typer(policy_app, name="policy")

# Heavy modules (torch, transformers, spaCy) are imported inside the commands that use them: see __init__.py.


@policy_app.command("backtest")
def backtest_command(
    policy_file: Annotated[Path, typer.Argument(help="The candidate policy YAML")],
    data: EscalationDataOption = None,
    set_dir: EscalationSetDirOption = None,
    data_root: DataRootOption = DATA_ROOT,
    baseline_file: Annotated[
        Path | None, typer.Option("--baseline", "-b", help="The policy to compare with (e.g. the one in use)")
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for backtest.json and backtest.html")] = Path(
        "var/backtest"
    ),
) -> None:
    """Backtest an escalation policy on labelled conversations with the configured bundle:
    level confusion and accuracy, precision/recall of `recommended`, route accuracy and
    per-rule counts, on all conversations and the held-out part. With --baseline, which
    conversations change level and whether each change fixes or breaks it. Each message
    is encoded once, whichever policies are compared."""
    from service.runtime import STARTUP_ERRORS, load_analyzer
    from training.policy_backtest import PolicyUnderTest, backtest, render_summary, write_backtest

    try:
        candidate = PolicyUnderTest(str(policy_file), load_policy(policy_file))
        baseline = PolicyUnderTest(str(baseline_file), load_policy(baseline_file)) if baseline_file else None
    except PolicyError as exc:
        fail(" ".join(str(exc).split()))  # a YAML syntax error spans lines: one line it is
    check_output_folder(output)
    rows, source = read_escalation_rows(data, set_dir, data_root)
    try:
        analyzer = load_analyzer(load_settings())
    except STARTUP_ERRORS as exc:
        fail(str(exc))
    report = backtest(analyzer, rows, candidate, baseline, data=source)
    json_path, html_path = write_backtest(report, output)
    typer.echo(render_summary(report))
    typer.echo(f"wrote {json_path} and {html_path}")
