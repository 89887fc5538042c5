"""Task heads: small networks that read the shared encoder features.

A head is either multi-class (softmax over labels: sentiment, urgency) or multi-label
(independent sigmoids: emotions). Temperature scaling and per-label decision thresholds
are part of the head, tuned on dev data at training time.

Every head reads the pooled features of the one encoder pass. A multi-label head may also
attend over that pass's token vectors, one attention query per label (`LabelAttention`):
the emotions head does, because a label such as confusion or disappointment often rests
on one or two words that mean and max pooling blur (+0.02 GoEmotions-28 dev macro-F1,
docs/models.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from scipy.special import expit
from torch import nn

from nlp.token_states import TokenStates

HeadKind = Literal["multiclass", "multilabel"]
ATTENTION_CHUNK = 64
"""Rows whose token vectors are padded together outside training: a long transcript's
messages (or a labelled set), padded to its longest text at once, would hold hundreds of MB."""


class LabelAttention(nn.Module):
    """Label-wise attention over a text's token vectors: each label has its own query,
    pools the tokens it weighs most, and scores that vector (LayerNorm -> Linear -> GELU,
    then a weight vector per label). Its logits add to the pooled-feature head's."""

    def __init__(self, token_dim: int, num_labels: int, attention_dim: int) -> None:
        super().__init__()
        self.query = nn.Linear(token_dim, num_labels)
        self.norm = nn.LayerNorm(token_dim)
        self.project = nn.Linear(token_dim, attention_dim)
        self.label_weight = nn.Parameter(torch.zeros(num_labels, attention_dim))
        self.label_bias = nn.Parameter(torch.zeros(num_labels))

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(batch, longest, token_dim) vectors and their (batch, longest) mask -> (batch, labels)."""
        weights = self.query(tokens).masked_fill(~mask.unsqueeze(-1), -1e4).softmax(dim=1)  # (b, t, labels)
        pooled = torch.einsum("btl,btd->bld", weights, tokens)
        hidden = nn.functional.gelu(self.project(self.norm(pooled)))
        return (hidden * self.label_weight).sum(dim=-1) + self.label_bias


class HeadNetwork(nn.Module):
    """LayerNorm -> Linear -> GELU -> Dropout -> Linear. LayerNorm first because the
    features join a unit-norm embedding with max-pooled activations of another scale.
    With `attention_dim`, a `LabelAttention` over the token vectors adds to its logits."""

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        num_labels: int,
        dropout: float = 0.1,
        attention_dim: int | None = None,
    ):
        super().__init__()
        self.norm = nn.LayerNorm(input_dim)
        self.hidden = nn.Linear(input_dim, hidden_dim)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden_dim, num_labels)
        # The features are mean and max pooling of the token vectors: half their width each.
        self.attention = LabelAttention(input_dim // 2, num_labels, attention_dim) if attention_dim else None

    def forward(
        self, features: torch.Tensor, tokens: torch.Tensor | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits of a batch: pooled `features`, and for a head with attention the batch's
        padded `tokens` and their `mask` (training pads each batch; see `batched_logits`)."""
        logits = self.pooled_logits(features)
        if self.attention is not None:
            if tokens is None or mask is None:
                raise ValueError("this head attends over token vectors: pass them with the features")
            logits = logits + self.attention(tokens, mask)
        return logits

    def pooled_logits(self, features: torch.Tensor) -> torch.Tensor:
        """The MLP's part of the logits: the pooled features alone."""
        hidden = nn.functional.gelu(self.hidden(self.norm(features)))
        return self.output(self.dropout(hidden))


def attention_logits(attention: LabelAttention, tokens: TokenStates) -> torch.Tensor:
    """`attention`'s logits for every row of `tokens`, padded ATTENTION_CHUNK rows at a time."""
    parts = []
    for start in range(0, len(tokens), ATTENTION_CHUNK):
        vectors, mask = tokens.padded(np.arange(start, min(start + ATTENTION_CHUNK, len(tokens))))
        parts.append(attention(vectors, mask))
    return torch.cat(parts) if parts else torch.zeros((0, attention.label_bias.shape[0]))


def batched_logits(
    network: HeadNetwork, features: np.ndarray | torch.Tensor, tokens: TokenStates | None = None
) -> torch.Tensor:
    """`network`'s logits for every feature row (and its token vectors, for a network
    with attention: padded a chunk at a time, never the whole set at once). Raises
    ValueError when it needs token vectors and `tokens` has not one row per feature row."""
    rows = features if isinstance(features, torch.Tensor) else torch.from_numpy(np.asarray(features, np.float32))
    if network.attention is None:
        return network(rows)
    if tokens is None or len(tokens) != len(rows):
        raise ValueError("this head attends over token vectors: pass one row of them per feature row")
    return network.pooled_logits(rows) + attention_logits(network.attention, tokens)


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
    attention_dim: int | None = None
    """Width of the label-wise attention over token vectors (None: pooled features only)."""

    def __post_init__(self) -> None:
        if self.kind == "multilabel" and self.thresholds is None:
            self.thresholds = [0.5] * len(self.labels)


class TaskHead:
    """A head network with its spec; `predict_proba` is the inference entry point."""

    def __init__(self, spec: HeadSpec, network: HeadNetwork | None = None) -> None:
        self.spec = spec
        self.network = network or HeadNetwork(
            spec.input_dim, spec.hidden_dim, len(spec.labels), attention_dim=spec.attention_dim
        )
        self.network.eval()

    @property
    def reads_tokens(self) -> bool:
        """Whether the head needs the token vectors besides the pooled features."""
        return self.network.attention is not None

    def logits(
        self, features: torch.Tensor, tokens: torch.Tensor | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.network(features, tokens, mask)

    def probabilities_from_logits(self, logits: torch.Tensor) -> torch.Tensor:
        scaled = logits / self.spec.temperature
        if self.spec.kind == "multiclass":
            return torch.softmax(scaled, dim=-1)
        return torch.sigmoid(scaled)

    def predict_proba(self, features: np.ndarray, tokens: TokenStates | None = None) -> np.ndarray:
        """Calibrated probabilities, shape (n, num_labels), for a batch of feature rows (and
        their token vectors, for a head that `reads_tokens`)."""
        with torch.inference_mode():
            logits = self.network_logits(features, tokens)
            return self.probabilities_from_logits(logits).numpy()

    def network_logits(self, features: np.ndarray | torch.Tensor, tokens: TokenStates | None = None) -> torch.Tensor:
        """Uncalibrated logits of every row (see `batched_logits`)."""
        return batched_logits(self.network, features, tokens)

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
        self._starts = np.concatenate([[0], self._splits]).astype(int)

    @property
    def reads_tokens(self) -> bool:
        """Whether any head needs the token vectors besides the pooled features."""
        return any(head.reads_tokens for head in self.heads)

    def predict_proba(self, features: np.ndarray, tokens: TokenStates | None = None) -> list[np.ndarray]:
        """Calibrated probabilities of every head, in order, each (n, num_labels); `tokens`
        (one row per feature row) when a head `reads_tokens`."""
        with torch.inference_mode():
            normed = nn.functional.layer_norm(
                torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)), self._shape, eps=self._eps
            )
            hidden = nn.functional.gelu(torch.addmm(self._hidden_bias, normed, self._hidden))
            logits = torch.addmm(self._output_bias, hidden, self._output)
            if self.reads_tokens:
                if tokens is None or len(tokens) != len(features):
                    raise ValueError("a head attends over token vectors: pass one row of them per feature row")
                for head, start in zip(self.heads, self._starts):
                    if head.network.attention is not None:
                        columns = slice(start, start + len(head.spec.labels))
                        logits[:, columns] += attention_logits(head.network.attention, tokens) / head.spec.temperature
            blocks = np.split(logits.numpy(), self._splits, axis=1)
        return [_probabilities(head.spec.kind, block) for head, block in zip(self.heads, blocks)]


def _probabilities(kind: HeadKind, logits: np.ndarray) -> np.ndarray:
    if kind == "multiclass":
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)
    return expit(logits)  # 1 / (1 + e^-x) without overflow for large negative logits
