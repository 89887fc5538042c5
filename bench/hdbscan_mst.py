"""HDBSCAN's minimum-spanning-tree algorithms side by side, at the settings a topic fit uses
for each corpus size (nlp/topics/config.py): Boruvka's (HDBSCAN's default) against Prim's,
both on a k-d tree, one core, alternated. What `nlp/topics/clustering.py` `mst_algorithm`
chooses comes from this table.

The documents are the topic bench's embeddings (`bench/topics.py --embeddings E.npy`: BANKING77
and X-CI, 12,590 texts), sampled without replacement up to their number; larger sizes add
copies with Gaussian noise (sigma 0.02) on each dimension, so they time the algorithms on
realistic dimensions and cluster sizes, not on real documents. Per size it prints the best
of `--repeats` fits of each, and the ARI between their labels (1.0: the same topics).

    .venv/bin/python bench/hdbscan_mst.py --embeddings .cache/topicbench/small.npy [--sizes 1000 3000 10000 30000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from nlp.topics.clustering import hdbscan_labels  # noqa: E402
from nlp.topics.config import TopicFitConfig  # noqa: E402
from nlp.topics.reduction import reduce_embeddings  # noqa: E402

ALGORITHMS = ("boruvka_kdtree", "prims_kdtree")
NOISE = 0.02


def corpus_of(embeddings: np.ndarray, size: int, seed: int) -> np.ndarray:
    """`size` rows: a sample of the real ones, then noisy copies once those run out."""
    rng = np.random.default_rng(seed)
    rows = [embeddings[rng.permutation(len(embeddings))[:size]]]
    while sum(len(r) for r in rows) < size:
        rows.append(embeddings + rng.normal(0, NOISE, embeddings.shape).astype(embeddings.dtype))
    return np.concatenate(rows)[:size]


def time_fit(reduced: np.ndarray, config: TopicFitConfig, algorithm: str) -> tuple[float, np.ndarray]:
    """Seconds and labels of the topic fit's own HDBSCAN call, with the tree built by `algorithm`."""
    started = time.perf_counter()
    labels = hdbscan_labels(reduced, config, algorithm)
    return time.perf_counter() - started, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embeddings", type=Path, required=True, help="the topic bench's .npy of embeddings")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 6000, 10003, 15000, 19000, 21000, 30000])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from sklearn.metrics import adjusted_rand_score

    embeddings = np.load(args.embeddings).astype(np.float32)
    print(f"{len(embeddings):,} real documents; larger sizes add noisy copies")
    print("| documents | dimensions | smallest topic | boruvka s | prims s | boruvka ÷ prims | ARI between them |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        config = TopicFitConfig().for_corpus(size)
        reduced = reduce_embeddings(corpus_of(embeddings, size, args.seed), config)
        best = dict.fromkeys(ALGORITHMS, float("inf"))
        labels: dict[str, np.ndarray] = {}
        for _ in range(args.repeats):
            for algorithm in ALGORITHMS:  # alternated, so drift hits both
                seconds, labels[algorithm] = time_fit(reduced, config, algorithm)
                best[algorithm] = min(best[algorithm], seconds)
        boruvka, prims = best.values()
        agreement = adjusted_rand_score(*labels.values())
        print(
            f"| {size:,} | {reduced.shape[1]} | {config.min_cluster_size} | {boruvka:.2f} | {prims:.2f} "
            f"| {boruvka / prims:.2f} | {agreement:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
