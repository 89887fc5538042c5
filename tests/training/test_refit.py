"""Heads refit on an existing bundle (`convintel train --base-bundle`): the refit head
changes, everything else of the base stays byte for byte, and the result serves."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

from nlp.analyzer import Analyzer
from nlp.bundle import AdapterManifest, file_sha256, load_bundle
from nlp.config import AnalyzerConfig
from service.cli import app
from tests.conftest import BUNDLE, FIXTURES, NO_INSPECTION, bundle_with_window
from training.config import ConfigError, load_train_config
from training.datasets import interactions_for_task, read_interactions
from training.head_trainer import HeadTrainingConfig
from training.recipes import TaskData
from training.refit import RefitError, refit_bundle

TINY = HeadTrainingConfig(hidden_dim=32, max_epochs=20, patience=20, batch_size=8, learning_rate=5e-3, seed=7)
runner = CliRunner()


def tensors_of(path: Path, task: str) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in load_file(str(path / "heads.safetensors")).items() if k.startswith(f"{task}.")}


def urgency_recipe() -> dict[str, TaskData]:
    rows, _ = read_interactions([FIXTURES / "labelled" / "interactions.jsonl"])
    train = interactions_for_task(rows, "urgency", "train", "fixture")
    heldout = interactions_for_task(rows, "urgency", "heldout", "fixture")
    return {"urgency": TaskData(train=train, dev=heldout, reports=[heldout])}


@pytest.fixture(scope="module")
def refit_urgency(tmp_path_factory, analyzer) -> Path:
    out = tmp_path_factory.mktemp("refit") / "bundle"
    refit_bundle(
        BUNDLE,
        urgency_recipe(),
        out,
        name="refit",
        version="9.9.9",
        config=TINY,
        cache_dir=None,
        encoder=analyzer.encoder,
    )
    return out


def test_refit_keeps_every_other_head_and_the_adapter_byte_for_byte(refit_urgency):
    base = json.loads((BUNDLE / "manifest.json").read_text())
    new = json.loads((refit_urgency / "manifest.json").read_text())
    assert list(new["tasks"]) == list(base["tasks"]), "same heads, in the base's order"
    for task in base["tasks"]:
        if task == "urgency":
            continue
        assert new["tasks"][task] == base["tasks"][task], f"{task}: manifest entry (metrics, data) kept"
        kept, original = tensors_of(refit_urgency, task), tensors_of(BUNDLE, task)
        assert kept.keys() == original.keys()
        assert all(kept[k].tobytes() == original[k].tobytes() for k in kept), f"{task}: weights kept"
    # The refit head changed, and its record says what it was trained on.
    refit, before = tensors_of(refit_urgency, "urgency"), tensors_of(BUNDLE, "urgency")
    assert refit.keys() != before.keys() or any(not np.array_equal(refit[k], before[k]) for k in refit)
    assert new["tasks"]["urgency"]["training_data"] == ["fixture/urgency:train (18)"]
    assert "fixture_urgency_heldout.macro_f1" in new["tasks"]["urgency"]["metrics"]
    # The adapter is the base's file, unchanged.
    assert AdapterManifest(**new["adapter"]) == AdapterManifest(**base["adapter"])
    assert new["mode"] == base["mode"] == "finetune"
    adapter = base["adapter"]["file"]
    assert file_sha256(refit_urgency / adapter) == base["adapter"]["sha256"] == file_sha256(BUNDLE / adapter)
    assert new["encoder"] == base["encoder"]
    training = new["training"]
    assert training["mode"] == f"heads refit on {base['name']} {base['version']}"
    assert training["refit_tasks"] == ["urgency"] and "urgency" not in training["kept_tasks"]
    assert training["base_training"] == base["training"]
    card = (refit_urgency / "README.md").read_text()
    assert "Kept unchanged from" in card and "training.base_training" in card


def test_a_refit_bundle_serves(refit_urgency):
    analyzer = Analyzer.load(AnalyzerConfig(refit_urgency, inspection=NO_INSPECTION))
    assert analyzer.model_info.version == "9.9.9"
    result = analyzer.analyze_messages([type("M", (), {"text": "My account was hacked!", "role": "customer"})()], ["x"])
    assert result[0].urgency.label in {"low", "medium", "high", "critical"}


def test_a_new_head_joins_a_base_without_it_in_place_from_the_command_line(tmp_path):
    """Refit complaint into a copy of the shipped bundle without one, written over itself."""
    base = tmp_path / "base"
    shutil.copytree(BUNDLE, base)
    manifest = json.loads((base / "manifest.json").read_text())
    manifest["tasks"].pop("complaint", None)
    (base / "manifest.json").write_text(json.dumps(manifest))
    sha = manifest["adapter"]["sha256"]
    result = runner.invoke(
        app,
        [
            "train",
            "--mode",
            "heads",
            "--base-bundle",
            str(base),
            "--tasks",
            "complaint",
            "--data-root",
            str(FIXTURES),
            "--output",
            str(base),
            "--version",
            "0.0.2",
            "--hidden-dim",
            "32",
            "--epochs",
            "5",
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "sentiment (kept from the base bundle)" in result.output
    bundle = load_bundle(base)  # checks the adapter's sha256 too
    assert bundle.manifest.adapter is not None and bundle.manifest.adapter.sha256 == sha
    entry = bundle.manifest.tasks["complaint"]
    assert entry.labels == ["no", "yes"] and entry.training_data == ["xci/complaint:train-fit (22)"]
    assert {"xci_complaint_heldout.f1", "xci_complaint_heldout.precision", "xci_complaint_heldout.recall"} <= set(
        entry.metrics
    )
    assert "severity_spearman" in " ".join(entry.metrics)
    assert bundle.manifest.description.endswith("; complaint head trained on that encoder's features.")
    card = (base / "README.md").read_text()
    assert "Spearman, complaints" in card and "- complaint\n" in card
    assert "tweeteval/sentiment:val" in card.split("\n---\n")[0], "the kept heads' hub results stay in the card"


def test_refit_refuses_an_encoder_other_than_the_base_bundles(tmp_path, analyzer):
    base = bundle_with_window(tmp_path / "base", 128)
    with pytest.raises(RefitError, match="serves with 128"):
        refit_bundle(
            base,
            urgency_recipe(),
            tmp_path / "out",
            name="x",
            version="0",
            config=TINY,
            cache_dir=None,
            encoder=analyzer.encoder,
        )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"base_bundle": "nowhere"}, r"flags: base_bundle: Value error, nowhere does not exist"),
        ({"base_bundle": "fixtures"}, r"base_bundle: Value error, fixtures has no manifest.json"),
        # Continuing a fine-tune changes the encoder, so it trains every head the service reads.
        (
            {"base_bundle": str(BUNDLE), "mode": "finetune"},
            r"flags: tasks: Value error, a bundle needs a head for each",
        ),
        ({"base_bundle": str(BUNDLE), "encoder_path": "x"}, r"base_bundle: Value error, the encoder is the base"),
        ({}, r"flags: tasks: Value error, a bundle needs a head for each"),
        # Label-wise attention: for a task being trained, multi-label, with a width.
        ({"base_bundle": str(BUNDLE), "token_attention": {"emotions": 8}}, r"'emotions' is not one of the tasks"),
        ({"base_bundle": str(BUNDLE), "token_attention": {"complaint": 8}}, r"'complaint' is not a multi-label task"),
        ({"base_bundle": str(BUNDLE), "tasks": ["cues"], "token_attention": {"cues": 0}}, r"needs a positive width"),
    ],
)
def test_refit_settings_name_the_problem(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_train_config(None, {"tasks": ["complaint"], **overrides})
    # A base bundle gives the heads not refit: a task list of one is fine with it.
    assert load_train_config(None, {"tasks": ["complaint"], "base_bundle": str(BUNDLE)}).tasks == ["complaint"]


def test_a_missing_base_bundle_stops_the_command(tmp_path):
    result = runner.invoke(
        app, ["train", "--base-bundle", str(tmp_path / "gone"), "--tasks", "complaint", "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 2 and "base_bundle" in result.output and "does not exist" in result.output
