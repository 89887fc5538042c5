"""Merging a LoRA adapter without peft: the weights equal peft's own `merge_and_unload`
(so serving a LoRA bundle needs no `train` extra), and an adapter that does not fit the
encoder is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nlp.adapters import PEFT_PREFIX, apply_adapter, is_lora_target, lora_config
from nlp.bundle import AdapterManifest, BundleAdapter, BundleError
from nlp.encoder import Encoder

TARGETS = ["query", "key", "value", "output.dense", "intermediate.dense"]


def lora_entry(rank: int = 4, targets: list[str] = TARGETS) -> AdapterManifest:
    return AdapterManifest(method="lora", sha256="0" * 64, rank=rank, alpha=8.0, target_modules=targets)


def test_merge_equals_peft_merge_and_unload():
    peft = pytest.importorskip("peft")
    torch.manual_seed(0)
    wrapped = peft.get_peft_model(Encoder(max_seq_length=32).transformer, lora_config(4, 8.0, TARGETS))
    for name, parameter in wrapped.named_parameters():
        if "lora_B" in name:  # peft starts B at zero: a no-op adapter would prove nothing
            torch.nn.init.normal_(parameter, std=0.02)
    tensors = {k: v.detach().clone() for k, v in peft.get_peft_model_state_dict(wrapped).items()}
    reference = wrapped.merge_and_unload().state_dict()
    merged = apply_adapter(
        Encoder(max_seq_length=32).transformer, BundleAdapter(lora_entry(), tensors, Path("adapter_model.safetensors"))
    ).state_dict()
    assert merged.keys() == reference.keys()
    assert all(torch.equal(merged[key], reference[key]) for key in reference)


def test_target_matching_follows_peft():
    assert is_lora_target("encoder.layer.0.attention.output.dense", ["output.dense"])
    assert is_lora_target("encoder.layer.0.attention.self.query", ["query"])
    assert not is_lora_target("pooler.dense", ["output.dense"])
    assert not is_lora_target("encoder.layer.0.attention.self.query_x", ["query"])


def test_an_adapter_for_other_layers_is_refused():
    model = Encoder(max_seq_length=32).transformer
    name = "encoder.layer.0.attention.self.query"
    tensors = {
        f"{PEFT_PREFIX}{name}.lora_A.weight": torch.zeros(4, 384),
        f"{PEFT_PREFIX}{name}.lora_B.weight": torch.zeros(384, 4),
    }
    with pytest.raises(BundleError, match=r"does not fit the base encoder \(missing .*key"):
        apply_adapter(model, BundleAdapter(lora_entry(targets=["query", "key"]), tensors, Path("a")))
    with pytest.raises(BundleError, match="no linear layer matches"):
        apply_adapter(model, BundleAdapter(lora_entry(targets=["nothing"]), tensors, Path("a")))
    wrong = {key: torch.zeros(8, 384) if "lora_A" in key else torch.zeros(384, 8) for key in tensors}
    with pytest.raises(BundleError, match=r"does not fit the base encoder \(encoder.layer.0"):
        apply_adapter(model, BundleAdapter(lora_entry(targets=["layer.0.attention.self.query"]), wrong, Path("a")))
