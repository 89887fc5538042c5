"""Head variants on a frozen encoder: the dev figures of each variant, seed by seed and
for the seeds' ensemble, for choosing head settings and for measuring how far heads alone
can take a bundle's encoder (docs/models.md). Encodes only what `.cache/features` lacks.

    # the base encoder, HeadTrainingConfig's defaults changed per variant
    .venv/bin/python bench/head_variants.py '{"stop-f1": {"multilabel_stop": "macro_f1"}}' emotions
    # the shipped bundle's encoder and its recipe's head settings, three seeds and their ensemble
    .venv/bin/python bench/head_variants.py '{"shipped": {}}' emotions \\
        --model models/convintel-base --config training/finetune.yaml --seeds 13 14 15

The first argument maps a variant name to HeadTrainingConfig changes (`token_attention`
included); the second lists the tasks. One JSON line per variant and seed, and with more
than one seed one for their ensemble: the heads' probabilities averaged, multi-label
thresholds tuned again on the averaged dev probabilities. Figures: macro-F1 per report set
(TweetEval: macro-recall); for emotions also the Ekman and group figures read off the 28
labels, and with `--coarse-readings` those read other ways (`coarse_readings`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from nlp.bundle import load_bundle  # noqa: E402
from nlp.encoder import Encoder  # noqa: E402
from nlp.vocabulary import GOEMOTIONS_EKMAN_SOURCES  # noqa: E402
from training.config import load_train_config  # noqa: E402
from training.datasets import LabelledSet  # noqa: E402
from training.evaluate import load_encoder  # noqa: E402
from training.features import FeatureCache, encode_sets  # noqa: E402
from training.head_trainer import HeadTrainingConfig  # noqa: E402
from training.metrics import (  # noqa: E402
    best_thresholds,
    collapse_labels,
    multiclass_metrics,
    multilabel_metrics,
    multilabel_metrics_from_predictions,
)
from training.recipes import TaskData, default_recipe  # noqa: E402
from training.train import (  # noqa: E402
    GOEMOTIONS_GROUP_SOURCES,
    derived_emotion_figures,
    fit_task_head,
    token_set_names,
)

COARSE_TAXONOMIES = {"ekman": GOEMOTIONS_EKMAN_SOURCES, "group": GOEMOTIONS_GROUP_SOURCES}
# Cross-fitting on dev halves: thresholds chosen on one half are scored on the other, so
# readings with different numbers of tuned thresholds compare fairly. Five shuffles keep
# the spread of the halves' draw under 0.005 (measured on 0.7.0's head).
CROSS_FIT_SHUFFLES = 5


def figures(
    kind: str, labels: list[str], y: np.ndarray, probs: np.ndarray, thresholds: list[float] | None
) -> dict[str, float]:
    """Macro-F1 and macro-recall of one set's probabilities."""
    if kind == "multiclass":
        metrics = multiclass_metrics(y, probs, labels)
    else:
        metrics = multilabel_metrics(y, probs, thresholds or [0.5] * len(labels), labels)
    return {"macro_f1": metrics["macro_f1"], "macro_recall": metrics.get("macro_recall", float("nan"))}


def set_row(
    data: TaskData,
    set_probabilities: Mapping[str, np.ndarray],
    thresholds: list[float] | None,
    coarse: bool,
) -> dict[str, float]:
    """One variant's figures on every report set of a task, from each set's probabilities."""
    row: dict[str, float] = {}
    for report in data.reports:
        metrics = figures(
            data.train.kind, data.train.label_names, report.labels, set_probabilities[report.name], thresholds
        )
        row[report.name] = round(metrics["macro_recall" if report.name.startswith("tweeteval") else "macro_f1"], 4)
    if data.train.name.startswith("goemotions/original") and thresholds is not None:
        dev_probs = set_probabilities[data.dev.name]
        predictions = (dev_probs >= np.asarray(thresholds)).astype(np.int64)
        for name, metrics in derived_emotion_figures(predictions, data.dev).items():
            row[name] = round(metrics["macro_f1"], 4)
        if coarse:
            row.update(coarse_readings(dev_probs, data.dev))
    return row


def coarse_readings(probs: np.ndarray, dev: LabelledSet, seed: int = 0) -> dict[str, float]:
    """Ekman and group macro-F1 on dev read three ways, every threshold cross-fitted on dev
    halves: `any` (a coarse label when any of its source labels passes its own threshold,
    as the API reads them), `max` and `noisy_or` (one score per coarse label from its
    source labels' probabilities, with one threshold per coarse label)."""
    rng = np.random.default_rng(seed)
    index = {label: i for i, label in enumerate(dev.label_names)}
    y28 = dev.labels.astype(np.int64)
    out: dict[str, float] = {}
    for taxonomy, mapping in COARSE_TAXONOMIES.items():
        truth = collapse_labels(y28, dev.label_names, mapping)
        sources = [[index[s] for s in members] for members in mapping.values()]
        scores = {
            "max": np.stack([probs[:, c].max(axis=1) for c in sources], axis=1),
            "noisy_or": np.stack([1 - np.prod(1 - probs[:, c], axis=1) for c in sources], axis=1),
        }
        results: dict[str, list[float]] = {"any": [], "max": [], "noisy_or": []}
        for _ in range(CROSS_FIT_SHUFFLES):
            order = rng.permutation(len(truth))
            halves = (order[: len(order) // 2], order[len(order) // 2 :])
            predicted = {name: np.zeros_like(truth) for name in results}
            for fit, scored in (halves, halves[::-1]):
                passing = probs[scored] >= np.asarray(best_thresholds(y28[fit], probs[fit]))
                predicted["any"][scored] = collapse_labels(passing.astype(np.int64), dev.label_names, mapping)
                for name, score in scores.items():
                    bars = np.asarray(best_thresholds(truth[fit], score[fit]))
                    predicted[name][scored] = score[scored] >= bars
            for name in results:
                metrics = multilabel_metrics_from_predictions(truth, predicted[name], list(mapping))
                results[name].append(metrics["macro_f1"])
        for name, values in results.items():
            out[f"{taxonomy}:cross_fit_{name}"] = round(float(np.mean(values)), 4)
    return out


def encoder_for(model: Path | None) -> Encoder:
    """The bundle's encoder (adapter merged) with `--model`, else the packaged base encoder."""
    return load_encoder(load_bundle(model)) if model is not None else Encoder()


def run(
    variants: dict[str, dict],
    tasks: list[str],
    *,
    data_root: Path,
    model: Path | None,
    base_config: HeadTrainingConfig,
    seeds: Sequence[int],
    coarse: bool,
) -> None:
    """Train every variant with every seed; print a JSON line each, and the ensemble's."""
    torch.set_num_threads(1)  # fastest on a shared 2-core machine
    recipe = {task: data for task, data in default_recipe(data_root).items() if task in tasks}
    configs = {name: replace(base_config, **changes) for name, changes in variants.items()}
    token_tasks = {task for config in configs.values() for task in config.token_attention}
    sets = {s.name: s for data in recipe.values() for s in (data.train, data.dev, *data.reports)}
    features, tokens = encode_sets(
        FeatureCache(ROOT / ".cache" / "features", encoder_for(model)),
        list(sets.values()),
        label="default",
        token_sets=token_set_names(recipe, token_tasks),
    )
    for name, config in configs.items():
        for task in tasks:
            data = recipe[task]
            per_seed: list[dict[str, np.ndarray]] = []
            for seed in seeds:
                started = time.perf_counter()
                head = fit_task_head(task, data, features, replace(config, seed=seed), tokens)
                set_probs = {
                    s.name: head.predict_proba(features[s.name], tokens.get(s.name)) for s in (data.dev, *data.reports)
                }
                per_seed.append(set_probs)
                row = {"variant": name, "task": task, "seed": seed}
                row.update(set_row(data, set_probs, head.spec.thresholds, coarse))
                row["seconds"] = round(time.perf_counter() - started, 1)
                print(json.dumps(row), flush=True)
            if len(per_seed) > 1:
                mean = {key: np.mean([p[key] for p in per_seed], axis=0) for key in per_seed[0]}
                thresholds = (
                    best_thresholds(data.dev.labels, mean[data.dev.name]) if data.train.kind == "multilabel" else None
                )
                row = {"variant": name, "task": task, "seed": f"ensemble of {len(per_seed)}"}
                row.update(set_row(data, mean, thresholds, coarse))
                print(json.dumps(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", type=json.loads, help="JSON: variant name -> HeadTrainingConfig changes")
    parser.add_argument("tasks", help="comma-separated tasks, e.g. emotions or sentiment,urgency")
    parser.add_argument("--model", type=Path, help="a bundle whose encoder to read (default: the base encoder)")
    parser.add_argument("--config", type=Path, help="a training config whose head settings the variants start from")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds to train each variant with (default: the config's)")
    parser.add_argument("--coarse-readings", action="store_true", help="also read Ekman and groups other ways")
    parser.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    base_config = load_train_config(args.config).head_config() if args.config else HeadTrainingConfig()
    run(
        args.variants,
        args.tasks.split(","),
        data_root=args.data_root,
        model=args.model,
        base_config=base_config,
        seeds=args.seeds or [base_config.seed],
        coarse=args.coarse_readings,
    )


if __name__ == "__main__":
    main()
