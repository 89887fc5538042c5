"""Resumable fine-tuning checkpoints, without pickle.

A checkpoint is a folder:
- `trainable.safetensors`: the weights being trained (LoRA adapter or encoder, and heads);
- `best.safetensors`: the best weights so far by the dev check (early stopping);
- `optimizer.safetensors`: AdamW's per-parameter tensors (moments, step counts);
- `state.json`: step, early-stopping state, the optimizer's scalar settings, the learning
  rate schedule, the RNG states (torch's as a tensor in `rng.safetensors`), and a
  fingerprint of the configuration, so a checkpoint is never resumed under another one.

Each file is written to a temporary name and renamed, and `state.json` last, so an
interrupted save leaves the previous checkpoint usable."""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

STATE_FILE = "state.json"
TRAINABLE_FILE = "trainable.safetensors"
BEST_FILE = "best.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
RNG_FILE = "rng.safetensors"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, damaged, or was made under another configuration."""


@dataclass
class TrainingState:
    """The scalars of a fine-tuning run at a step boundary."""

    step: int = 0
    best_score: float = float("-inf")
    best_step: int = 0
    stale_checks: int = 0
    stopped_early: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp))
    tmp.replace(path)


def _optimizer_split(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """AdamW's state dict as tensors (safetensors) plus JSON-able settings."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _optimizer_join(tensors: dict[str, torch.Tensor], settings: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    for index, entry in settings["scalars"].items():
        state.setdefault(int(index), {}).update(entry)
    return {"state": state, "param_groups": settings["param_groups"]}


def save_checkpoint(
    folder: Path,
    *,
    trainable: dict[str, torch.Tensor],
    best: dict[str, torch.Tensor] | None,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    state: TrainingState,
    fingerprint: str,
) -> None:
    """Write everything needed to continue exactly where the run is now."""
    folder.mkdir(parents=True, exist_ok=True)
    _atomic_save(trainable, folder / TRAINABLE_FILE)
    if best is not None:
        _atomic_save(best, folder / BEST_FILE)
    optimizer_tensors, optimizer_settings = _optimizer_split(optimizer)
    _atomic_save(optimizer_tensors, folder / OPTIMIZER_FILE)
    _atomic_save({"torch": torch.get_rng_state()}, folder / RNG_FILE)
    python_state = random.getstate()
    document = {
        "fingerprint": fingerprint,
        "training": asdict(state),
        "optimizer": optimizer_settings,
        "scheduler": scheduler.state_dict(),
        "rng": {
            "python": [python_state[0], list(python_state[1]), python_state[2]],
            "numpy": np.random.get_state(legacy=False),
        },
    }
    tmp = folder / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(document, default=_json_default), encoding="utf-8")
    tmp.replace(folder / STATE_FILE)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.integer):
        return int(value)
    raise TypeError(f"cannot save {type(value).__name__} in a checkpoint")


def has_checkpoint(folder: Path) -> bool:
    return (folder / STATE_FILE).is_file()


@dataclass
class LoadedCheckpoint:
    trainable: dict[str, torch.Tensor]
    best: dict[str, torch.Tensor] | None
    state: TrainingState
    document: dict[str, Any]
    optimizer_tensors: dict[str, torch.Tensor]


def load_checkpoint(folder: Path, fingerprint: str) -> LoadedCheckpoint:
    """Read a checkpoint made under the same configuration (CheckpointError otherwise)."""
    try:
        document = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
        trainable = load_file(str(folder / TRAINABLE_FILE))
        optimizer_tensors = load_file(str(folder / OPTIMIZER_FILE))
        rng = load_file(str(folder / RNG_FILE))
        best = load_file(str(folder / BEST_FILE)) if (folder / BEST_FILE).is_file() else None
    except (OSError, ValueError, SafetensorError) as exc:  # a JSONDecodeError is a ValueError
        raise CheckpointError(f"checkpoint {folder} cannot be read: {exc}") from exc
    if document.get("fingerprint") != fingerprint:
        raise CheckpointError(
            f"checkpoint {folder} was made with another configuration or data; delete it or train without --resume"
        )
    torch.set_rng_state(rng["torch"])
    python = document["rng"]["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    numpy_state = document["rng"]["numpy"]
    numpy_state["state"] = {
        "key": np.asarray(numpy_state["state"]["key"], dtype=np.uint32),
        "pos": int(numpy_state["state"]["pos"]),
    }
    np.random.set_state(numpy_state)
    return LoadedCheckpoint(
        trainable=trainable,
        best=best,
        state=TrainingState(**document["training"]),
        document=document,
        optimizer_tensors=optimizer_tensors,
    )


def restore_optimizer(optimizer: torch.optim.Optimizer, checkpoint: LoadedCheckpoint) -> None:
    optimizer.load_state_dict(_optimizer_join(checkpoint.optimizer_tensors, checkpoint.document["optimizer"]))
