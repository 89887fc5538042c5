"""Task heads: small networks that read the shared encoder features.

A head is either multi-class (softmax over labels: sentiment, urgency) or multi-label
(independent sigmoids: emotions). Temperature scaling and per-label decision thresholds
are part of the head, tuned on dev data at training time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from scipy.special import expit
from torch import nn

HeadKind = Literal["multiclass", "multilabel"]


class HeadNetwork(nn.Module):
    """LayerNorm -> Linear -> GELU -> Dropout -> Linear. LayerNorm first because the
    features join a unit-norm embedding with max-pooled activations of another scale."""

    def __init__(self, input_dim: int, hidden_dim: int, num_labels: int, dropout: float = 0.1):
        super().__init__()
        self.norm = nn.LayerNorm(input_dim)
        self.hidden = nn.Linear(input_dim, hidden_dim)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden_dim, num_labels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        hidden = nn.functional.gelu(self.hidden(self.norm(features)))
        return self.output(self.dropout(hidden))


@dataclass
class HeadSpec:
    """Everything about a head except its weights (stored in the bundle manifest)."""

    task: str
    kind: HeadKind
    labels: list[str]
    input_dim: int
    hidden_dim: int
    temperature: float = 1.0
    thresholds: list[float] | None = None  # multilabel only; default 0.5 per label
    metrics: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind == "multilabel" and self.thresholds is None:
            self.thresholds = [0.5] * len(self.labels)


class TaskHead:
    """A head network with its spec; `predict_proba` is the inference entry point."""

    def __init__(self, spec: HeadSpec, network: HeadNetwork | None = None) -> None:
        self.spec = spec
        self.network = network or HeadNetwork(spec.input_dim, spec.hidden_dim, len(spec.labels))
        self.network.eval()

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.network(features)

    def probabilities_from_logits(self, logits: torch.Tensor) -> torch.Tensor:
        scaled = logits / self.spec.temperature
        if self.spec.kind == "multiclass":
            return torch.softmax(scaled, dim=-1)
        return torch.sigmoid(scaled)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, shape (n, num_labels), for a batch of feature rows."""
        with torch.inference_mode():
            logits = self.logits(torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)))
            return self.probabilities_from_logits(logits).numpy()

    def state_dict(self, prefix: str) -> dict[str, torch.Tensor]:
        """Weights with `prefix` on every key (one safetensors file holds every head)."""
        return {f"{prefix}{key}": value.detach().contiguous() for key, value in self.network.state_dict().items()}


class HeadStack:
    """Several heads over the same features run as one network, for inference.

    Each head is LayerNorm -> Linear -> GELU -> Linear. The LayerNorm statistics are the
    same for every head (only its scale and shift differ, and those fold into the first
    Linear), the first layers become one matrix product and the output layers one
    block-diagonal product with each head's temperature folded in. That is five tensor
    operations instead of seven per head, which matters for a single message, where each
    operation's fixed cost dominates. The probabilities equal each head's own
    `predict_proba` up to float rounding (tested)."""

    def __init__(self, heads: list[TaskHead]) -> None:
        norms = [head.network.norm for head in heads]
        if len({(norm.normalized_shape, norm.eps) for norm in norms}) != 1:
            raise ValueError("stacked heads must read the same features with the same LayerNorm")
        self.heads = heads
        self._shape, self._eps = norms[0].normalized_shape, norms[0].eps
        hidden, hidden_bias, outputs = [], [], []
        with torch.no_grad():
            for head in heads:
                network = head.network
                weight = network.hidden.weight * network.norm.weight  # scale folded into the columns
                hidden.append(weight.T)
                hidden_bias.append(network.hidden.bias + network.hidden.weight @ network.norm.bias)
                outputs.append(
                    (network.output.weight.T / head.spec.temperature, network.output.bias / head.spec.temperature)
                )
            self._hidden = torch.cat(hidden, dim=1).contiguous()
            self._hidden_bias = torch.cat(hidden_bias)
            self._output = torch.block_diag(*(weight for weight, _ in outputs)).contiguous()
            self._output_bias = torch.cat([bias for _, bias in outputs])
        widths = [len(head.spec.labels) for head in heads]
        self._splits = np.cumsum(widths)[:-1]

    def predict_proba(self, features: np.ndarray) -> list[np.ndarray]:
        """Calibrated probabilities of every head, in order, each (n, num_labels)."""
        with torch.inference_mode():
            normed = nn.functional.layer_norm(
                torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)), self._shape, eps=self._eps
            )
            hidden = nn.functional.gelu(torch.addmm(self._hidden_bias, normed, self._hidden))
            logits = torch.addmm(self._output_bias, hidden, self._output).numpy()
        return [
            _probabilities(head.spec.kind, block)
            for head, block in zip(self.heads, np.split(logits, self._splits, axis=1))
        ]


def _probabilities(kind: HeadKind, logits: np.ndarray) -> np.ndarray:
    if kind == "multiclass":
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)
    return expit(logits)  # 1 / (1 + e^-x) without overflow for large negative logits
