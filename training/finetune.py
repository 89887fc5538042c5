"""Fine-tune the encoder together with the task heads (mode `finetune`).

One encoder, one head per task. Each epoch every task's training rows are shuffled into
batches, and the batches of all tasks are shuffled together, so consecutive steps
interleave tasks in proportion to their data. The encoder learns through LoRA adapters
(peft) or, with method `full`, every weight. Dev checks drive early stopping; at the end
the best weights are restored, a LoRA adapter is merged into the encoder, and each head is
calibrated on its full dev set (temperature, and per-label thresholds when multi-label).

Runs are resumable (training.checkpoint) and deterministic for a seed: the batch order is
a function of (seed, epoch), and the RNG states are saved with each checkpoint."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from nlp.adapters import lora_config
from nlp.bundle import AdapterManifest, ModelBundle, file_sha256, load_bundle
from nlp.encoder import Encoder
from nlp.extras import require
from nlp.heads import HeadNetwork, TaskHead
from nlp.text import normalize_text
from training.checkpoint import (
    TrainingState,
    has_checkpoint,
    load_checkpoint,
    restore_optimizer,
    save_checkpoint,
)
from training.config import TrainConfig
from training.features import FeatureCache
from training.head_trainer import calibrated_head, dev_score, seed_everything, task_loss, task_targets
from training.recipes import TaskData

log = logging.getLogger(__name__)
WEIGHT_DECAY = 0.01
MAX_GRAD_NORM = 1.0
PLACEHOLDER_SHA = "0" * 64  # replaced by the file's digest when the bundle is written


@dataclass
class FinetuneResult:
    """A finished fine-tune: the merged encoder (eval mode), calibrated heads, the adapter
    to store in the bundle, and how the run went."""

    encoder: Encoder
    heads: dict[str, TaskHead]
    adapter: tuple[AdapterManifest, dict[str, torch.Tensor]]
    state: TrainingState
    total_steps: int
    seconds: float
    resumed_from_step: int | None


class MultiTaskModel(nn.Module):
    """The encoder's transformer stack plus a head per task (one module, so one optimizer
    and one state dict cover every trained weight)."""

    def __init__(self, encoder: Encoder, heads: dict[str, HeadNetwork]) -> None:
        super().__init__()
        self.encoder_module = encoder.module
        self.heads = nn.ModuleDict(heads)
        self._encoder = encoder

    def forward(self, task: str, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The task head's logits and the sentence embeddings (the embedding anchor reads them)."""
        sentence, pooled, _ = self._encoder.forward(texts)
        return self.heads[task](torch.cat([sentence, pooled], dim=-1)), sentence

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """The weights that change while training (adapter or encoder, and heads)."""
        names = {name for name, p in self.named_parameters() if p.requires_grad}
        return {k: v.detach().clone() for k, v in self.state_dict().items() if k in names or k.startswith("heads.")}


def fingerprint(config: TrainConfig, recipe: dict[str, TaskData]) -> str:
    """What a checkpoint must match to be resumed: the settings that change training and
    the training data itself."""
    settings = config.model_dump(
        mode="json", exclude={"output", "name", "version", "checkpoint_dir", "cache_dir", "device", "skip_invalid"}
    )
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    if config.base_bundle is not None:  # what the run starts from, not only where it lay
        for weights in sorted(config.base_bundle.glob("*.safetensors")):
            digest.update(f"{weights.name}|{file_sha256(weights)}".encode())
    for task in sorted(recipe):
        data = recipe[task]
        for part in (data.train, data.dev):
            digest.update(f"{task}|{part.name}|{len(part)}".encode())
            digest.update("\x00".join(part.texts).encode("utf-8", "surrogatepass"))
            digest.update(np.ascontiguousarray(part.labels).tobytes())
    return digest.hexdigest()


def epoch_rows(
    recipe: dict[str, TaskData], rows_per_epoch: dict[str, int], seed: int, epoch: int
) -> dict[str, np.ndarray]:
    """Each task's training rows for one epoch, shuffled: every row, or a fresh sample of
    `rows_per_epoch[task]` of them (the task-sampling schedule: large sets are drawn down
    so one epoch fits a time budget, and over epochs every row is seen)."""
    rng = np.random.default_rng([seed, epoch])
    chosen = {}
    for task in sorted(recipe):
        order = rng.permutation(len(recipe[task].train))
        cap = rows_per_epoch.get(task)
        chosen[task] = order[:cap] if cap else order
    return chosen


def epoch_batches(
    recipe: dict[str, TaskData],
    batch_size: int,
    seed: int,
    epoch: int,
    *,
    rows_per_epoch: dict[str, int] | None = None,
    bucket_batches: int = 1,
) -> list[tuple[str, np.ndarray]]:
    """The epoch's batches, as (task, row indices), interleaved across tasks; a pure
    function of (seed, epoch), so a resumed run replays the same order.

    With `bucket_batches` > 1 the rows are length-bucketed: each run of that many batches'
    worth of shuffled rows is sorted by text length before it is cut, so a batch pads
    little (dynamic padding pads to the batch's longest), while batch order stays random."""
    rng = np.random.default_rng([seed, epoch, 1])
    batches = []
    for task, order in epoch_rows(recipe, rows_per_epoch or {}, seed, epoch).items():
        lengths = np.array([len(recipe[task].train.texts[i]) for i in order])
        span = batch_size * max(1, bucket_batches)
        for start in range(0, len(order), span):
            window = order[start : start + span]
            if bucket_batches > 1:
                window = window[np.argsort(lengths[start : start + span], kind="stable")]
            batches += [(task, window[i : i + batch_size]) for i in range(0, len(window), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def steps_per_epoch(recipe: dict[str, TaskData], batch_size: int, rows_per_epoch: dict[str, int] | None = None) -> int:
    """Batches in one epoch (the task-sampling caps applied)."""
    caps = rows_per_epoch or {}
    return sum(
        math.ceil(min(len(data.train), caps.get(task) or len(data.train)) / batch_size) for task, data in recipe.items()
    )


def anchor_targets(
    recipe: dict[str, TaskData], texts: dict[str, list[str]], config: TrainConfig, device: str
) -> dict[str, torch.Tensor]:
    """The base encoder's sentence embeddings of every training text, by task (row order),
    for the embedding anchor: encoded once (cached on disk under `cache_dir`, so a resumed
    run does not encode again) instead of a second forward pass at every step."""
    base = Encoder(config.encoder_path, max_seq_length=config.max_length, batch_size=128, device=device)
    cache = FeatureCache(config.cache_dir, base)
    return {
        task: torch.from_numpy(np.ascontiguousarray(cache.features(texts[task], label=f"anchor {task}")[:, : base.dim]))
        for task in sorted(recipe)
    }


def anchor_loss(sentence: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """How far the sentence embeddings moved from the base encoder's: mean (1 - cosine).

    Topics are clustered on these embeddings and the heads read them too. Penalising the
    move keeps topic quality (BANKING77 NMI, bench/topics.py) while the encoder learns
    sentiment and emotions, with still one encoder pass per message when serving."""
    return (1.0 - nn.functional.cosine_similarity(sentence, target, dim=-1)).mean()


def freeze_lower_layers(transformer: nn.Module, trainable_layers: int) -> list[str]:
    """Partial unfreezing: only the top `trainable_layers` transformer layers learn; the
    embeddings and the layers below stay as in the base encoder. Returns the prefixes of
    the trained layers' weights (what the bundle stores)."""
    layers = transformer.encoder.layer
    if not 0 < trainable_layers <= len(layers):
        raise ValueError(f"trainable_layers must be between 1 and {len(layers)}, not {trainable_layers}")
    first = len(layers) - trainable_layers
    for parameter in transformer.parameters():
        parameter.requires_grad = False
    prefixes = []
    for index in range(first, len(layers)):
        for parameter in layers[index].parameters():
            parameter.requires_grad = True
        prefixes.append(f"encoder.layer.{index}.")
    return prefixes


def start_heads_from(base: ModelBundle, heads: dict[str, HeadNetwork], recipe: dict[str, TaskData]) -> None:
    """Continued fine-tuning: each task head starts as the base bundle's head of that task
    when it reads the same labels with the same shape, so the first steps refine the heads
    instead of sending a fresh head's large gradients into the encoder (logged)."""
    started = []
    for task, network in heads.items():
        head = base.heads.get(task)
        if head is None or head.spec.labels != list(recipe[task].train.label_names):
            continue
        shapes = {k: v.shape for k, v in network.state_dict().items()}
        if shapes != {k: v.shape for k, v in head.network.state_dict().items()}:
            continue
        network.load_state_dict(head.network.state_dict())
        started.append(task)
    log.info("heads started from %s: %s", base.path, started or "none")


def _linear_schedule(total: int, warmup: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def _dev_slice(data: TaskData, limit: int | None) -> tuple[list[str], np.ndarray]:
    dev = data.dev
    if limit is None or len(dev) <= limit:
        return dev.texts, dev.labels
    rows = np.linspace(0, len(dev) - 1, limit).astype(np.int64)  # spread over the set, no RNG
    return [dev.texts[i] for i in rows], dev.labels[rows]


def _head_logits(encoder: Encoder, head: nn.Module, texts: list[str]) -> torch.Tensor:
    features = torch.from_numpy(encoder.encode(texts).features)
    with torch.no_grad():  # not inference_mode: the logits feed temperature fitting (autograd)
        return head(features.to(next(head.parameters()).device)).float().cpu()


def finetune(
    recipe: dict[str, TaskData],
    config: TrainConfig,
    *,
    resume: bool = False,
    interrupt_after: int | None = None,
    show_progress: bool = True,
    on_step: Callable[[int, int], None] | None = None,
) -> FinetuneResult | None:
    """Fine-tune per `config` (mode `finetune`). With `resume`, continue from the
    checkpoint in `config.resolved_checkpoint_dir()` if there is one. `on_step(step, rows)`
    is called after each optimizer step with the rows it read (benchmarks time it).

    `interrupt_after` stops after that many steps (counted from the start of training)
    with a checkpoint written, and returns None, as a crash after a checkpoint would."""
    started = time.perf_counter()
    ft = config.finetune
    device = config.resolved_device()
    if config.threads:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    base = load_bundle(config.base_bundle) if config.base_bundle is not None else None
    encoder = Encoder(
        config.encoder_path,
        max_seq_length=config.max_length,
        batch_size=max(config.batch_size, 32),
        device=device,
        adapter=base.adapter if base is not None else None,
    )
    if ft.method == "lora":
        peft = require("peft", "train", "LoRA fine-tuning")
        encoder.set_transformer(
            peft.get_peft_model(encoder.transformer, lora_config(ft.rank, ft.alpha, ft.target_modules, ft.dropout))
        )
    elif ft.method == "partial":
        freeze_lower_layers(encoder.transformer, ft.trainable_layers)
    heads = {
        task: HeadNetwork(encoder.feature_dim, config.hidden_dim, len(data.train.label_names), config.dropout)
        for task, data in sorted(recipe.items())
    }
    if base is not None:
        start_heads_from(base, heads, recipe)
    model = MultiTaskModel(encoder, heads).to(device)
    losses = {
        task: task_loss(
            data.train.kind,
            data.train.labels,
            len(data.train.label_names),
            class_weighting=config.class_weighting,
            label_smoothing=config.label_smoothing,
        ).to(device)
        for task, data in recipe.items()
    }
    targets = {task: task_targets(data.train.kind, data.train.labels) for task, data in recipe.items()}
    texts = {task: [normalize_text(t) for t in data.train.texts] for task, data in recipe.items()}
    anchors = anchor_targets(recipe, texts, config, device) if ft.embedding_anchor > 0 else None

    encoder_params = [p for name, p in model.named_parameters() if p.requires_grad and not name.startswith("heads.")]
    optimizer = torch.optim.AdamW(
        [
            {"params": encoder_params, "lr": config.learning_rate},
            {"params": list(model.heads.parameters()), "lr": ft.head_learning_rate},
        ],
        weight_decay=WEIGHT_DECAY,
    )
    caps = dict(ft.rows_per_epoch)
    per_epoch = steps_per_epoch(recipe, config.batch_size, caps)
    total = min(config.epochs * per_epoch, ft.max_steps or math.inf)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _linear_schedule(total, int(ft.warmup_share * total)))
    eval_every = ft.eval_every or per_epoch
    checkpoint_every = ft.checkpoint_every or eval_every
    folder = config.resolved_checkpoint_dir()
    run_fingerprint = fingerprint(config, recipe)

    state, best = TrainingState(), None
    resumed_from = None
    if resume and has_checkpoint(folder):
        checkpoint = load_checkpoint(folder, run_fingerprint)
        model.load_state_dict(checkpoint.trainable, strict=False)
        restore_optimizer(optimizer, checkpoint)
        scheduler.load_state_dict(checkpoint.document["scheduler"])
        state, best = checkpoint.state, checkpoint.best
        resumed_from = state.step
        log.info("resumed from %s at step %d", folder, state.step)

    def checkpoint_now() -> None:
        save_checkpoint(
            folder,
            trainable=model.trainable_state(),
            best=best,
            optimizer=optimizer,
            scheduler=scheduler,
            state=state,
            fingerprint=run_fingerprint,
        )

    dev_rows = {task: _dev_slice(data, ft.dev_limit) for task, data in recipe.items()}
    progress = tqdm(total=total, initial=state.step, desc="fine-tuning", unit="step", disable=not show_progress)
    schedule_epoch, schedule = -1, []
    while state.step < total and not state.stopped_early:
        epoch, position = divmod(state.step, per_epoch)
        if epoch != schedule_epoch:
            schedule_epoch, schedule = (
                epoch,
                epoch_batches(
                    recipe, config.batch_size, config.seed, epoch, rows_per_epoch=caps, bucket_batches=ft.bucket_batches
                ),
            )
        task, rows = schedule[position]
        model.train()
        batch_texts = [texts[task][i] for i in rows]
        logits, sentence = model(task, batch_texts)
        loss = losses[task](logits, targets[task][torch.from_numpy(rows)].to(device))
        if anchors is not None:
            loss = loss + ft.embedding_anchor * anchor_loss(sentence, anchors[task][torch.from_numpy(rows)].to(device))
        loss.backward()
        nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], MAX_GRAD_NORM)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        state.step += 1
        if on_step is not None:
            on_step(state.step, len(rows))
        progress.update(1)
        progress.set_postfix(task=task, loss=f"{loss.item():.3f}", best=f"{state.best_score:.4f}")

        if state.step % eval_every == 0 or state.step == total:
            model.eval()
            scores = {
                t: dev_score(
                    recipe[t].dev.kind,
                    recipe[t].dev.label_names,
                    _head_logits(encoder, model.heads[t], dev_rows[t][0]),
                    dev_rows[t][1],
                )
                for t in sorted(recipe)
            }
            score = float(np.mean([scores[t] for t in (ft.stop_tasks or sorted(scores))]))
            state.history.append(
                {"step": state.step, "dev": round(score, 4), **{t: round(v, 4) for t, v in scores.items()}}
            )
            log.info("step %d: dev %.4f %s", state.step, score, scores)
            if score > state.best_score + 1e-4:
                state.best_score, state.best_step, state.stale_checks = score, state.step, 0
                best = model.trainable_state()
            else:
                state.stale_checks += 1
                state.stopped_early = state.stale_checks >= config.patience
        if state.step % checkpoint_every == 0 or state.step == total or state.stopped_early:
            checkpoint_now()
        if interrupt_after is not None and state.step >= interrupt_after and state.step < total:
            checkpoint_now()
            progress.close()
            return None
    progress.close()

    if best is not None:
        model.load_state_dict(best, strict=False)
    model.eval()
    adapter = _export_adapter(encoder, ft)
    encoder.set_window(config.window)
    calibrated = {}
    for task, data in sorted(recipe.items()):
        network = model.heads[task]
        logits = _head_logits(encoder, network, data.dev.texts)
        calibrated[task] = calibrated_head(
            task,
            data.train.kind,
            data.train.label_names,
            network,
            config.hidden_dim,
            logits,
            data.dev.labels,
            calibrate=config.calibrate,
            tune_thresholds=config.tune_thresholds,
        )
    return FinetuneResult(
        encoder=encoder,
        heads=calibrated,
        adapter=adapter,
        state=state,
        total_steps=total,
        seconds=time.perf_counter() - started,
        resumed_from_step=resumed_from,
    )


def _export_adapter(encoder: Encoder, ft) -> tuple[AdapterManifest, dict[str, torch.Tensor]]:
    """The adapter tensors to store, and the encoder left with them merged in."""
    if ft.method == "lora":
        peft = require("peft", "train", "LoRA fine-tuning")
        tensors = {k: v.detach().cpu().clone() for k, v in peft.get_peft_model_state_dict(encoder.transformer).items()}
        encoder.set_transformer(encoder.transformer.merge_and_unload())
        entry = AdapterManifest(
            method="lora", sha256=PLACEHOLDER_SHA, rank=ft.rank, alpha=ft.alpha, target_modules=list(ft.target_modules)
        )
    elif ft.method == "partial":
        trained = {name for name, p in encoder.transformer.named_parameters() if p.requires_grad}
        tensors = {k: v.detach().cpu().clone() for k, v in encoder.transformer.state_dict().items() if k in trained}
        layers = sorted({int(k.split(".")[2]) for k in trained})
        entry = AdapterManifest(method="partial", sha256=PLACEHOLDER_SHA, layers=layers)
    else:
        tensors = {k: v.detach().cpu().clone() for k, v in encoder.transformer.state_dict().items()}
        entry = AdapterManifest(method="full", sha256=PLACEHOLDER_SHA)
    if entry.method != "lora" and ft.adapter_dtype == "float16":
        # Store half the bytes, and leave the encoder with exactly the weights serving will
        # load (float16 rounded back to float32), so the heads are calibrated on them.
        tensors = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
        encoder.transformer.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=False)
        entry = entry.model_copy(update={"dtype": "float16"})
    encoder.module.eval()
    return entry, tensors
