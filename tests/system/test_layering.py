"""Import layering: `nlp/` imports no web code or service; `service/batch/` (archive
scoring and reports) imports nothing from `service/api/` (HTTP) or `training/`, nor does
`service/alerts/` (the outbox and webhook delivery); `training/`
needs no HTTP code (it draws its report with `service/batch/charts.py`)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

CHECK = """
import importlib, pkgutil, sys

def loaded(prefixes):
    return sorted(m for m in sys.modules if m.startswith(prefixes))

import nlp.archive, nlp.timestamps
assert not loaded(("service", "training", "fastapi", "starlette", "pyarrow")), loaded(("service", "training"))
import service.batch
for module in pkgutil.iter_modules(service.batch.__path__):
    importlib.import_module(f"service.batch.{module.name}")
assert not loaded(("service.api", "training", "fastapi", "starlette")), loaded(("service.api", "training", "fastapi"))
import training.report, training.topic_fit
assert not loaded(("service.api", "fastapi", "starlette")), loaded(("service.api", "fastapi", "starlette"))
import service.alerts
for module in pkgutil.iter_modules(service.alerts.__path__):
    importlib.import_module(f"service.alerts.{module.name}")
assert not loaded(("service.api",)), loaded(("service.api",))
"""


def test_layers_import_only_downwards():
    result = subprocess.run(
        [sys.executable, "-c", CHECK],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
