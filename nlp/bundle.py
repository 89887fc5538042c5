"""Model bundles: a directory with `manifest.json`, `heads.safetensors` and a model card
(`README.md`, with Hugging Face metadata front matter), plus the encoder change when the
encoder was fine-tuned: a LoRA adapter in PEFT's own layout (`adapter/adapter_config.json`
and `adapter/adapter_model.safetensors`, so `PeftModel.from_pretrained` reads it), or the
trained layers' weights (`adapter.safetensors`).

The bundle holds what is not in the base encoder package: the task heads, their labels,
calibration and thresholds, the encoder's LoRA adapter (or, for a full fine-tune, its
weights), and a description of how they were made. Weights are safetensors only (no
pickle), so loading a bundle never runs code from it."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from nlp.errors import BundleError, describe_validation_error
from nlp.heads import HeadKind, HeadNetwork, HeadSpec, TaskHead
from nlp.paths import shipped_models_dir

MANIFEST_FILE = "manifest.json"
WEIGHTS_FILE = "heads.safetensors"
MODEL_CARD_FILE = "README.md"
ADAPTER_FILE = "adapter.safetensors"
LORA_DIR = "adapter"
"""PEFT's layout inside it: what `PeftModel.from_pretrained(model, bundle / LORA_DIR)` reads."""
PEFT_CONFIG_FILE = "adapter_config.json"
PEFT_WEIGHTS_FILE = "adapter_model.safetensors"
BUNDLE_FORMAT = 1
REQUIRED_TASKS = ("sentiment", "emotions", "urgency")
BUNDLE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_BUNDLE_NAME = re.compile(BUNDLE_NAME_PATTERN)


MAX_POSITIONS = 512
"""Word pieces the base encoder can read at most: its position embeddings end there."""


class EncoderManifest(BaseModel):
    name: str
    package: str
    package_version: str
    max_seq_length: int = Field(gt=0, le=MAX_POSITIONS)
    features: str = Field(description="'mean_max': normalised mean pooling then max pooling")


class TaskManifest(BaseModel):
    kind: HeadKind
    labels: list[str] = Field(min_length=2)
    input_dim: int = Field(gt=0)
    hidden_dim: int = Field(gt=0)
    temperature: float = Field(gt=0)
    thresholds: list[float] | None = None
    attention_dim: int | None = Field(
        None,
        gt=0,
        description="width of the label-wise attention over token vectors (None: pooled features only)",
        exclude_if=lambda value: value is None,  # manifests of heads without it read as before
    )
    metrics: dict[str, float] = Field(default_factory=dict)
    training_data: list[str] = Field(default_factory=list)
    dev_data: list[str] = Field(default_factory=list)


class AdapterManifest(BaseModel):
    """The encoder change a fine-tuned bundle carries, applied to the packaged base encoder
    at load time (merged into its weights, so inference costs the same)."""

    method: Literal["lora", "partial", "full"]
    file: str = ADAPTER_FILE
    sha256: str = Field(pattern="^[0-9a-f]{64}$")
    rank: int | None = Field(None, gt=0, description="LoRA rank")
    alpha: float | None = Field(None, gt=0, description="LoRA alpha (scale = alpha / rank)")
    target_modules: list[str] = Field(default_factory=list, description="LoRA target module suffixes")
    layers: list[int] = Field(
        default_factory=list, description="partial: the transformer layers whose weights it holds"
    )
    dtype: Literal["float32", "float16"] = Field(
        "float32", description="precision the weights are stored in; they load into the encoder's float32"
    )


class BundleManifest(BaseModel):
    format: int = BUNDLE_FORMAT
    name: str = Field(pattern=BUNDLE_NAME_PATTERN)
    version: str
    created: str
    description: str = ""
    encoder: EncoderManifest
    tasks: dict[str, TaskManifest]
    training: dict[str, Any] = Field(default_factory=dict)
    mode: Literal["heads", "finetune"] = Field("heads", description="'heads': frozen encoder; 'finetune': see adapter")
    adapter: AdapterManifest | None = None


@dataclass(frozen=True)
class BundleAdapter:
    """A bundle's encoder adapter: its manifest entry and tensors (see nlp.adapters)."""

    manifest: AdapterManifest
    tensors: dict
    path: Path


class ModelBundle:
    """A loaded bundle: its manifest, one ready head per task, and the encoder adapter of a
    fine-tuned bundle (None for frozen-encoder bundles)."""

    def __init__(
        self, path: Path, manifest: BundleManifest, heads: dict[str, TaskHead], adapter: BundleAdapter | None = None
    ) -> None:
        self.path = path
        self.manifest = manifest
        self.heads = heads
        self.adapter = adapter

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version


def resolve_bundle_path(value: str | Path, models_root: Path | None = None) -> Path:
    """Resolve a bundle given in configuration: a directory path (anything with a path
    separator, trusted because it comes from the operator's settings) or a bare name under
    `models_root` (see `resolve_bundle_name`); `models_root` None means the bundles shipped
    with convintel (`nlp.paths.shipped_models_dir`)."""
    text = str(value)
    if "/" in text or "\\" in text:
        path = Path(text).expanduser().resolve()
        if not path.is_dir():
            raise BundleError(f"model bundle directory {path} does not exist")
        return path
    if models_root is None:
        models_root = shipped_models_dir()
        if models_root is None:
            raise BundleError(
                f"no model bundle named {text!r}: no models directory is given and this installation ships none"
            )
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
    except OSError as exc:
        raise BundleError(f"cannot read {manifest_path}: {exc.strerror}") from exc
    except ValidationError as exc:
        problem = describe_validation_error(exc, limit=1, root="(the whole file)")
        raise BundleError(f"{manifest_path} does not describe a bundle: {problem}") from exc
    if manifest.format != BUNDLE_FORMAT:
        raise BundleError(
            f"{manifest_path}: bundle format {manifest.format} is not supported (expected {BUNDLE_FORMAT})"
        )
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
            task=task,
            kind=entry.kind,
            labels=list(entry.labels),
            input_dim=entry.input_dim,
            hidden_dim=entry.hidden_dim,
            temperature=entry.temperature,
            thresholds=list(entry.thresholds) if entry.thresholds else None,
            metrics=dict(entry.metrics),
            attention_dim=entry.attention_dim,
        )
        if spec.thresholds is not None and len(spec.thresholds) != len(spec.labels):
            raise BundleError(
                f"{manifest_path}: task {task!r} has {len(spec.thresholds)} thresholds for {len(spec.labels)} labels"
            )
        network = HeadNetwork(spec.input_dim, spec.hidden_dim, len(spec.labels), attention_dim=spec.attention_dim)
        prefix = f"{task}."
        state = {key[len(prefix) :]: value for key, value in tensors.items() if key.startswith(prefix)}
        try:
            network.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise BundleError(f"{weights_path}: weights for task {task!r} do not match the manifest: {exc}") from exc
        heads[task] = TaskHead(spec, network)
    return ModelBundle(path, manifest, heads, _load_adapter(path, manifest))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_adapter(path: Path, manifest: BundleManifest) -> BundleAdapter | None:
    """Read and check a fine-tuned bundle's adapter: present, intact (sha256), and shaped
    like its manifest says. Applying it to the encoder (nlp.adapters) checks the rest."""
    entry = manifest.adapter
    if manifest.mode == "finetune" and entry is None:
        raise BundleError(f"{path / MANIFEST_FILE}: mode 'finetune' but no adapter is described")
    if entry is None:
        return None
    adapter_path = path / entry.file
    if Path(entry.file).is_absolute() or ".." in Path(entry.file).parts:
        raise BundleError(f"{path / MANIFEST_FILE}: adapter.file must be a path inside the bundle")
    if not adapter_path.is_file():
        raise BundleError(f"{adapter_path} is missing (the manifest describes a {entry.method} adapter)")
    if file_sha256(adapter_path) != entry.sha256:
        raise BundleError(f"{adapter_path} does not match the sha256 in the manifest: damaged or replaced")
    try:
        tensors = load_file(str(adapter_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise BundleError(f"{adapter_path} is not a readable safetensors file: {exc}") from exc
    stored = {str(v.dtype).removeprefix("torch.") for v in tensors.values() if v.is_floating_point()}
    if stored - {entry.dtype}:
        raise BundleError(f"{adapter_path}: weights stored as {sorted(stored)}, the manifest says {entry.dtype}")
    if entry.method == "lora":
        if entry.rank is None or entry.alpha is None or not entry.target_modules:
            raise BundleError(f"{path / MANIFEST_FILE}: a lora adapter needs rank, alpha and target_modules")
        lora = {k: v for k, v in tensors.items() if ".lora_A." in k or ".lora_B." in k}
        if not lora or len(lora) != len(tensors):
            raise BundleError(f"{adapter_path}: expected only LoRA tensors (lora_A / lora_B)")
        for key, value in lora.items():
            rank_dim = value.shape[0] if ".lora_A." in key else value.shape[-1]
            if value.ndim != 2 or rank_dim != entry.rank:
                raise BundleError(f"{adapter_path}: {key} has shape {tuple(value.shape)}, not rank {entry.rank}")
    return BundleAdapter(manifest=entry, tensors=tensors, path=adapter_path)


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
    adapter: tuple[AdapterManifest, dict] | BundleAdapter | None = None,
) -> BundleManifest:
    """Write a bundle directory: manifest, safetensors weights and model card, and for a
    fine-tuned encoder its adapter: `(manifest entry, tensors)` to write (sha256 filled in
    here), or another bundle's `BundleAdapter`, whose files are copied byte for byte (same
    sha256; heads refit on that bundle's encoder need exactly that encoder)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    adapter_manifest = None
    if isinstance(adapter, BundleAdapter):
        adapter_manifest = _copy_adapter(adapter, path)
    else:
        _remove_adapter_files(path)  # no stale adapter beside new heads
    if isinstance(adapter, tuple):
        entry, adapter_tensors = adapter
        if entry.method == "lora":
            entry = entry.model_copy(update={"file": f"{LORA_DIR}/{PEFT_WEIGHTS_FILE}"})
            _write_peft_config(path / LORA_DIR, entry)
        adapter_path = path / entry.file
        # PEFT's loader expects the "format" metadata key it writes itself.
        save_file(
            {k: v.detach().contiguous().cpu() for k, v in adapter_tensors.items()},
            str(adapter_path),
            metadata={"format": "pt", "name": name, "version": version, "method": entry.method},
        )
        adapter_manifest = entry.model_copy(update={"sha256": file_sha256(adapter_path)})
    tasks = {
        task: TaskManifest(
            kind=head.spec.kind,
            labels=head.spec.labels,
            input_dim=head.spec.input_dim,
            hidden_dim=head.spec.hidden_dim,
            temperature=head.spec.temperature,
            thresholds=head.spec.thresholds,
            attention_dim=head.spec.attention_dim,
            metrics=head.spec.metrics,
            training_data=task_data.get(task, {}).get("train", []),
            dev_data=task_data.get(task, {}).get("dev", []),
        )
        for task, head in heads.items()
    }
    manifest = BundleManifest(
        name=name,
        version=version,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        description=description,
        encoder=encoder,
        tasks=tasks,
        training=training,
        mode="finetune" if adapter_manifest else "heads",
        adapter=adapter_manifest,
    )
    tensors: dict = {}
    for task, head in heads.items():
        tensors.update({k: v.cpu() for k, v in head.state_dict(prefix=f"{task}.").items()})
    save_file(tensors, str(path / WEIGHTS_FILE), metadata={"name": name, "version": version})
    (path / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    (path / MODEL_CARD_FILE).write_text(model_card, encoding="utf-8")
    return manifest


def _remove_adapter_files(path: Path, keep: frozenset[Path] = frozenset()) -> None:
    """Remove the adapter files a bundle directory may hold, except those in `keep`."""
    for stale in (path / ADAPTER_FILE, path / LORA_DIR / PEFT_CONFIG_FILE, path / LORA_DIR / PEFT_WEIGHTS_FILE):
        if stale.resolve() not in keep:
            stale.unlink(missing_ok=True)


def _copy_adapter(adapter: BundleAdapter, path: Path) -> AdapterManifest:
    """Copy a loaded bundle's adapter files into the bundle at `path` unchanged (nothing
    to copy when `path` is that bundle: heads refit in place) and check the sha256."""
    entry = adapter.manifest
    source, target = adapter.path.resolve(), (path / entry.file).resolve()
    # PEFT reads its config beside the LoRA weights.
    files = [(source, target)] + (
        [(source.parent / PEFT_CONFIG_FILE, target.parent / PEFT_CONFIG_FILE)] if entry.method == "lora" else []
    )
    _remove_adapter_files(path, keep=frozenset(source for source, _ in files))
    for origin, copy in files:
        if origin != copy:
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(origin, copy)
    if file_sha256(target) != entry.sha256:
        raise BundleError(f"{target}: the copied adapter does not match the sha256 of {adapter.path}")
    return entry


def _write_peft_config(folder: Path, entry: AdapterManifest) -> None:
    """`adapter_config.json` as PEFT writes it, naming the base encoder it applies to."""
    from nlp.adapters import lora_config
    from nlp.encoder import ENCODER_NAME

    if entry.rank is None or entry.alpha is None:
        raise BundleError("a lora adapter needs rank and alpha")
    config = lora_config(entry.rank, entry.alpha, entry.target_modules)
    config.base_model_name_or_path = ENCODER_NAME
    folder.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(str(folder))
