"""Model bundles: a directory with `manifest.json`, `heads.safetensors` and `MODEL_CARD.md`.

The bundle holds what is not in the base encoder package: the task heads, their labels,
calibration and thresholds, and a description of how they were made. Weights are
safetensors only (no pickle), so loading a bundle never runs code from it."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from nlp.heads import HeadNetwork, HeadSpec, TaskHead

MANIFEST_FILE = "manifest.json"
WEIGHTS_FILE = "heads.safetensors"
MODEL_CARD_FILE = "MODEL_CARD.md"
BUNDLE_FORMAT = 1
REQUIRED_TASKS = ("sentiment", "emotions", "urgency")
_BUNDLE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class BundleError(RuntimeError):
    """A bundle is missing, malformed, or does not match its manifest."""


class EncoderManifest(BaseModel):
    name: str
    package: str
    package_version: str
    max_seq_length: int = Field(gt=0)
    features: str = Field(description="'mean_max': normalised mean pooling then max pooling")


class TaskManifest(BaseModel):
    kind: str = Field(pattern="^(multiclass|multilabel)$")
    labels: list[str] = Field(min_length=2)
    input_dim: int = Field(gt=0)
    hidden_dim: int = Field(gt=0)
    temperature: float = Field(gt=0)
    thresholds: list[float] | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    training_data: list[str] = Field(default_factory=list)
    dev_data: list[str] = Field(default_factory=list)


class BundleManifest(BaseModel):
    format: int = BUNDLE_FORMAT
    name: str = Field(pattern=_BUNDLE_NAME.pattern)
    version: str
    created: str
    description: str = ""
    encoder: EncoderManifest
    tasks: dict[str, TaskManifest]
    training: dict[str, Any] = Field(default_factory=dict)


class ModelBundle:
    """A loaded bundle: its manifest and one ready head per task."""

    def __init__(self, path: Path, manifest: BundleManifest, heads: dict[str, TaskHead]) -> None:
        self.path = path
        self.manifest = manifest
        self.heads = heads

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version


def resolve_bundle_path(value: str | Path, models_root: Path) -> Path:
    """Resolve a bundle given in configuration: a directory path (anything with a path
    separator, trusted because it comes from the operator's settings) or a bare name under
    `models_root` (see `resolve_bundle_name`)."""
    text = str(value)
    if "/" in text or "\\" in text:
        path = Path(text).expanduser().resolve()
        if not path.is_dir():
            raise BundleError(f"model bundle directory {path} does not exist")
        return path
    return resolve_bundle_name(text, models_root)


def resolve_bundle_name(name: str, models_root: Path) -> Path:
    """The bundle directory `name` under `models_root`. Use this for any name a caller
    supplies (a request, a topic bundle chosen per call): never a path.

    A name must be a plain directory name (letters, digits, '.', '_', '-'; not '.' or
    '..', no separators), and the directory it names must really be inside the models
    directory once symlinks are resolved: a link pointing elsewhere is refused."""
    if not _BUNDLE_NAME.fullmatch(name) or name in {".", ".."}:
        raise BundleError(f"{name!r} is not a valid model bundle name (letters, digits, '.', '_', '-')")
    root = models_root.resolve()
    path = (root / name).resolve()
    if path.parent != root:
        raise BundleError(f"model bundle {name!r} resolves to {path}, outside the models directory {root}")
    if not path.is_dir():
        raise BundleError(f"no model bundle named {name!r} in {models_root}")
    return path


def load_bundle(path: str | Path) -> ModelBundle:
    """Read and check a bundle; raise BundleError naming the file and the problem."""
    path = Path(path)
    manifest_path = path / MANIFEST_FILE
    weights_path = path / WEIGHTS_FILE
    if not path.is_dir():
        raise BundleError(f"model bundle directory {path} does not exist")
    if not manifest_path.is_file():
        raise BundleError(f"{manifest_path} is missing: not a convintel model bundle")
    try:
        manifest = BundleManifest.model_validate(json.loads(manifest_path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{manifest_path} is not valid JSON: {exc}") from exc
    except ValidationError as exc:
        raise BundleError(f"{manifest_path} does not describe a bundle: {exc}") from exc
    if manifest.format != BUNDLE_FORMAT:
        raise BundleError(f"{manifest_path}: bundle format {manifest.format} is not supported (expected {BUNDLE_FORMAT})")
    missing = [task for task in REQUIRED_TASKS if task not in manifest.tasks]
    if missing:
        raise BundleError(f"{manifest_path}: tasks {missing} are missing")
    if not weights_path.is_file():
        raise BundleError(f"{weights_path} is missing")
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise BundleError(f"{weights_path} is not a readable safetensors file: {exc}") from exc

    heads: dict[str, TaskHead] = {}
    for task, entry in manifest.tasks.items():
        spec = HeadSpec(
            task=task, kind=entry.kind, labels=list(entry.labels), input_dim=entry.input_dim,
            hidden_dim=entry.hidden_dim, temperature=entry.temperature,
            thresholds=list(entry.thresholds) if entry.thresholds else None, metrics=dict(entry.metrics),
        )
        if spec.thresholds is not None and len(spec.thresholds) != len(spec.labels):
            raise BundleError(f"{manifest_path}: task {task!r} has {len(spec.thresholds)} thresholds for {len(spec.labels)} labels")
        network = HeadNetwork(spec.input_dim, spec.hidden_dim, len(spec.labels))
        prefix = f"{task}."
        state = {key[len(prefix):]: value for key, value in tensors.items() if key.startswith(prefix)}
        try:
            network.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise BundleError(f"{weights_path}: weights for task {task!r} do not match the manifest: {exc}") from exc
        heads[task] = TaskHead(spec, network)
    return ModelBundle(path, manifest, heads)


def save_bundle(
    path: str | Path,
    *,
    name: str,
    version: str,
    encoder: EncoderManifest,
    heads: dict[str, TaskHead],
    task_data: dict[str, dict[str, list[str]]],
    training: dict[str, Any],
    description: str,
    model_card: str,
) -> BundleManifest:
    """Write a bundle directory: manifest, safetensors weights and model card."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tasks = {
        task: TaskManifest(
            kind=head.spec.kind, labels=head.spec.labels, input_dim=head.spec.input_dim,
            hidden_dim=head.spec.hidden_dim, temperature=head.spec.temperature,
            thresholds=head.spec.thresholds, metrics=head.spec.metrics,
            training_data=task_data.get(task, {}).get("train", []),
            dev_data=task_data.get(task, {}).get("dev", []),
        )
        for task, head in heads.items()
    }
    manifest = BundleManifest(
        name=name, version=version, created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        description=description, encoder=encoder, tasks=tasks, training=training,
    )
    tensors: dict = {}
    for task, head in heads.items():
        tensors.update(head.state_dict(prefix=f"{task}."))
    save_file(tensors, str(path / WEIGHTS_FILE), metadata={"name": name, "version": version})
    (path / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    (path / MODEL_CARD_FILE).write_text(model_card, encoding="utf-8")
    return manifest
