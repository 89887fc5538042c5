"""Encoder adapters of fine-tuned bundles, applied to the packaged base encoder at load.

A LoRA adapter is merged into the base weights (W + B·A·alpha/rank), so the encoder
afterwards is a plain BERT of the same size and speed: `Encoder.encode`, the ONNX export
and the topic step see no difference. The merge is peft's `merge_and_unload` arithmetic
done here, so serving a LoRA bundle needs no peft (a `train` extra); the adapter's
tensors keep peft's names and layout. A full fine-tune's weights replace the base ones."""

from __future__ import annotations

import torch
from torch import nn

from nlp.bundle import BundleAdapter, BundleError
from nlp.extras import require

PEFT_PREFIX = "base_model.model."
"""Where peft's state dict puts the wrapped model's modules (`get_peft_model_state_dict`)."""


def lora_config(rank: int, alpha: float, target_modules: list[str], dropout: float = 0.0):
    """The peft LoraConfig for a BERT encoder (training and saving share it)."""
    peft = require("peft", "train", "LoRA fine-tuning")
    return peft.LoraConfig(
        r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules), bias="none"
    )


def apply_adapter(model: nn.Module, adapter: BundleAdapter) -> nn.Module:
    """Return the transformer `model` with `adapter` applied (merged: no extra layers).

    Raises BundleError when the adapter does not fit the model."""
    entry = adapter.manifest
    if entry.method == "full":
        try:
            model.load_state_dict(adapter.tensors, strict=True)
        except RuntimeError as exc:
            raise BundleError(f"{adapter.path}: the encoder weights do not fit the base encoder: {exc}") from exc
        return model
    if entry.method == "partial":
        return _replace_layers(model, adapter)
    return _merge_lora(model, adapter)


def is_lora_target(name: str, target_modules: list[str]) -> bool:
    """peft's rule for a list of target modules: the module's name is one of them, or ends
    with '.' and one of them ('output.dense' matches 'encoder.layer.0.output.dense')."""
    return any(name == target or name.endswith(f".{target}") for target in target_modules)


def _merge_lora(model: nn.Module, adapter: BundleAdapter) -> nn.Module:
    """Merge a LoRA adapter into the targeted linear layers, in place: W += (B @ A) * alpha / rank,
    as peft's `merge_and_unload` does. Every targeted layer needs its A and B and nothing else
    may be there, so an adapter for another encoder or other targets is refused."""
    entry = adapter.manifest
    if entry.rank is None or entry.alpha is None:
        raise BundleError(f"{adapter.path}: a lora adapter needs rank and alpha")
    layers = {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and is_lora_target(name, entry.target_modules)
    }
    if not layers:
        raise BundleError(
            f"{adapter.path}: the adapter does not fit the base encoder "
            f"(no linear layer matches its target modules {entry.target_modules})"
        )
    expected = {f"{PEFT_PREFIX}{name}.lora_{part}.weight" for name in layers for part in "AB"}
    missing = sorted(expected - set(adapter.tensors))
    unexpected = sorted(set(adapter.tensors) - expected)
    if missing or unexpected:
        problem = f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}"
        raise BundleError(
            f"{adapter.path}: the adapter does not fit the base encoder ({problem}, "
            f"{len(missing)} missing and {len(unexpected)} unexpected tensors)"
        )
    scale = entry.alpha / entry.rank
    with torch.no_grad():
        for name, layer in layers.items():
            down = adapter.tensors[f"{PEFT_PREFIX}{name}.lora_A.weight"]
            up = adapter.tensors[f"{PEFT_PREFIX}{name}.lora_B.weight"]
            if down.shape != (entry.rank, layer.in_features) or up.shape != (layer.out_features, entry.rank):
                raise BundleError(
                    f"{adapter.path}: the adapter does not fit the base encoder ({name}: A "
                    f"{tuple(down.shape)} and B {tuple(up.shape)} for a {layer.in_features}->"
                    f"{layer.out_features} layer)"
                )
            weight = layer.weight
            weight += (up.to(weight) @ down.to(weight)) * scale
    return model


def _replace_layers(model: nn.Module, adapter: BundleAdapter) -> nn.Module:
    """A partial fine-tune: the trained top layers' weights replace the base ones; every
    tensor of those layers must be there and nothing else."""
    prefixes = tuple(f"encoder.layer.{index}." for index in adapter.manifest.layers)
    expected = {key for key in model.state_dict() if key.startswith(prefixes)}
    given = set(adapter.tensors)
    if not prefixes or given != expected:
        extra, missing = sorted(given - expected), sorted(expected - given)
        problem = f"unexpected {extra[0]}" if extra else f"missing {missing[0]}" if missing else "no layers listed"
        raise BundleError(f"{adapter.path}: the layer weights do not fit the base encoder ({problem})")
    try:
        model.load_state_dict(adapter.tensors, strict=False)
    except RuntimeError as exc:  # shapes that differ from the base encoder's layers
        raise BundleError(f"{adapter.path}: the layer weights do not fit the base encoder: {exc}") from exc
    return model
