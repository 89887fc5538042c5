"""Bad training, policy and bundle settings stop with one line before anything is written
or trained, never a traceback or a damaged bundle (found by a review of the CLI)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from nlp.bundle import BundleError, load_bundle
from nlp.policy import PolicyError, load_policy
from service.cli import app
from tests.conftest import BUNDLE, FIXTURES, ROOT, bundle_with_window
from training.checkpoint import (
    OPTIMIZER_FILE,
    RNG_FILE,
    STATE_FILE,
    TRAINABLE_FILE,
    CheckpointError,
    load_checkpoint,
)
from training.config import ConfigError, load_train_config
from training.head_trainer import fit_temperature

LABELLED = FIXTURES / "labelled" / "interactions.jsonl"


def test_train_without_an_output_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # The default folder is the shipped bundle's: a run without -o once replaced it.
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["train", "--recipe", "none", "--data", str(LABELLED)])
    assert result.exit_code == 2 and "--output" in result.output
    assert not (tmp_path / "models").exists()


def test_a_bad_bundle_name_is_refused_before_training_touches_the_output(tmp_path: Path):
    victim = tmp_path / "victim"
    shutil.copytree(BUNDLE, victim)
    with pytest.raises(ConfigError, match="name"):
        load_train_config(None, {"name": "bad name", "output": str(victim)})
    result = CliRunner().invoke(
        app, ["train", "--recipe", "none", "--data", str(LABELLED), "-o", str(victim), "--name", "bad name"]
    )
    assert result.exit_code == 2 and "name" in result.output
    assert load_bundle(victim).manifest.name == load_bundle(BUNDLE).manifest.name  # untouched


def test_emotion_score_at_least_needs_an_emotion(tmp_path: Path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("rules:\n  - name: r\n    level: monitor\n    when: {emotion_score_at_least: 0.5}\n")
    with pytest.raises(PolicyError, match="emotion_score_at_least needs emotion"):
        load_policy(policy)


def test_a_policy_that_is_not_utf8_is_one_line(tmp_path: Path):
    policy = tmp_path / "policy.yaml"
    policy.write_bytes("rules: []\n# caf\u00e9\n".encode("latin-1"))
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy(policy)
    config = tmp_path / "train.yaml"
    config.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_train_config(config)


def test_a_diverging_temperature_fit_leaves_the_head_uncalibrated():
    logits = torch.tensor([[math.nan, 1.0], [0.5, math.inf]])
    assert fit_temperature("multiclass", logits, torch.tensor([0, 1])) == 1.0


def test_a_manifest_window_past_the_encoder_s_positions_is_refused(tmp_path: Path):
    with pytest.raises(BundleError, match="max_seq_length"):
        load_bundle(bundle_with_window(tmp_path / "bundle", 100_000))


def test_labelled_files_that_are_not_utf8_and_out_of_range_seeds_are_one_line(tmp_path: Path):
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes('{"text": "caf\u00e9 closed", "sentiment": "negative"}\n'.encode("latin-1"))
    result = CliRunner().invoke(app, ["train", "--recipe", "none", "--data", str(latin), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and "not UTF-8" in result.output
    for seed in ("-1", str(2**32)):
        with pytest.raises(ConfigError, match="seed"):
            load_train_config(None, {"seed": int(seed), "output": str(tmp_path / "o")})


def test_an_output_that_is_a_file_fails_before_any_work(tmp_path: Path):
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    for args in (
        ["evaluate", "-m", str(BUNDLE), "-d", str(LABELLED), "--task", "sentiment"],
        ["evaluate-escalation", "--data", str(FIXTURES / "escalation" / "labelled.jsonl")],
        ["policy", "backtest", str(ROOT / "nlp" / "default_policy.yaml"), "--data", str(LABELLED)],
    ):
        result = CliRunner().invoke(app, [*args, "--output", str(taken)])
        assert result.exit_code == 2 and f"{taken} is a file" in result.output, (args, result.output)


def test_a_checkpoint_with_an_empty_tensor_file_is_one_line(tmp_path: Path):
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    (folder / STATE_FILE).write_text(json.dumps({"fingerprint": "x"}))
    for name in (TRAINABLE_FILE, OPTIMIZER_FILE, RNG_FILE):
        (folder / name).write_bytes(b"")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(folder, "x")
