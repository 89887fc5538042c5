"""The `convintel` command line (typer), one module per group of commands: `serving`
(serve, check, analyze), `models` (train, evaluate, evaluate-escalation), `archives`
(score, report), `topics` (topics fit, topics edit, topics trends), `policy` (policy backtest),
`retention` (purge) and `database` (db upgrade, db current).

Importing torch, transformers and spaCy takes about eight seconds here, so the modules
that pull them in (the analyzer, the encoder, the training and scoring code) are imported
inside the commands that use them: `convintel --help` and `--version` answer in a fraction
of a second. Those are the only function-local imports in this package."""

from service.cli.main import app

# Importing a module registers its commands; `--help` lists them in this order.
# isort: off
from service.cli import serving, models, archives, topics, topic_edit, policy, retention, database  # noqa: E402, F401
# isort: on

__all__ = ["app"]
