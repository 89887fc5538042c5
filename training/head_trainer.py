"""Train one task head on frozen encoder features: early stopping on dev, optional class
weighting, temperature calibration and (multi-label) per-label threshold tuning."""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm import trange

from nlp.heads import HeadKind, HeadNetwork, HeadSpec, TaskHead, batched_logits
from nlp.token_states import TokenStates
from nlp.vocabulary import COMPLAINT_LABELS
from training.datasets import LabelledSet
from training.metrics import (
    best_threshold,
    best_thresholds,
    multiclass_metrics,
    multilabel_metrics,
    precise_threshold,
    severity_figures,
)

log = logging.getLogger(__name__)


@dataclass
class HeadTrainingConfig:
    hidden_dim: int = 512
    dropout: float = 0.1
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 256
    max_epochs: int = 40
    patience: int = 5
    class_weighting: bool = True
    label_smoothing: float = 0.0
    multilabel_stop: str = "loss"  # or "macro_f1" (at thresholds tuned on dev)
    calibrate: bool = True
    tune_thresholds: bool = True
    min_precision: dict[str, float] = field(default_factory=dict)
    """task -> precision floor its per-label thresholds must reach on dev (else: best F1)."""
    token_attention: dict[str, int] = field(default_factory=dict)
    """task -> width of the label-wise attention over token vectors its head adds
    (`nlp.heads.LabelAttention`; multi-label heads). Tasks not named read pooled features only."""
    seed: int = 13

    def to_dict(self) -> dict:
        return asdict(self)


def seed_everything(seed: int) -> None:
    """Same seed, same head: torch, numpy and Python's RNG."""
    import random

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _class_weights(y: np.ndarray, num_labels: int) -> torch.Tensor:
    counts = np.bincount(y, minlength=num_labels).astype(np.float64)
    weights = len(y) / (num_labels * np.maximum(counts, 1.0))
    return torch.tensor(weights, dtype=torch.float32)


def task_loss(
    kind: HeadKind, y: np.ndarray, num_labels: int, *, class_weighting: bool, label_smoothing: float = 0.0
) -> nn.Module:
    """The training loss of a head: (optionally class-weighted, smoothed) cross-entropy for
    single-label tasks, binary cross-entropy per label for multi-label ones."""
    if kind == "multiclass":
        return nn.CrossEntropyLoss(
            weight=_class_weights(y, num_labels) if class_weighting else None, label_smoothing=label_smoothing
        )
    return nn.BCEWithLogitsLoss()


def task_targets(kind: HeadKind, y: np.ndarray) -> torch.Tensor:
    """Label array as the loss expects it: class indices, or 0/1 floats per label."""
    return torch.from_numpy(y.astype(np.int64) if kind == "multiclass" else y.astype(np.float32))


def fit_temperature(kind: HeadKind, logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Scalar temperature minimising dev negative log-likelihood (Guo et al., 2017)."""
    log_t = torch.zeros(1, requires_grad=True)
    loss_fn = nn.CrossEntropyLoss() if kind == "multiclass" else nn.BCEWithLogitsLoss()
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=100)

    def closure():
        optimizer.zero_grad()
        loss = loss_fn(logits / log_t.exp(), targets)
        loss.backward()
        return loss

    optimizer.step(closure)
    temperature = log_t.exp().item()
    if not math.isfinite(temperature):  # LBFGS diverged (a few dev rows, a barely trained head)
        log.warning("temperature fitting diverged; keeping the head uncalibrated (temperature 1)")
        return 1.0
    return float(np.clip(temperature, 0.05, 20.0))


def train_head(
    task: str,
    kind: HeadKind,
    labels: list[str],
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_dev: np.ndarray,
    y_dev: np.ndarray,
    config: HeadTrainingConfig,
    tokens_train: TokenStates | None = None,
    tokens_dev: TokenStates | None = None,
) -> TaskHead:
    """Train a head and return it calibrated, with its dev metrics in `spec.metrics`.
    A task in `config.token_attention` needs the token vectors of both sets
    (`tokens_train`, `tokens_dev`, one row per feature row)."""
    seed_everything(config.seed)
    attention_dim = config.token_attention.get(task)
    if attention_dim is not None:
        if kind != "multilabel":
            raise ValueError(f"{task}: label-wise attention is for multi-label heads")
        if tokens_train is None or tokens_dev is None:
            raise ValueError(f"{task}: its head attends over token vectors; encode them (training.features)")
    network = HeadNetwork(x_train.shape[1], config.hidden_dim, len(labels), config.dropout, attention_dim)
    loss_fn = task_loss(
        kind, y_train, len(labels), class_weighting=config.class_weighting, label_smoothing=config.label_smoothing
    )
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    xs, ys = torch.from_numpy(x_train.astype(np.float32)), task_targets(kind, y_train)
    xd, yd = torch.from_numpy(x_dev.astype(np.float32)), task_targets(kind, y_dev)
    generator = torch.Generator().manual_seed(config.seed)

    best_score, best_state, stale = -np.inf, copy.deepcopy(network.state_dict()), 0
    progress = trange(config.max_epochs, desc=f"training {task}", leave=False)
    for epoch in progress:
        network.train()
        for batch in torch.randperm(len(xs), generator=generator).split(config.batch_size):
            optimizer.zero_grad()
            vectors, mask = tokens_train.padded(batch.numpy()) if attention_dim is not None else (None, None)
            loss = loss_fn(network(xs[batch], vectors, mask), ys[batch])
            loss.backward()
            optimizer.step()
        network.eval()
        with torch.no_grad():
            dev_logits = batched_logits(network, xd, tokens_dev)
        # Multi-class stops on dev macro-F1 (the goal); multi-label on dev loss by default,
        # or on macro-F1 at thresholds tuned on dev (as the bundle will use them).
        if kind == "multiclass" or config.multilabel_stop == "macro_f1":
            score = dev_score(kind, labels, dev_logits, y_dev)
        else:
            score = -float(nn.functional.binary_cross_entropy_with_logits(dev_logits, yd))
        progress.set_postfix(epoch=epoch, dev=f"{score:.4f}")
        if score > best_score + 1e-4:
            best_score, best_state, stale = score, copy.deepcopy(network.state_dict()), 0
        else:
            stale += 1
            if stale >= config.patience:
                break
    network.load_state_dict(best_state)
    network.eval()
    with torch.no_grad():
        dev_logits = batched_logits(network, xd, tokens_dev)
    log.info("%s: best dev %.4f", task, best_score)
    return calibrated_head(
        task,
        kind,
        labels,
        network,
        config.hidden_dim,
        dev_logits,
        y_dev,
        calibrate=config.calibrate,
        tune_thresholds=config.tune_thresholds,
        min_precision=config.min_precision.get(task),
    )


def calibrated_head(
    task: str,
    kind: HeadKind,
    labels: list[str],
    network: HeadNetwork,
    hidden_dim: int,
    dev_logits: torch.Tensor,
    y_dev: np.ndarray,
    *,
    calibrate: bool = True,
    tune_thresholds: bool = True,
    min_precision: float | None = None,
) -> TaskHead:
    """Wrap a trained network as a TaskHead: temperature fitted on the dev logits, and for
    multi-label tasks a decision threshold per label that maximises its dev F1, or with
    `min_precision` the lowest one whose dev precision reaches it."""
    dev_logits = dev_logits.detach().float().cpu()
    spec = HeadSpec(
        task=task,
        kind=kind,
        labels=list(labels),
        input_dim=network.norm.normalized_shape[0],
        hidden_dim=hidden_dim,
        attention_dim=network.attention.project.out_features if network.attention is not None else None,
    )
    if calibrate:
        spec.temperature = fit_temperature(kind, dev_logits, task_targets(kind, y_dev))
    head = TaskHead(spec, network.cpu())
    if kind == "multilabel" and tune_thresholds:
        dev_probs = head.probabilities_from_logits(dev_logits).numpy()
        spec.thresholds = [
            best_threshold(y_dev[:, j], dev_probs[:, j])
            if min_precision is None
            else precise_threshold(y_dev[:, j], dev_probs[:, j], min_precision)
            for j in range(len(labels))
        ]
    log.info("%s: temperature %.3f", task, spec.temperature)
    return head


def dev_score(kind: HeadKind, labels: list[str], logits: torch.Tensor, y: np.ndarray) -> float:
    """Early-stopping figure: macro-F1 (multi-label: at per-label thresholds tuned on the
    same rows, as the bundle will use them)."""
    if kind == "multiclass":
        return multiclass_metrics(y, logits.softmax(-1).numpy(), labels)["macro_f1"]
    probabilities = logits.sigmoid().numpy()
    return multilabel_metrics(y, probabilities, best_thresholds(y, probabilities), labels)["macro_f1"]


def evaluate_head(head: TaskHead, features: np.ndarray, y: np.ndarray, tokens: TokenStates | None = None) -> dict:
    """Metrics of `head` on labelled features (thresholds as tuned for multi-label); `tokens`
    for a head that `reads_tokens`."""
    return _metrics(head, head.predict_proba(features, tokens), y)


def evaluate_report(head: TaskHead, features: np.ndarray, data: LabelledSet, tokens: TokenStates | None = None) -> dict:
    """`evaluate_head` on a labelled set, plus, for the complaint head on a set that
    carries X-CI's severity, how P(complaint) ranks it (training.metrics.severity_figures)."""
    probabilities = head.predict_proba(features, tokens)
    metrics = _metrics(head, probabilities, data.labels)
    if "severity" in data.aux and head.spec.labels == list(COMPLAINT_LABELS):
        metrics.update(severity_figures(probabilities[:, COMPLAINT_LABELS.index("yes")], data.aux["severity"]))
    return metrics


def _metrics(head: TaskHead, probabilities: np.ndarray, y: np.ndarray) -> dict:
    if head.spec.kind == "multiclass":
        return multiclass_metrics(y, probabilities, head.spec.labels)
    return multilabel_metrics(y, probabilities, head.spec.thresholds or [0.5] * len(head.spec.labels), head.spec.labels)
