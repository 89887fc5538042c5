"""Train a model bundle: encode the recipe's data (cached), train a head per task, report
each task on its report sets, and write the bundle."""

from __future__ import annotations

import logging
import platform
import time
from pathlib import Path

import numpy as np

from nlp.bundle import BundleManifest, EncoderManifest, save_bundle
from nlp.encoder import ENCODER_NAME, ENCODER_PACKAGE, Encoder, packaged_model_version
from nlp.labels import GOEMOTIONS_EKMAN_SOURCES
from training.datasets import LabelledSet
from training.features import encode_sets
from training.head_trainer import HeadTrainingConfig, evaluate_head, train_head
from training.metrics import collapse_labels, multilabel_metrics_from_predictions
from training.model_card import render_model_card
from training.recipes import TaskData

log = logging.getLogger(__name__)

# GoEmotions' published sentiment grouping of its 28 labels (for the derived group figure).
GOEMOTIONS_GROUP_SOURCES = {
    "ambiguous": ("confusion", "curiosity", "realization", "surprise"),
    "negative": ("anger", "annoyance", "disappointment", "disapproval", "disgust", "embarrassment",
                 "fear", "grief", "nervousness", "remorse", "sadness"),
    "neutral": ("neutral",),
    "positive": ("admiration", "amusement", "approval", "caring", "desire", "excitement", "gratitude",
                 "joy", "love", "optimism", "pride", "relief"),
}
TASK_ORDER = ("sentiment", "emotions", "urgency")


def headline_metrics(task: str, report_name: str, metrics: dict) -> dict[str, float]:
    """The figures quoted in manifests: macro-F1 everywhere, macro-recall for TweetEval."""
    key = report_name.replace("/", "_").replace(":", "_").replace("-", "_")
    figures = {f"{key}.macro_f1": round(metrics["macro_f1"], 4)}
    if "macro_recall" in metrics:
        figures[f"{key}.macro_recall"] = round(metrics["macro_recall"], 4)
    return figures


def derived_emotion_reports(head, features: np.ndarray, dev: LabelledSet) -> dict[str, dict]:
    """Ekman and sentiment-group macro-F1 read off the 28-label head through GoEmotions'
    own mappings (the published baselines train a model per taxonomy)."""
    predictions = (head.predict_proba(features) >= np.asarray(head.spec.thresholds)).astype(np.int64)
    reports = {}
    for name, mapping in (("goemotions/ekman:dev", GOEMOTIONS_EKMAN_SOURCES),
                          ("goemotions/group:dev", GOEMOTIONS_GROUP_SOURCES)):
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
    """Train every task in `recipe` and write the bundle to `output`.

    Returns the manifest and the full metrics: task -> report set -> metrics."""
    started = time.perf_counter()
    encoder = encoder or Encoder()
    all_sets = {s.name: s for data in recipe.values() for s in (data.train, data.dev, *data.reports)}
    features = encode_sets(encoder, list(all_sets.values()), cache_dir, label=recipe_name)
    encode_seconds = time.perf_counter() - started

    heads, full_metrics, task_data = {}, {}, {}
    for task in [t for t in TASK_ORDER if t in recipe] + [t for t in recipe if t not in TASK_ORDER]:
        data = recipe[task]
        head = train_head(task, data.train.kind, data.train.label_names,
                          features[data.train.name], data.train.labels,
                          features[data.dev.name], data.dev.labels, config)
        reports = {s.name: evaluate_head(head, features[s.name], s.labels) for s in data.reports if len(s)}
        if task == "emotions":
            reports.update(derived_emotion_reports(head, features[data.dev.name], data.dev))
        for report_name, metrics in reports.items():
            head.spec.metrics.update(headline_metrics(task, report_name, metrics))
        heads[task] = head
        full_metrics[task] = reports
        task_data[task] = {
            "train": [f"{data.train.name} ({len(data.train)})"],
            "dev": [f"{data.dev.name} ({len(data.dev)})"] + [f"{s.name} ({len(s)})" for s in data.reports],
        }

    training = {
        "recipe": recipe_name,
        "mode": "heads (frozen encoder)",
        "config": config.to_dict(),
        "seconds": round(time.perf_counter() - started, 1),
        "encode_seconds": round(encode_seconds, 1),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPUs",
    }
    encoder_manifest = EncoderManifest(
        name=ENCODER_NAME, package=ENCODER_PACKAGE, package_version=packaged_model_version(),
        max_seq_length=encoder.max_seq_length, features="mean_max",
    )
    description = ("Sentiment, emotion and urgency heads over a frozen all-MiniLM-L6-v2 encoder, "
                   "for customer-service messages.")
    card = render_model_card(name, version, description, heads, task_data, full_metrics, training)
    manifest = save_bundle(output, name=name, version=version, encoder=encoder_manifest, heads=heads,
                           task_data=task_data, training=training, description=description, model_card=card)
    return manifest, full_metrics
