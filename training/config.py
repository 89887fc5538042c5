"""What `convintel train` runs: one validated configuration, read from a YAML file and/or
command-line flags (flags win). A bad key or value stops with one line naming it, e.g.
`train.yaml: finetune.rank: Input should be greater than 0`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from nlp.bundle import BUNDLE_NAME_PATTERN, MAX_POSITIONS, REQUIRED_TASKS, BundleManifest
from nlp.encoder import encoder_layer_count
from training.datasets import INTERACTION_TASKS, MULTILABEL_TASKS
from training.head_trainer import HeadTrainingConfig

TrainMode = Literal["heads", "finetune"]
FinetuneMethod = Literal["lora", "partial", "full"]
MODE_DEFAULTS: dict[str, dict[str, Any]] = {
    # Heads train in seconds on cached features; fine-tuning costs a forward and backward
    # pass per text, so fewer epochs and short windows.
    "heads": {"epochs": 40, "learning_rate": 1e-3, "batch_size": 256, "max_length": 256, "patience": 5},
    "lora": {"epochs": 3, "learning_rate": 5e-4, "batch_size": 32, "max_length": 128, "patience": 3},
    "partial": {"epochs": 3, "learning_rate": 8e-5, "batch_size": 32, "max_length": 128, "patience": 3},
    "full": {"epochs": 3, "learning_rate": 3e-5, "batch_size": 32, "max_length": 128, "patience": 3},
}


class ConfigError(ValueError):
    """The training configuration is unreadable or invalid; the message names the key."""


class FinetuneConfig(BaseModel):
    """Encoder fine-tuning (mode `finetune`)."""

    model_config = ConfigDict(extra="forbid")

    method: FinetuneMethod = Field(
        "lora", description="'lora' adapters (small bundle), 'partial' (the top layers learn) or 'full' (every weight)"
    )
    trainable_layers: int = Field(2, gt=0, le=24, description="partial: how many top transformer layers learn")
    rank: int = Field(8, gt=0, le=256, description="LoRA rank")
    alpha: float = Field(16.0, gt=0, description="LoRA scaling numerator (scale = alpha / rank)")
    dropout: float = Field(0.1, ge=0, lt=1, description="LoRA dropout")
    target_modules: list[str] = Field(
        default_factory=lambda: ["query", "key", "value", "output.dense", "intermediate.dense"],
        min_length=1,
        description="BERT linear layers that get adapters (suffixes of module names)",
    )
    head_learning_rate: float = Field(1e-3, gt=0, description="learning rate of the task heads")
    warmup_share: float = Field(0.06, ge=0, lt=1, description="share of steps with a linear warm-up")
    max_steps: int | None = Field(None, gt=0, description="stop after this many steps (caps the schedule)")
    eval_every: int | None = Field(None, gt=0, description="steps between dev checks; default once an epoch")
    dev_limit: int | None = Field(2000, gt=0, description="dev rows per task read by each early-stopping check")
    checkpoint_every: int | None = Field(None, gt=0, description="steps between checkpoints; default at each dev check")
    rows_per_epoch: dict[str, int] = Field(
        default_factory=dict,
        description="task sampling: training rows a task contributes per epoch, drawn "
        "afresh each epoch (tasks not named: all their rows)",
    )
    embedding_anchor: float = Field(
        0.0,
        ge=0,
        description="weight of a loss that keeps sentence embeddings near the base encoder's (1 - cosine), "
        "so topics clustered on them keep their quality; 0: off",
    )
    stop_tasks: list[str] = Field(
        default_factory=list,
        description="tasks whose mean dev figure drives early stopping (default: every task); "
        "leave out tasks whose dev set is too small to be a steady signal",
    )
    refit_heads: list[str] = Field(
        default_factory=list,
        description="tasks whose head is trained again, on the fine-tuned encoder's "
        "frozen features, after fine-tuning (small tasks that the shared steps barely reach)",
    )
    adapter_dtype: Literal["float32", "float16"] = Field(
        "float32",
        description="precision a partial or full adapter is stored in; float16 halves the bundle, serving "
        "loads it into float32, and the heads are calibrated on the rounded encoder (LoRA: always float32)",
    )
    bucket_batches: int = Field(
        50,
        ge=1,
        description="length bucketing: batches' worth of shuffled rows sorted "
        "by length together before they are cut (1: no bucketing)",
    )

    @field_validator("rows_per_epoch")
    @classmethod
    def _positive_caps(cls, caps: dict[str, int]) -> dict[str, int]:
        bad = [task for task, rows in caps.items() if rows <= 0]
        if bad:
            raise ValueError(f"rows_per_epoch.{bad[0]} must be positive")
        return caps


class TrainConfig(BaseModel):
    """Everything one training run needs; `convintel train --config FILE` reads this."""

    model_config = ConfigDict(extra="forbid")

    recipe: Literal["default", "none"] = Field(
        "default", description="'default': the shipped recipe (public sets + own data); 'none': only `data`"
    )
    tasks: list[str] = Field(default_factory=lambda: ["sentiment", "emotions", "urgency"], min_length=1)
    data: list[Path] = Field(default_factory=list, description="labelled interaction files (JSONL or CSV)")
    skip_invalid: bool = Field(False, description="skip (and count) invalid rows instead of stopping")
    data_root: Path = Field(Path("../shared/data"), description="the public data sets folder")
    encoder_path: Path | None = Field(None, description="base encoder directory; default: the packaged MiniLM")
    base_bundle: Path | None = Field(
        None,
        description="heads mode: a bundle directory whose encoder (adapter merged, its window) the `tasks` heads "
        "are trained on; its other heads, adapter and records are kept as they are. finetune mode: fine-tuning "
        "continues from that bundle's encoder, and its heads of the `tasks` start the task heads",
    )
    mode: TrainMode = "heads"
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)
    # None: the mode's default (MODE_DEFAULTS), filled in by validation.
    epochs: int | None = Field(None, gt=0, description="maximum epochs")
    learning_rate: float | None = Field(None, gt=0, description="heads: head rate; finetune: encoder/adapter rate")
    batch_size: int | None = Field(None, gt=0)
    max_length: int | None = Field(
        None, ge=8, le=MAX_POSITIONS, description="word pieces the encoder reads while training"
    )
    window: int = Field(256, ge=8, le=MAX_POSITIONS, description="word pieces the bundle's encoder reads when serving")
    seed: int = Field(13, ge=0, le=2**32 - 1, description="numpy's and torch's seed (their range)")
    patience: int | None = Field(None, ge=1, description="early stopping: dev checks without improvement")
    class_weighting: bool = Field(True, description="balance classes in single-label losses")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="single-label losses")
    tune_thresholds: bool = Field(True, description="per-label thresholds of multi-label tasks tuned on dev")
    threshold_min_precision: dict[str, float] = Field(
        default_factory=dict,
        description="task -> precision its labels' thresholds must reach on dev (the lowest such threshold "
        "wins); tasks not named get the best-F1 threshold",
    )
    multilabel_stop: Literal["loss", "macro_f1"] = Field(
        "loss", description="heads mode: multi-label early stopping on dev loss, or macro-F1 at tuned thresholds"
    )
    calibrate: bool = Field(True, description="temperature scaling fitted on dev")
    token_attention: dict[str, int] = Field(
        default_factory=dict,
        description="multi-label task -> width of a label-wise attention over the token vectors that its head "
        "adds to the pooled features (the shipped emotions head: 256); tasks not named read pooled features only",
    )
    hidden_dim: int = Field(512, gt=0, description="head hidden layer width")
    dropout: float = Field(0.1, ge=0, lt=1, description="head dropout")
    device: str = Field("auto", description="'auto' (GPU when present), 'cpu', 'cuda', 'cuda:1'...")
    threads: int | None = Field(None, ge=1, description="torch CPU threads; default: torch's (one per core)")
    output: Path = Path("models/convintel-base")
    # The manifest's own rule, checked here: a bad name found only when the bundle is saved
    # would come after the training, and after save_bundle had cleared the output folder.
    name: str = Field("convintel-base", pattern=BUNDLE_NAME_PATTERN)
    version: str = "0.1.0"
    cache_dir: Path | None = Field(Path(".cache/features"), description="encoder feature cache (heads mode)")
    checkpoint_dir: Path | None = Field(None, description="finetune checkpoints; default OUTPUT.checkpoint")

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, tasks: list[str]) -> list[str]:
        unknown = [t for t in tasks if t not in INTERACTION_TASKS]
        if unknown:
            raise ValueError(f"unknown task {unknown[0]!r}; choose from {list(INTERACTION_TASKS)}")
        return list(dict.fromkeys(tasks))

    @model_validator(mode="after")
    def _complete_bundle(self) -> TrainConfig:
        if self.base_bundle is not None and self.mode == "heads":
            return self  # the base bundle gives the heads not trained here
        # A fine-tune changes the encoder, so every head the service reads is trained anew.
        missing = [t for t in REQUIRED_TASKS if t not in self.tasks]
        if missing:  # the service reads every head of a bundle
            raise ValueError(
                f"tasks: a bundle needs a head for each of {list(REQUIRED_TASKS)}; {missing[0]!r} is missing "
                "(or refit some heads on an existing bundle with base_bundle)"
            )
        return self

    @model_validator(mode="after")
    def _base_bundle(self) -> TrainConfig:
        base = self.base_bundle
        if base is None:
            return self
        if self.encoder_path is not None:
            raise ValueError("base_bundle: the encoder is the base bundle's, so encoder_path cannot be set too")
        if not base.is_dir():
            raise ValueError(f"base_bundle: {base} does not exist or is not a directory")
        if not (base / "manifest.json").is_file():
            raise ValueError(f"base_bundle: {base} has no manifest.json, so it is not a model bundle")
        if self.mode == "finetune":
            self._check_continuable(base)
        return self

    def _check_continuable(self, base: Path) -> None:
        """A continued fine-tune stores an adapter that the packaged encoder loads on its own,
        so it must hold whole layers that cover every layer the base bundle changed."""
        try:
            adapter = BundleManifest.model_validate_json((base / "manifest.json").read_text(encoding="utf-8")).adapter
        except (OSError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            raise ValueError(f"base_bundle: cannot read {base / 'manifest.json'}: {exc}") from None
        method = self.finetune.method
        if method == "lora":
            raise ValueError(
                "base_bundle: continued fine-tuning stores whole layers; set finetune.method to 'partial' or 'full' "
                "(a LoRA adapter would be relative to the base bundle's weights, not the packaged encoder's)"
            )
        if adapter is None or method == "full":
            return
        if adapter.method not in ("partial", "full"):
            raise ValueError(
                f"base_bundle: {base} has a {adapter.method!r} adapter; only partial or full ones continue"
            )
        layers = encoder_layer_count()
        trained = set(range(layers - self.finetune.trainable_layers, layers))
        changed = set(range(layers)) if adapter.method == "full" else set(adapter.layers)
        if not changed <= trained:
            raise ValueError(
                f"base_bundle: {base} changed encoder layers {sorted(changed)}; finetune.trainable_layers "
                f"{self.finetune.trainable_layers} trains only {sorted(trained)}, so the bundle would lose the rest"
            )

    @model_validator(mode="after")
    def _token_attention(self) -> TrainConfig:
        for task, width in self.token_attention.items():
            if task not in self.tasks:
                raise ValueError(f"token_attention: {task!r} is not one of the tasks {self.tasks}")
            if task not in MULTILABEL_TASKS:
                raise ValueError(f"token_attention: {task!r} is not a multi-label task ({list(MULTILABEL_TASKS)})")
            if width <= 0:
                raise ValueError(f"token_attention: {task!r} needs a positive width, not {width}")
        return self

    @model_validator(mode="after")
    def _finetune_tasks(self) -> TrainConfig:
        for key in ("stop_tasks", "refit_heads"):
            unknown = [t for t in getattr(self.finetune, key) if t not in self.tasks]
            if unknown:
                raise ValueError(f"finetune.{key}: {unknown[0]!r} is not one of the tasks {self.tasks}")
        return self

    @model_validator(mode="after")
    def _mode_defaults(self) -> TrainConfig:
        key = "heads" if self.mode == "heads" else self.finetune.method
        for name, value in MODE_DEFAULTS[key].items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        return self

    def head_config(self) -> HeadTrainingConfig:
        """The settings of mode `heads` (training.head_trainer); in mode `finetune`, those
        that refit heads on the fine-tuned encoder use the heads mode's defaults."""
        own = self.mode == "heads"
        defaults = MODE_DEFAULTS["heads"]
        return HeadTrainingConfig(
            hidden_dim=self.hidden_dim,
            dropout=self.dropout,
            learning_rate=self.learning_rate if own else defaults["learning_rate"],
            batch_size=self.batch_size if own else defaults["batch_size"],
            max_epochs=self.epochs if own else defaults["epochs"],
            patience=self.patience if own else defaults["patience"],
            class_weighting=self.class_weighting,
            label_smoothing=self.label_smoothing,
            calibrate=self.calibrate,
            tune_thresholds=self.tune_thresholds,
            min_precision=dict(self.threshold_min_precision),
            seed=self.seed,
            multilabel_stop=self.multilabel_stop,
            token_attention=dict(self.token_attention),
        )

    def resolved_device(self) -> str:
        """`auto` means the GPU when torch sees one."""
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def resolved_checkpoint_dir(self) -> Path:
        return self.checkpoint_dir or self.output.with_name(self.output.name + ".checkpoint")


_VALUE_ERROR = "Value error, "
_KEY = re.compile(r"^[a-z_][a-z0-9_.]*$")


def _format_error(source: str, exc: ValidationError) -> str:
    first = exc.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    message = first["msg"]
    # A check across settings (a model validator) has no location; its message starts
    # with the key it is about ("base_bundle: ..."), which then reads like a field's error.
    named, colon, rest = message.removeprefix(_VALUE_ERROR).partition(": ")
    if not key and colon and message.startswith(_VALUE_ERROR) and _KEY.match(named):
        key, message = named, _VALUE_ERROR + rest
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{source}: {key or '(top level)'}: {message}{more}"


def load_train_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read `path` (YAML) if given, apply `overrides` (flags; None values are ignored; keys
    with a dot, like `finetune.rank`, set a nested value) and validate."""
    values: dict[str, Any] = {}
    source = "flags"
    if path is not None:
        source = str(path)
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not UTF-8 text") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of settings")
        values = loaded or {}
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        target = values
        *parents, leaf = key.split(".")
        for parent in parents:
            existing = target.get(parent)
            target = target.setdefault(parent, {}) if existing is None else existing
            if not isinstance(target, dict):
                raise ConfigError(f"{source}: {parent}: must be a mapping")
        target[leaf] = value
    try:
        return TrainConfig.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_format_error(source, exc)) from None
