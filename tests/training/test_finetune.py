"""Fine-tuning (mode `finetune`, LoRA and partial unfreezing): a tiny run through
`convintel train` on fixtures writes a bundle whose adapter loads (with PEFT's own API too)
and changes predictions; a resumed run equals an uninterrupted one; bad data, bad configs
and bad adapters fail with clear messages.

Runs are a few steps over 16 word pieces, so each takes seconds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from nlp.analyzer import Analyzer
from nlp.bundle import (
    ADAPTER_FILE,
    LORA_DIR,
    MANIFEST_FILE,
    MODEL_CARD_FILE,
    PEFT_CONFIG_FILE,
    PEFT_WEIGHTS_FILE,
    BundleError,
    load_bundle,
)
from nlp.config import AnalyzerConfig
from nlp.encoder import Encoder
from nlp.heads import TaskHead
from nlp.schemas import Message, Role
from nlp.vocabulary import GOEMOTIONS_LABELS
from service.cli import app
from service.runtime import load_analyzer
from service.settings import Settings
from tests.conftest import FIXTURES, NO_INSPECTION
from training.config import ConfigError, load_train_config
from training.datasets import DataError, read_labelled_files
from training.finetune import finetune
from training.recipes import build_recipe

runner = CliRunner()
TINY = {
    "recipe": "none",
    "mode": "finetune",
    "max_length": 16,
    "window": 32,
    "batch_size": 8,
    "epochs": 1,
    "hidden_dim": 16,
    "learning_rate": 5e-3,
    "seed": 5,
    "threads": 1,
    "finetune": {"rank": 4, "head_learning_rate": 5e-3, "max_steps": 6, "eval_every": 3},
}


def fixture_rows() -> list[dict]:
    """The labelled interaction fixture plus the GoEmotions fixture as `emotions` rows
    (train rows for training, dev rows as the dev split)."""
    rows = [
        json.loads(line)
        for line in (FIXTURES / "labelled" / "interactions.jsonl").read_text().splitlines()
        if line.strip()
    ]
    for split in ("train", "dev"):
        for line in (FIXTURES / "goemotions" / "original" / f"{split}.tsv").read_text().splitlines():
            text, ids, identifier = line.split("\t")
            rows.append(
                {
                    "id": identifier,
                    "text": text,
                    "split": split,
                    "emotions": [GOEMOTIONS_LABELS[int(i)] for i in ids.split(",")],
                }
            )
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def write_config(path: Path, **changes) -> Path:
    document = json.loads(json.dumps(TINY))
    for key, value in changes.items():
        document[key] = value
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny_finetuned(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("finetune")
    data = write_jsonl(folder / "labelled.jsonl", fixture_rows())
    config = write_config(folder / "train.yaml", data=[str(data)], output=str(folder / "bundle"), name="tiny-ft")
    result = runner.invoke(app, ["train", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output
    return folder / "bundle"


def test_tiny_finetune_writes_a_bundle_with_a_lora_adapter(tiny_finetuned: Path):
    files = {p.name for p in tiny_finetuned.iterdir()}
    assert files == {"manifest.json", "heads.safetensors", MODEL_CARD_FILE, LORA_DIR}
    assert {p.name for p in (tiny_finetuned / LORA_DIR).iterdir()} == {PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE}
    bundle = load_bundle(tiny_finetuned)
    assert bundle.manifest.mode == "finetune"
    assert bundle.manifest.adapter.method == "lora" and bundle.manifest.adapter.rank == 4
    assert bundle.manifest.training["steps"] == 6 and bundle.manifest.training["mode"] == "finetune (lora)"
    assert bundle.manifest.encoder.max_seq_length == 32
    # only LoRA matrices are stored, never a copy of the encoder
    assert bundle.adapter.tensors and all(".lora_" in key for key in bundle.adapter.tensors)
    assert (tiny_finetuned / LORA_DIR / PEFT_WEIGHTS_FILE).stat().st_size < 1_000_000


def test_lora_adapter_loads_with_peft_own_api(tiny_finetuned: Path):
    """The adapter folder is PEFT's standard layout: PeftModel.from_pretrained reads it, and
    the merged model computes what the service's encoder computes."""
    from peft import PeftModel

    texts = ["Thanks so much, great help!", "You charged me twice and nobody answers."]
    served = Encoder(max_seq_length=32, adapter=load_bundle(tiny_finetuned).adapter)
    plain = Encoder(max_seq_length=32)
    peft_model = PeftModel.from_pretrained(plain.transformer, str(tiny_finetuned / LORA_DIR))
    assert any("lora_A" in name for name, _ in peft_model.named_parameters())
    plain.set_transformer(peft_model.merge_and_unload())
    assert np.allclose(plain.encode(texts).features, served.encode(texts).features, atol=1e-5)
    assert not np.allclose(Encoder(max_seq_length=32).encode(texts).features, served.encode(texts).features, atol=1e-4)


def test_model_card_has_hub_metadata_front_matter(tiny_finetuned: Path):
    card = (tiny_finetuned / MODEL_CARD_FILE).read_text()
    assert card.startswith("---\n")
    metadata = yaml.safe_load(card.split("---\n")[1])
    assert metadata["license"] == "apache-2.0"
    assert metadata["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    results = metadata["model-index"][0]["results"]
    tasks = {result["task"]["name"].split(" ")[0] for result in results}
    assert tasks == {"sentiment", "emotions", "urgency"}
    assert all(
        metric["type"] == "f1" and 0 <= metric["value"] <= 1 for result in results for metric in result["metrics"][:1]
    )
    assert "# tiny-ft" in card


def test_finetuned_bundle_loads_and_its_encoder_and_heads_changed(tiny_finetuned: Path, analyzer: Analyzer):
    tuned = Analyzer.load(AnalyzerConfig(tiny_finetuned, inspection=NO_INSPECTION))
    texts = ["Thanks so much, great help!", "You charged me twice and nobody answers."]
    base_features = analyzer.encoder.encode(texts).features
    tuned_features = tuned.encoder.encode(texts).features
    assert tuned_features.shape == base_features.shape
    assert not np.allclose(tuned_features, base_features, atol=1e-4), "the adapter was merged into the encoder"
    for task, head in tuned.bundle.heads.items():
        untrained = TaskHead(head.spec)
        assert not np.allclose(
            head.predict_proba(tuned_features), untrained.predict_proba(tuned_features), atol=1e-3
        ), task
    # the merged encoder is a plain BERT again: no LoRA layers left at inference
    assert not any("lora" in name for name, _ in tuned.encoder.module.named_modules())
    message = type("M", (), {"text": texts[1], "role": "customer"})()
    analysis = tuned.analyze_messages([message], ["m1"])[0].model_dump()
    assert analysis["urgency"]["label"] in {"low", "medium", "high", "critical"}


def _trained_weights(result) -> dict[str, np.ndarray]:
    weights = {f"adapter.{k}": v.numpy() for k, v in result.adapter[1].items()}
    for task, head in result.heads.items():
        weights.update({k: v.numpy() for k, v in head.state_dict(prefix=f"{task}.").items()})
    return weights


def test_resumed_run_equals_an_uninterrupted_one(tmp_path: Path):
    data = write_jsonl(tmp_path / "labelled.jsonl", fixture_rows())
    settings = {**TINY, "data": [data], "output": tmp_path / "out"}
    settings["finetune"] = {**TINY["finetune"], "max_steps": 4, "eval_every": 2}
    whole_config = load_train_config(None, {**settings, "checkpoint_dir": tmp_path / "whole"})
    recipe, _ = build_recipe(whole_config)
    whole = finetune(recipe, whole_config, show_progress=False)

    split_config = load_train_config(None, {**settings, "checkpoint_dir": tmp_path / "split"})
    assert finetune(recipe, split_config, interrupt_after=3, show_progress=False) is None
    saved = {p.name for p in (tmp_path / "split").iterdir()}
    assert {"state.json", "trainable.safetensors", "optimizer.safetensors", "rng.safetensors"} <= saved
    assert not [p for p in (tmp_path / "split").iterdir() if p.suffix in {".pt", ".pkl", ".bin"}]
    torch.manual_seed(999)  # a fresh process's RNG; the checkpoint must restore its own
    resumed = finetune(recipe, split_config, resume=True, show_progress=False)

    assert resumed.resumed_from_step == 3 and resumed.state.step == whole.state.step == 4
    assert resumed.state.history == whole.state.history
    a, b = _trained_weights(whole), _trained_weights(resumed)
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[key], b[key]) for key in a), "resuming changed the result"


def test_checkpoint_of_another_configuration_is_refused(tmp_path: Path):
    data = write_jsonl(tmp_path / "labelled.jsonl", fixture_rows())
    config = write_config(
        tmp_path / "a.yaml",
        data=[str(data)],
        output=str(tmp_path / "out"),
        finetune={**TINY["finetune"], "max_steps": 2},
    )
    first = runner.invoke(app, ["train", "--config", str(config)])
    assert first.exit_code == 0, first.output
    result = runner.invoke(app, ["train", "--config", str(config), "--resume", "--learning-rate", "0.01"])
    assert result.exit_code == 2
    assert "made with another configuration" in result.output


def test_invalid_rows_stop_training_naming_file_line_and_field(tmp_path: Path):
    rows = fixture_rows()
    rows[2] = {**rows[2], "urgency": "whenever"}
    rows[30] = {**rows[30], "emotions": ["anger", "hangry"]}
    data = write_jsonl(tmp_path / "mine.jsonl", rows)
    result = runner.invoke(
        app, ["train", "--recipe", "none", "--mode", "finetune", "--data", str(data), "-o", str(tmp_path / "out")]
    )
    assert result.exit_code == 2
    assert "mine.jsonl:3: field 'urgency': 'whenever' is not one of" in result.output
    kept, problems = read_labelled_files([data], skip_invalid=True, tasks=("sentiment", "urgency", "emotions"))
    assert len(kept) == len(rows) - 2 and len(problems) == 2
    assert "mine.jsonl:31: field 'emotions': 'hangry' is not one of the 28 emotions labels" in problems[1]


def test_csv_emotions_are_split_on_semicolons(tmp_path: Path):
    path = tmp_path / "mine.csv"
    path.write_text("text,emotions,urgency\nso cross,anger;annoyance,high\nhmm,,low\nbad,rage,low\n")
    rows, problems = read_labelled_files([path], skip_invalid=True, tasks=("urgency", "emotions"))
    assert rows[0].multilabels == {"emotions": ("anger", "annoyance")} and rows[0].labels == {"urgency": "high"}
    assert rows[1].multilabels == {} and problems == [
        f"{path}:4: field 'emotions': 'rage' is not one of the 28 emotions labels"
    ]
    with pytest.raises(DataError, match=r"mine.csv:4: field 'emotions'"):
        read_labelled_files([path], tasks=("urgency", "emotions"))


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"finetune": {"rank": 0}}, r"train.yaml: finetune.rank: Input should be greater than 0"),
        ({"learning_rat": 0.1}, r"train.yaml: learning_rat: Extra inputs are not permitted"),
        ({"mode": "freeze"}, r"train.yaml: mode: Input should be 'heads' or 'finetune'"),
        ({"tasks": ["sentiment", "urgency"]}, r"train.yaml: tasks: Value error, a bundle needs a head for each"),
        ({"finetune": {"method": "lora", "rnk": 4}}, r"train.yaml: finetune.rnk: Extra inputs are not permitted"),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, document: dict, message: str):
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError, match=message):
        load_train_config(path)
    result = runner.invoke(app, ["train", "--config", str(path)])
    output = " ".join(result.output.split())
    assert result.exit_code == 2 and output.startswith("error: ") and message.replace("\\", "") in output


def test_config_file_and_flags_combine(tmp_path: Path):
    path = tmp_path / "train.yaml"
    path.write_text("mode: finetune\nfinetune:\n  method: lora\n  rank: 16\nepochs: 2\n")
    config = load_train_config(path, {"epochs": 5, "finetune.max_steps": 100, "seed": None})
    assert config.epochs == 5 and config.finetune.rank == 16 and config.finetune.max_steps == 100
    assert config.learning_rate == 5e-4 and config.batch_size == 32, "finetune defaults fill what is not set"
    assert load_train_config(None).learning_rate == 1e-3, "heads mode keeps its defaults"
    path.write_text("- not a mapping\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_train_config(path)


@pytest.fixture
def finetuned_copy(tiny_finetuned: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(tiny_finetuned, target)
    return target


def test_missing_adapter_fails_at_load(finetuned_copy: Path):
    (finetuned_copy / LORA_DIR / PEFT_WEIGHTS_FILE).unlink()
    with pytest.raises(BundleError, match=r"adapter_model.safetensors is missing"):
        load_bundle(finetuned_copy)


def test_damaged_adapter_fails_at_load(finetuned_copy: Path):
    path = finetuned_copy / LORA_DIR / PEFT_WEIGHTS_FILE
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="does not match the sha256"):
        load_bundle(finetuned_copy)


def test_adapter_that_does_not_fit_the_encoder_fails_at_start_up(finetuned_copy: Path):
    manifest_path = finetuned_copy / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    manifest["adapter"]["rank"] = 8
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="not rank 8"):
        load_bundle(finetuned_copy)
    manifest["adapter"]["rank"] = 4
    manifest["adapter"]["target_modules"] = ["query", "value"]  # the file also has key, dense... tensors
    manifest_path.write_text(json.dumps(manifest))
    bundle = load_bundle(finetuned_copy)
    with pytest.raises(BundleError, match="does not fit the base encoder"):
        Encoder(max_seq_length=32, adapter=bundle.adapter)
    with pytest.raises(BundleError, match="does not fit the base encoder"):  # what service start-up calls
        load_analyzer(Settings(_env_file=None, model=str(finetuned_copy)))


def test_heads_mode_trains_on_user_data_from_the_cli(tmp_path: Path):
    data = write_jsonl(tmp_path / "labelled.jsonl", fixture_rows())
    out = tmp_path / "heads"
    result = runner.invoke(
        app,
        [
            "train",
            "--recipe",
            "none",
            "--data",
            str(data),
            "-o",
            str(out),
            "--epochs",
            "5",
            "--batch-size",
            "8",
            "--hidden-dim",
            "16",
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
    )
    assert result.exit_code == 0, result.output
    bundle = load_bundle(out)
    assert bundle.manifest.mode == "heads" and bundle.adapter is None
    assert not (out / ADAPTER_FILE).exists() and not (out / LORA_DIR / PEFT_WEIGHTS_FILE).exists()
    assert bundle.manifest.tasks["emotions"].training_data == ["labelled/emotions:train (16)"]
    assert bundle.manifest.tasks["urgency"].training_data == ["labelled/urgency:train-fit (14)"]
    assert bundle.manifest.training["config"]["max_epochs"] == 5


def test_partial_unfreezing_stores_only_the_top_layers(tmp_path: Path):
    """method `partial`: the bottom layers stay the base encoder's, the bundle holds the
    trained top layers alone, and loading puts them back over the packaged weights."""
    data = write_jsonl(tmp_path / "labelled.jsonl", fixture_rows())
    config = write_config(
        tmp_path / "train.yaml",
        data=[str(data)],
        output=str(tmp_path / "bundle"),
        finetune={**TINY["finetune"], "method": "partial", "trainable_layers": 2},
    )
    result = runner.invoke(app, ["train", "--config", str(config)])
    assert result.exit_code == 0, result.output
    bundle = load_bundle(tmp_path / "bundle")
    assert bundle.manifest.adapter.method == "partial" and bundle.manifest.adapter.layers == [4, 5]
    assert bundle.adapter.tensors and all(
        key.startswith(("encoder.layer.4.", "encoder.layer.5.")) for key in bundle.adapter.tensors
    )
    base, tuned = Encoder(max_seq_length=32), Encoder(max_seq_length=32, adapter=bundle.adapter)
    base_state, tuned_state = base.transformer.state_dict(), tuned.transformer.state_dict()
    assert all(
        torch.equal(base_state[k], tuned_state[k])
        for k in base_state
        if not k.startswith(("encoder.layer.4.", "encoder.layer.5."))
    ), "frozen layers must stay the base encoder's"
    assert any(not torch.equal(base_state[k], tuned_state[k]) for k in bundle.adapter.tensors)
    # A layer missing from the file is refused at load, naming it.
    shutil.copytree(tmp_path / "bundle", tmp_path / "broken")
    broken = load_bundle(tmp_path / "broken").adapter
    broken.tensors.pop(next(iter(broken.tensors)))
    with pytest.raises(BundleError, match="layer weights do not fit the base encoder \\(missing encoder.layer.4"):
        Encoder(max_seq_length=32, adapter=broken)


def test_embedding_anchor_keeps_sentence_embeddings_near_the_base(tmp_path: Path):
    """With the anchor, the tuned encoder's sentence embeddings (what topics cluster) stay
    closer to the base encoder's than without it, from the same seed and data."""
    data = write_jsonl(tmp_path / "labelled.jsonl", fixture_rows())
    texts = [row["text"] for row in fixture_rows()[:40]]
    base = Encoder(max_seq_length=32).encode(texts).embeddings
    drift = {}
    for anchor in (0.0, 5.0):
        config = load_train_config(
            None,
            {
                **TINY,
                "data": [data],
                "output": tmp_path / f"out{anchor}",
                "cache_dir": None,
                "learning_rate": 2e-2,
                "finetune": {**TINY["finetune"], "embedding_anchor": anchor},
            },
        )
        recipe, _ = build_recipe(config)
        result = finetune(recipe, config, show_progress=False)
        result.encoder.set_window(32)
        tuned = result.encoder.encode(texts).embeddings
        drift[anchor] = float(1 - (tuned * base).sum(axis=1).mean())
    assert drift[5.0] < drift[0.0] * 0.8, drift


def test_task_sampling_and_length_buckets_shape_each_epoch():
    from training.datasets import LabelledSet
    from training.finetune import epoch_batches, steps_per_epoch
    from training.recipes import TaskData

    def labelled(name: str, n: int) -> LabelledSet:
        texts = ["x" * (1 + (i * 37) % 97) for i in range(n)]
        return LabelledSet(name, texts, np.zeros(n, dtype=np.int64), ["a", "b"], "multiclass")

    recipe = {
        "big": TaskData(labelled("big", 1000), labelled("big-dev", 10)),
        "small": TaskData(labelled("small", 50), labelled("small-dev", 10)),
    }
    caps = {"big": 200}
    first = epoch_batches(recipe, 10, seed=3, epoch=0, rows_per_epoch=caps, bucket_batches=5)
    assert len(first) == steps_per_epoch(recipe, 10, caps) == 20 + 5
    rows = {task: np.concatenate([r for t, r in first if t == task]) for task in recipe}
    assert len(rows["big"]) == len(set(rows["big"].tolist())) == 200 and len(rows["small"]) == 50
    second = epoch_batches(recipe, 10, seed=3, epoch=1, rows_per_epoch=caps, bucket_batches=5)
    assert set(np.concatenate([r for t, r in second if t == "big"]).tolist()) != set(rows["big"].tolist()), (
        "each epoch draws a fresh sample of a capped task"
    )
    assert [(t, r.tolist()) for t, r in first] == [
        (t, r.tolist()) for t, r in epoch_batches(recipe, 10, seed=3, epoch=0, rows_per_epoch=caps, bucket_batches=5)
    ], "a pure function of (seed, epoch)"
    texts = recipe["big"].train.texts

    def spread(batches) -> float:
        return float(
            np.mean([max(len(texts[i]) for i in r) - min(len(texts[i]) for i in r) for t, r in batches if t == "big"])
        )

    unbucketed = epoch_batches(recipe, 10, seed=3, epoch=0, rows_per_epoch=caps, bucket_batches=1)
    assert spread(first) < spread(unbucketed) / 2, "bucketed batches hold texts of similar length"


@pytest.mark.parametrize("in_place", [False, True])
def test_heads_refit_on_a_lora_bundle_keeps_peft_layout(tiny_finetuned: Path, tmp_path: Path, in_place: bool):
    """A LoRA base: both PEFT files are carried over unchanged (copied, or left in place)."""
    base = tmp_path / "base"
    shutil.copytree(tiny_finetuned, base)
    output = base if in_place else tmp_path / "refit"
    before = {name: (base / LORA_DIR / name).read_bytes() for name in (PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE)}
    result = runner.invoke(
        app,
        ["train", "--base-bundle", str(base), "--tasks", "complaint", "--data-root", str(FIXTURES)]
        + ["--output", str(output), "--epochs", "2", "--hidden-dim", "16", "--cache-dir", str(tmp_path / "cache")],
    )
    assert result.exit_code == 0, result.output
    assert {name: (output / LORA_DIR / name).read_bytes() for name in before} == before
    bundle = load_bundle(output)
    assert bundle.manifest.adapter.method == "lora" and bundle.manifest.encoder.max_seq_length == 32
    assert set(bundle.heads) == {"sentiment", "emotions", "urgency", "complaint"}


def test_float16_adapter_halves_the_file_and_loads_into_float32(tmp_path: Path):
    """`adapter_dtype: float16`: the trained layers are stored in half the bytes, the
    manifest says so, serving loads them into the float32 encoder, and a file whose
    precision differs from its manifest is refused."""
    data = write_jsonl(tmp_path / "labelled.jsonl", fixture_rows())
    sizes = {}
    for dtype in ("float32", "float16"):
        config = write_config(
            tmp_path / f"{dtype}.yaml",
            data=[str(data)],
            output=str(tmp_path / dtype),
            finetune={**TINY["finetune"], "method": "partial", "trainable_layers": 1, "adapter_dtype": dtype},
        )
        result = runner.invoke(app, ["train", "--config", str(config)])
        assert result.exit_code == 0, result.output
        sizes[dtype] = (tmp_path / dtype / "adapter.safetensors").stat().st_size
    bundle = load_bundle(tmp_path / "float16")
    assert bundle.manifest.adapter.dtype == "float16"
    assert {v.dtype for v in bundle.adapter.tensors.values()} == {torch.float16}
    assert sizes["float16"] < 0.55 * sizes["float32"]
    tuned = Encoder(max_seq_length=32, adapter=bundle.adapter).transformer.state_dict()
    assert all(
        tuned[k].dtype == torch.float32 and torch.equal(tuned[k], v.float()) for k, v in bundle.adapter.tensors.items()
    )
    # The float32 file described as float16 is refused, naming both.
    manifest = json.loads((tmp_path / "float32" / "manifest.json").read_text())
    manifest["adapter"]["dtype"] = "float16"
    (tmp_path / "float32" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="stored as \\['float32'\\], the manifest says float16"):
        load_bundle(tmp_path / "float32")


def test_refit_heads_keep_whichever_head_is_better_on_dev(tmp_path: Path):
    """`refit_heads`: each named head is trained again on the frozen tuned encoder, and the
    bundle keeps the one with the higher dev macro-F1; the record shows both figures. The
    refit emotions head attends over the token vectors (`token_attention`, as the shipped
    recipe's), and the bundle serves whichever head was kept."""
    data = write_jsonl(tmp_path / "labelled.jsonl", fixture_rows())
    config = write_config(
        tmp_path / "train.yaml",
        data=[str(data)],
        output=str(tmp_path / "bundle"),
        finetune={**TINY["finetune"], "refit_heads": ["urgency", "emotions"]},
        token_attention={"emotions": 8},
    )
    result = runner.invoke(app, ["train", "--config", str(config)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    choices = manifest["training"]["refit_heads"]
    assert set(choices) == {"urgency", "emotions"}
    for task, choice in choices.items():
        joint, refit = choice["joint_dev_macro_f1"], choice["refit_dev_macro_f1"]
        assert choice["kept"] == ("refit" if refit >= joint else "joint")
        assert 0.0 <= min(joint, refit) and max(joint, refit) <= 1.0, task
    attends = choices["emotions"]["kept"] == "refit"
    assert manifest["tasks"]["emotions"].get("attention_dim") == (8 if attends else None)
    bundle = load_bundle(tmp_path / "bundle")
    encoder = Encoder(max_seq_length=bundle.manifest.encoder.max_seq_length, adapter=bundle.adapter)
    (analysis,) = Analyzer(encoder, bundle).analyze_messages([Message(role=Role.customer, text="So confused!")], ["m"])
    assert analysis.emotions


def test_finetune_continues_from_a_base_bundle(tmp_path: Path):
    """`base_bundle` in mode finetune: the encoder starts as the base bundle's (its adapter
    applied) and each task head as the base's head of that task, the new bundle stands on
    its own over the packaged encoder, and its record names the bundle it continued."""
    data = write_jsonl(tmp_path / "labelled.jsonl", fixture_rows())
    partial = {**TINY["finetune"], "method": "partial", "trainable_layers": 2}
    first = write_config(tmp_path / "first.yaml", data=[str(data)], output=str(tmp_path / "first"), finetune=partial)
    assert runner.invoke(app, ["train", "--config", str(first)]).exit_code == 0
    # A step so small that nothing moves: what comes out is what the run started from.
    still = {**partial, "head_learning_rate": 1e-12}
    second = write_config(
        tmp_path / "second.yaml",
        data=[str(data)],
        output=str(tmp_path / "second"),
        base_bundle=str(tmp_path / "first"),
        learning_rate=1e-12,
        finetune=still,
    )
    result = runner.invoke(app, ["train", "--config", str(second)])
    assert result.exit_code == 0, result.output
    base, continued = load_bundle(tmp_path / "first"), load_bundle(tmp_path / "second")
    assert continued.manifest.adapter.layers == base.manifest.adapter.layers == [4, 5]
    for key, tensor in base.adapter.tensors.items():
        assert torch.allclose(continued.adapter.tensors[key], tensor, atol=1e-6), key
    for task, head in base.heads.items():
        for key, tensor in head.network.state_dict().items():
            assert torch.allclose(continued.heads[task].network.state_dict()[key], tensor, atol=1e-6), (task, key)
    record = continued.manifest.training["continued_from"]
    assert record["adapter_sha256"] == base.manifest.adapter.sha256
    assert record["encoder_training"]["mode"] == "finetune (partial)"
    assert "Fine-tuning continued from" in (tmp_path / "second" / "README.md").read_text()
    # The packaged encoder plus the new adapter alone gives the base bundle's encoder.
    sentence = Encoder(max_seq_length=32, adapter=continued.adapter).encode(["where is my refund"]).features
    expected = Encoder(max_seq_length=32, adapter=base.adapter).encode(["where is my refund"]).features
    assert np.allclose(sentence, expected, atol=1e-5)


def test_continued_finetune_must_store_every_layer_the_base_changed(tmp_path: Path):
    """A continued fine-tune's adapter replaces the base's: LoRA (relative to the base's
    weights) and too few trainable layers are refused before any data is read, naming the key."""
    data = write_jsonl(tmp_path / "labelled.jsonl", fixture_rows())
    partial = {**TINY["finetune"], "method": "partial", "trainable_layers": 2}
    first = write_config(tmp_path / "first.yaml", data=[str(data)], output=str(tmp_path / "first"), finetune=partial)
    assert runner.invoke(app, ["train", "--config", str(first)]).exit_code == 0
    for finetune_settings, message in [
        ({**partial, "method": "lora"}, "base_bundle: Value error, continued fine-tuning stores whole layers"),
        (
            {**partial, "trainable_layers": 1},
            "base_bundle: Value error, .* changed encoder layers \\[4, 5\\]; finetune.trainable_layers 1",
        ),
    ]:
        path = write_config(
            tmp_path / "second.yaml", data=[str(data)], base_bundle=str(tmp_path / "first"), finetune=finetune_settings
        )
        with pytest.raises(ConfigError, match=message):
            load_train_config(path)
