"""Train a model bundle and write it: mode `heads` encodes the recipe's data once (cached)
and trains a head per task on the frozen encoder; mode `finetune` trains the encoder with
the heads (training.finetune). Both report each task on its report sets the same way."""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from nlp.bundle import AdapterManifest, BundleManifest, EncoderManifest, save_bundle
from nlp.encoder import ENCODER_NAME, ENCODER_PACKAGE, Encoder, packaged_model_version
from nlp.heads import TaskHead
from nlp.token_states import TokenStates
from nlp.vocabulary import GOEMOTIONS_EKMAN_SOURCES, SUPPORT_EMOTION_SOURCES
from training.config import TrainConfig
from training.datasets import LabelledSet
from training.features import FeatureCache, encode_sets
from training.finetune import FinetuneResult, finetune
from training.head_trainer import HeadTrainingConfig, evaluate_head, evaluate_report, train_head
from training.metrics import collapse_labels, multilabel_metrics_from_predictions
from training.model_card import render_model_card
from training.recipes import TaskData

log = logging.getLogger(__name__)

# GoEmotions' published sentiment grouping of its 28 labels (for the derived group figure).
GOEMOTIONS_GROUP_SOURCES = {
    "ambiguous": ("confusion", "curiosity", "realization", "surprise"),
    "negative": (
        "anger",
        "annoyance",
        "disappointment",
        "disapproval",
        "disgust",
        "embarrassment",
        "fear",
        "grief",
        "nervousness",
        "remorse",
        "sadness",
    ),
    "neutral": ("neutral",),
    "positive": (
        "admiration",
        "amusement",
        "approval",
        "caring",
        "desire",
        "excitement",
        "gratitude",
        "joy",
        "love",
        "optimism",
        "pride",
        "relief",
    ),
}
TASK_ORDER = ("sentiment", "emotions", "urgency", "complaint")
# How each task reads in a bundle's description ("Sentiment, emotion and urgency heads").
TASK_WORDS = {"emotions": "emotion"}
# How each fine-tuning method reads in a bundle's description.
FINETUNE_METHOD_WORDS = {"lora": "LoRA adapters", "partial": "its top layers unfrozen", "full": "every weight"}


def headline_metrics(task: str, report_name: str, metrics: dict) -> dict[str, float]:
    """The figures quoted in manifests: macro-F1 everywhere, macro-recall for single-label
    tasks; for complaint also F1, precision and recall of "yes" (the usual complaint
    figures) and, where the set has X-CI's severity, its Spearman correlations."""
    key = report_name.replace("/", "_").replace(":", "_").replace("-", "_")
    figures = {f"{key}.macro_f1": round(metrics["macro_f1"], 4)}
    if "macro_recall" in metrics:
        figures[f"{key}.macro_recall"] = round(metrics["macro_recall"], 4)
    if task == "complaint":
        positive = metrics["per_class"]["yes"]
        figures |= {f"{key}.{name}": round(positive[name], 4) for name in ("f1", "precision", "recall")}
        for name in ("severity_spearman", "severity_spearman_complaints"):
            if metrics.get(name) is not None:
                figures[f"{key}.{name}"] = round(metrics[name], 4)
    return figures


def derived_emotion_reports(
    head: TaskHead, features: np.ndarray, dev: LabelledSet, tokens: TokenStates | None = None
) -> dict[str, dict]:
    """Ekman and sentiment-group macro-F1 read off the 28-label head through GoEmotions'
    own mappings (the published baselines train a model per taxonomy), and the
    customer-service emotions the API reports, through its mapping (nlp.vocabulary), with
    precision and recall per support label."""
    predictions = (head.predict_proba(features, tokens) >= np.asarray(head.spec.thresholds)).astype(np.int64)
    return derived_emotion_figures(predictions, dev)


def derived_emotion_figures(predictions: np.ndarray, dev: LabelledSet) -> dict[str, dict]:
    """`derived_emotion_reports` from a 0/1 matrix of 28-label predictions on `dev`'s rows
    (for predictions that no single head made, such as an ensemble's)."""
    reports = {}
    for name, mapping in (
        ("goemotions/ekman:dev", GOEMOTIONS_EKMAN_SOURCES),
        ("goemotions/group:dev", GOEMOTIONS_GROUP_SOURCES),
        ("goemotions/support:dev", SUPPORT_EMOTION_SOURCES),
    ):
        truth = collapse_labels(dev.labels.astype(np.int64), dev.label_names, mapping)
        predicted = collapse_labels(predictions, dev.label_names, mapping)
        reports[name] = multilabel_metrics_from_predictions(truth, predicted, list(mapping))
    return reports


def train_bundle(
    recipe: dict[str, TaskData],
    output: Path,
    *,
    name: str,
    version: str,
    config: HeadTrainingConfig,
    cache_dir: Path | None,
    encoder: Encoder | None = None,
    recipe_name: str = "custom",
) -> tuple[BundleManifest, dict[str, dict[str, dict]]]:
    """Train a head per task in `recipe` on the frozen encoder and write the bundle to
    `output` (mode `heads`).

    Returns the manifest and the full metrics: task -> report set -> metrics."""
    started = time.perf_counter()
    encoder = encoder or Encoder()
    all_sets = {s.name: s for data in recipe.values() for s in (data.train, data.dev, *data.reports)}
    features, tokens = encode_sets(
        FeatureCache(cache_dir, encoder),
        list(all_sets.values()),
        label=recipe_name,
        token_sets=token_set_names(recipe, config.token_attention),
    )
    encode_seconds = time.perf_counter() - started

    heads = {}
    for task in ordered_tasks(recipe):
        data = recipe[task]
        heads[task] = fit_task_head(task, data, features, config, tokens)
    training = {
        "recipe": recipe_name,
        "mode": "heads (frozen encoder)",
        "config": config.to_dict(),
        "seconds": round(time.perf_counter() - started, 1),
        "encode_seconds": round(encode_seconds, 1),
        "machine": machine_description(),
    }
    description = f"{heads_phrase(list(recipe))} over a frozen all-MiniLM-L6-v2 encoder, for customer-service messages."
    return write_bundle(
        recipe,
        heads,
        features,
        output,
        name=name,
        version=version,
        encoder=encoder,
        training=training,
        description=description,
        tokens=tokens,
    )


def finetune_bundle(
    recipe: dict[str, TaskData],
    config: TrainConfig,
    *,
    recipe_name: str = "custom",
    resume: bool = False,
    interrupt_after: int | None = None,
    show_progress: bool = True,
) -> tuple[BundleManifest, dict[str, dict[str, dict]]] | None:
    """Fine-tune the encoder with the heads (mode `finetune`) and write the bundle to
    `config.output`: heads plus the adapter (LoRA) or encoder weights (full). Returns None
    when `interrupt_after` stopped the run at a checkpoint (see training.finetune)."""
    result = finetune(recipe, config, resume=resume, interrupt_after=interrupt_after, show_progress=show_progress)
    if result is None:
        return None
    started = time.perf_counter()
    # In memory: the head refits and the reports share texts (dev sets, GoEmotions rows in
    # both sentiment and emotions), and a fine-tuned encoder's features are not reused later.
    cache = FeatureCache(None, result.encoder)
    refit_choices = refit_heads(recipe, config, result, cache)
    report_sets = {s.name: s for data in recipe.values() for s in (data.dev, *data.reports)}
    attending = [task for task, head in result.heads.items() if head.reads_tokens]
    features, tokens = encode_sets(
        cache,
        list(report_sets.values()),
        label="reports",
        token_sets=token_set_names(recipe, attending),
    )
    adapter_entry, _ = result.adapter
    training = {
        "recipe": recipe_name,
        "mode": f"finetune ({adapter_entry.method})",
        "config": config.model_dump(mode="json", exclude={"output", "checkpoint_dir", "cache_dir"}),
        "steps": result.state.step,
        "planned_steps": result.total_steps,
        "best_step": result.state.best_step,
        "stopped_early": result.state.stopped_early,
        "dev_history": result.state.history,
        "resumed_from_step": result.resumed_from_step,
        "refit_heads": refit_choices,
        "seconds": round(result.seconds + time.perf_counter() - started, 1),
        "machine": machine_description(),
    }
    if config.base_bundle is not None:
        training["continued_from"] = continued_from(config.base_bundle)
    description = (
        f"{heads_phrase(list(recipe))} over all-MiniLM-L6-v2 fine-tuned with "
        f"{FINETUNE_METHOD_WORDS[adapter_entry.method]}, for customer-service messages."
    )
    return write_bundle(
        recipe,
        result.heads,
        features,
        config.output,
        name=config.name,
        version=config.version,
        encoder=result.encoder,
        training=training,
        description=description,
        adapter=result.adapter,
        tokens=tokens,
    )


def encoder_training(record: dict) -> dict:
    """How the encoder of a bundle with this training record was trained: a refit never
    changes the encoder, so the record is followed back through any number of refits."""
    while "encoder_training" not in record and "base_training" in record:
        record = record["base_training"]
    return record.get("encoder_training", record)


def continued_from(base_path: Path) -> dict:
    """The record of the bundle a continued fine-tune started from: who it is, and how its
    encoder was trained (followed back through refits), so the chain of runs stays readable."""
    base = BundleManifest.model_validate_json((base_path / "manifest.json").read_text(encoding="utf-8"))
    return {
        "name": base.name,
        "version": base.version,
        "created": base.created,
        "adapter_sha256": base.adapter.sha256 if base.adapter is not None else None,
        "encoder_training": encoder_training(base.training),
    }


def refit_heads(
    recipe: dict[str, TaskData], config: TrainConfig, result: FinetuneResult, cache: FeatureCache
) -> dict[str, dict]:
    """Train the heads named in `finetune.refit_heads` again on the fine-tuned encoder's
    frozen features (heads-mode settings), and keep whichever of the jointly trained and
    the refit head scores higher on dev. A task with a few hundred rows gets a few
    batches in a shared epoch, too few for its head; on fixed features it trains to
    convergence in seconds. `cache` holds (and fills) the fine-tuned encoder's features.
    Returns, per task, both dev figures and which head was kept."""
    choices = {}
    for task in config.finetune.refit_heads:
        data = recipe[task]
        head_config = config.head_config()
        features, tokens = encode_sets(
            cache,
            [data.train, data.dev],
            label=f"refit {task}",
            token_sets=token_set_names({task: data}, head_config.token_attention),
        )
        refit = fit_task_head(task, data, features, head_config, tokens)
        dev, dev_tokens = features[data.dev.name], tokens.get(data.dev.name)
        joint_score = evaluate_head(result.heads[task], dev, data.dev.labels)["macro_f1"]
        refit_score = evaluate_head(refit, dev, data.dev.labels, dev_tokens)["macro_f1"]
        kept = "refit" if refit_score >= joint_score else "joint"
        if kept == "refit":
            result.heads[task] = refit
        choices[task] = {"joint_dev_macro_f1": round(joint_score, 4), "refit_dev_macro_f1": round(refit_score, 4)}
        choices[task]["kept"] = kept
        log.info("refit %s: joint %.4f, refit %.4f on dev: kept the %s head", task, joint_score, refit_score, kept)
    return choices


def fit_task_head(
    task: str,
    data: TaskData,
    features: dict[str, np.ndarray],
    config: HeadTrainingConfig,
    tokens: Mapping[str, TokenStates] | None = None,
) -> TaskHead:
    """Train `task`'s head on its train set's features, stopping early on its dev set's
    (and their token vectors, by set name, for a task in `config.token_attention`)."""
    tokens = tokens or {}
    return train_head(
        task,
        data.train.kind,
        data.train.label_names,
        features[data.train.name],
        data.train.labels,
        features[data.dev.name],
        data.dev.labels,
        config,
        tokens_train=tokens.get(data.train.name),
        tokens_dev=tokens.get(data.dev.name),
    )


def token_set_names(recipe: Mapping[str, TaskData], tasks: Iterable[str]) -> set[str]:
    """Names of every set of the recipe's `tasks` (those whose heads attend over tokens):
    `encode_sets` keeps token vectors for those among the sets it encodes."""
    return {
        s.name
        for task in tasks
        if task in recipe
        for s in (recipe[task].train, recipe[task].dev, *recipe[task].reports)
    }


def ordered_tasks(recipe: dict[str, TaskData] | list[str]) -> list[str]:
    """Tasks in the usual order (TASK_ORDER), others after them."""
    return [t for t in TASK_ORDER if t in recipe] + [t for t in recipe if t not in TASK_ORDER]


def heads_phrase(tasks: list[str]) -> str:
    """'Sentiment, emotion and urgency heads', for a bundle's description."""
    words = [TASK_WORDS.get(task, task) for task in ordered_tasks(tasks)]
    listed = words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"
    return f"{listed.capitalize()} head{'s' if len(words) > 1 else ''}"


def machine_description() -> str:
    import os

    import torch

    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{platform.machine()}, {os.cpu_count()} CPUs{gpu}"


def write_bundle(
    recipe: dict[str, TaskData],
    heads: dict[str, TaskHead],
    features: dict[str, np.ndarray],
    output: Path,
    *,
    name: str,
    version: str,
    encoder: Encoder,
    training: dict,
    description: str,
    adapter: tuple[AdapterManifest, dict] | None = None,
    tokens: Mapping[str, TokenStates] | None = None,
) -> tuple[BundleManifest, dict[str, dict[str, dict]]]:
    """Report every head on its task's report sets (dev figures into the manifest), then
    write the bundle with its model card."""
    full_metrics, task_data = report_heads(recipe, heads, features, tokens)
    encoder_manifest = EncoderManifest(
        name=ENCODER_NAME,
        package=ENCODER_PACKAGE,
        package_version=packaged_model_version(),
        max_seq_length=encoder.max_seq_length,
        features="mean_max",
    )
    card = render_model_card(name, version, description, heads, task_data, full_metrics, training)
    manifest = save_bundle(
        output,
        name=name,
        version=version,
        encoder=encoder_manifest,
        heads=heads,
        task_data=task_data,
        training=training,
        description=description,
        model_card=card,
        adapter=adapter,
    )
    return manifest, full_metrics


def report_heads(
    recipe: dict[str, TaskData],
    heads: dict[str, TaskHead],
    features: dict[str, np.ndarray],
    tokens: Mapping[str, TokenStates] | None = None,
) -> tuple[dict[str, dict[str, dict]], dict[str, dict[str, list[str]]]]:
    """Score the head of each task in `recipe` on its report sets, put the headline
    figures into the head's spec (the manifest's metrics), and name the data it saw
    (`tokens`, by set name: the token vectors of the sets of heads that attend over them).

    Returns (task -> report set -> metrics, task -> {"train": [...], "dev": [...]})."""
    full_metrics, task_data = {}, {}
    tokens = tokens or {}
    for task in ordered_tasks(recipe):
        data, head = recipe[task], heads[task]
        reports = {
            s.name: evaluate_report(head, features[s.name], s, tokens.get(s.name)) for s in data.reports if len(s)
        }
        if task == "emotions":
            reports.update(derived_emotion_reports(head, features[data.dev.name], data.dev, tokens.get(data.dev.name)))
        for report_name, metrics in reports.items():
            head.spec.metrics.update(headline_metrics(task, report_name, metrics))
        full_metrics[task] = reports
        task_data[task] = {
            "train": [f"{data.train.name} ({len(data.train)})"],
            "dev": [f"{data.dev.name} ({len(data.dev)})"] + [f"{s.name} ({len(s)})" for s in data.reports],
        }
    return full_metrics, task_data
