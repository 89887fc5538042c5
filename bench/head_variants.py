"""Head variants of the default recipe on the cached frozen features: the dev figures of
each variant, for choosing the shipped head settings. Encodes nothing that
`make models` has cached already (.cache/features).

    .venv/bin/python bench/head_variants.py '{"stop-f1": {"multilabel_stop": "macro_f1"}}' emotions
    .venv/bin/python bench/head_variants.py '{"no-weights": {"class_weighting": false}}' sentiment,urgency

The first argument maps a variant name to HeadTrainingConfig changes; the second lists the
tasks. One JSON line per variant: macro-F1 per report set (TweetEval: macro-recall).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from nlp.encoder import Encoder  # noqa: E402
from training.features import FeatureCache, encode_sets  # noqa: E402
from training.head_trainer import HeadTrainingConfig, evaluate_head  # noqa: E402
from training.recipes import default_recipe  # noqa: E402
from training.train import derived_emotion_reports, fit_task_head  # noqa: E402


def main(variants: dict[str, dict], tasks: list[str], data_root: Path = ROOT.parent / "shared" / "data") -> None:
    torch.set_num_threads(1)  # fastest on a shared 2-core machine
    recipe = default_recipe(data_root)
    sets = {s.name: s for data in recipe.values() for s in (data.train, data.dev, *data.reports)}
    features, _ = encode_sets(
        FeatureCache(ROOT / ".cache" / "features", Encoder()), list(sets.values()), label="default"
    )
    for name, changes in variants.items():
        config = replace(HeadTrainingConfig(), **changes)
        started = time.perf_counter()
        row: dict[str, object] = {"variant": name}
        for task in tasks:
            data = recipe[task]
            head = fit_task_head(task, data, features, config)
            for report in data.reports:
                metrics = evaluate_head(head, features[report.name], report.labels)
                key = "macro_recall" if report.name.startswith("tweeteval") else "macro_f1"
                row[report.name] = round(metrics[key], 4)
            if task == "emotions":
                for derived, metrics in derived_emotion_reports(head, features[data.dev.name], data.dev).items():
                    row[derived] = round(metrics["macro_f1"], 4)
        row["seconds"] = round(time.perf_counter() - started, 1)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]), sys.argv[2].split(","))
