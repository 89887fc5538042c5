"""Seed topics and parent topics on BANKING77 train (10,003 customer queries, 77 intents).

- Parent topics: a default fit's topics and parents, children per parent, and NMI of the
  topics and of the parents against the intents (the parents are coarser, so lower).
- Zero-shot seeds: a few intents become seed topics described only by their name
  ("card arrival"); for each `--seed-threshold`, each seed's precision (share of the
  messages it claimed that carry its intent) and recall (share of its intent's messages
  it claimed).

Embeddings come from the shared encoder, cached by text (as bench/topics.py does).

    .venv/bin/python bench/topic_seeds.py [--embeddings .cache/topics/banking77.npy] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from sklearn.metrics import normalized_mutual_info_score  # noqa: E402

from bench.topic_corpora import load_banking77  # noqa: E402
from bench.topics import embeddings_for  # noqa: E402

SEED_INTENTS = ("card_arrival", "lost_or_stolen_card", "exchange_rate", "pin_blocked", "cancel_transfer")


def main() -> None:
    from nlp.encoder import Encoder
    from nlp.topics import TopicFitConfig, fit_topics
    from nlp.topics.seeds import SeedFile, embed_seeds

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data-root", type=Path, default=Path(os.environ.get("CONVINTEL_DATA_ROOT", ROOT.parent / "shared" / "data"))
    )
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".cache" / "features")
    parser.add_argument(
        "--embeddings", type=Path, help="a .npy of the texts' embeddings: loaded when present, else written"
    )
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.4, 0.5, 0.6])
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()

    texts, truth = load_banking77(args.data_root)
    if args.embeddings and args.embeddings.exists():
        embeddings = np.load(args.embeddings)
    else:
        embeddings = embeddings_for(texts, args.cache_dir)
        if args.embeddings:
            np.save(args.embeddings, embeddings)

    fitted = fit_topics(texts, embeddings)
    manifest = fitted.model.manifest
    parent_of = np.array([manifest.topics[k].parent if k >= 0 else -1 for k in fitted.labels])
    children = sorted((len(p.topics) for p in manifest.parents), reverse=True)
    figures: dict = {
        "topics": len(manifest.topics),
        "parents": len(manifest.parents),
        "children_per_parent": children,
        "nmi_topics": round(float(normalized_mutual_info_score(truth, fitted.labels)), 4),
        "nmi_parents": round(float(normalized_mutual_info_score(truth, parent_of)), 4),
        "largest_parents": [
            {"name": p.name, "topics": [t.name for t in manifest.topics if t.parent == p.id][:6]}
            for p in manifest.parents[:5]
        ],
        "zero_shot": {},
    }
    encoder = Encoder(num_threads=int(os.environ.get("CONVINTEL_TORCH_THREADS", os.cpu_count() or 1)))
    seed_file = SeedFile.model_validate(
        {"topics": [{"name": intent, "description": intent.replace("_", " ")} for intent in SEED_INTENTS]}
    )
    seeds = embed_seeds(seed_file, lambda batch: encoder.encode(batch).embeddings)
    intents = np.array(truth)
    for threshold in args.thresholds:
        result = fit_topics(texts, embeddings, TopicFitConfig(seed_threshold=threshold), seeds=seeds)
        per_seed = {}
        for index, intent in enumerate(SEED_INTENTS):
            claimed = result.labels == index
            per_seed[intent] = {
                "claimed": int(claimed.sum()),
                "precision": round(float((intents[claimed] == intent).mean()), 3) if claimed.any() else None,
                "recall": round(float(claimed[intents == intent].mean()), 3),
            }
        figures["zero_shot"][str(threshold)] = per_seed
        print(f"seed threshold {threshold}: {per_seed}", file=sys.stderr, flush=True)
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
