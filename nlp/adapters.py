"""Encoder adapters of fine-tuned bundles, applied to the packaged base encoder at load.

A LoRA adapter is merged into the base weights (W + B·A·alpha/rank) with peft, so the
encoder afterwards is a plain BERT of the same size and speed: `Encoder.encode`, the ONNX
export and the topic step see no difference. A full fine-tune's weights replace the base
ones."""

from __future__ import annotations

from typing import Any

from torch import nn

from nlp.bundle import BundleAdapter, BundleError


def lora_config(rank: int | None, alpha: float | None, target_modules: list[str], dropout: float = 0.0) -> Any:
    """The peft LoraConfig for a BERT encoder (training and loading share it)."""
    from peft import LoraConfig

    if rank is None or alpha is None:
        raise BundleError("a LoRA adapter needs its rank and alpha in the manifest")
    return LoraConfig(
        r=rank, lora_alpha=alpha,  # type: ignore[arg-type]  # peft annotates lora_alpha as int; a float works
        lora_dropout=dropout, target_modules=list(target_modules),
                      bias="none")


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

    from peft import get_peft_model, set_peft_model_state_dict

    try:
        peft_model = get_peft_model(model, lora_config(entry.rank, entry.alpha, entry.target_modules))
    except ValueError as exc:  # e.g. target modules that the model does not have
        raise BundleError(f"{adapter.path}: the adapter does not fit the base encoder: {exc}") from exc
    try:
        result = set_peft_model_state_dict(peft_model, adapter.tensors)
    except RuntimeError as exc:  # tensor shapes that differ from the model's layers
        raise BundleError(f"{adapter.path}: the adapter does not fit the base encoder: {exc}") from exc
    loaded: Any = result  # torch's named tuple of missing and unexpected keys (peft leaves it untyped)
    missing = [key for key in loaded.missing_keys if "lora_" in key]
    unexpected = list(loaded.unexpected_keys)
    if missing or unexpected:
        problem = f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}"
        raise BundleError(f"{adapter.path}: the adapter does not fit the base encoder ({problem}, "
                          f"{len(missing)} missing and {len(unexpected)} unexpected tensors)")
    return peft_model.merge_and_unload()


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
