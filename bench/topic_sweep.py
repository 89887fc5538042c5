"""Sweep of the topic fit's clustering settings over the tuning corpora (how the size rule
in nlp/topics/config.py was chosen). Clustering only (smooth -> reduce -> HDBSCAN ->
merge -> k-means refinement): labels and keywords do not change the topics. BERTopic's labels on
each corpus are computed once and kept in `--work` (they do not depend on the sweep).

    .venv/bin/python bench/topic_sweep.py --embeddings E.npy \\
        [--grid 'min_cluster_size=3,5,8;min_samples=2,5'] [--check]

`--embeddings`: embeddings of (at least) every corpus text, with the texts in the .json
beside it, as `bench/topics.py --embeddings E.npy` writes them. Prints one line per setting: mean NMI,
ARI, unassigned share and topics per corpus group, and BERTopic's alongside."""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score  # noqa: E402

from bench.topic_corpora import Corpus, labelled_corpora  # noqa: E402
from nlp.topics.config import TopicFitConfig  # noqa: E402
from nlp.topics.fit import discover  # noqa: E402


def cluster(embeddings: np.ndarray, config: TopicFitConfig) -> np.ndarray:
    """The fit's topic labels without naming them (nlp.topics.fit's own clustering)."""
    return discover(embeddings, config).labels


def figures(labels: np.ndarray, truth: list[str]) -> np.ndarray:
    return np.array(
        [
            normalized_mutual_info_score(truth, labels),
            adjusted_rand_score(truth, labels),
            float((labels < 0).mean()),
            len(set(labels.tolist()) - {-1}),
        ]
    )


def bertopic_labels(corpus: Corpus, embeddings: np.ndarray, work: Path) -> np.ndarray:
    path = work / f"bertopic-{corpus.name}.npy"
    if not path.exists():
        from bertopic import BERTopic

        topics, _ = BERTopic().fit_transform(corpus.texts, embeddings=embeddings)
        np.save(path, np.asarray(topics, dtype=np.int64))
    return np.load(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--embeddings", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=ROOT / ".cache" / "topicbench")
    parser.add_argument("--grid", default="", help="'field=v1,v2;field=v3' over TopicFitConfig fields")
    parser.add_argument("--check", action="store_true", help="include the corpora never tuned on")
    args = parser.parse_args()

    all_embeddings = np.load(args.embeddings)
    row = {text: i for i, text in enumerate(json.loads(args.embeddings.with_suffix(".json").read_text()))}
    corpora = [c for c in labelled_corpora(args.data_root, check=args.check) if args.check or c.tuned]
    embeddings = {c.name: all_embeddings[[row[t] for t in c.texts]] for c in corpora}
    args.work.mkdir(parents=True, exist_ok=True)
    groups = list(dict.fromkeys(c.group for c in corpora))

    def report(name: str, per_corpus: dict[str, np.ndarray]) -> None:
        cells = []
        for group in groups:
            mean = np.mean([per_corpus[c.name] for c in corpora if c.group == group], axis=0)
            cells.append(f"{group}: {mean[0]:.3f}/{mean[1]:.3f}/{mean[2]:.1%}/{mean[3]:.0f}")
        print(f"{name:60s} " + " | ".join(cells), flush=True)

    report("bertopic", {c.name: figures(bertopic_labels(c, embeddings[c.name], args.work), c.truth) for c in corpora})
    axes = []
    for part in filter(None, args.grid.split(";")):
        key, values = part.split("=")
        axes.append([(key.strip(), _value(v)) for v in values.split(",")])
    for combination in itertools.product(*axes) if axes else [()]:
        overrides = dict(combination)
        results = {}
        for c in corpora:
            config = replace(TopicFitConfig().for_corpus(len(c.texts)), **overrides)
            results[c.name] = figures(cluster(embeddings[c.name], config), c.truth)
        report(" ".join(f"{k}={v}" for k, v in combination) or "defaults", results)


def _value(text: str) -> object:
    text = text.strip()
    if text == "None":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


if __name__ == "__main__":
    main()
