"""Topic discovery benchmark, side by side in one run, on the same embeddings:

- convintel's topic fit (PCA -> HDBSCAN -> merge -> k-means refinement -> c-TF-IDF
  labels over spaCy lemmas and noun chunks), default settings;
- BERTopic with its default settings (UMAP -> HDBSCAN -> c-TF-IDF), given the same
  precomputed embeddings (BERTopic is a bench-only dependency: the `bench` extra).

On BANKING77 train (10,003 customer queries, 77 intents) it reports NMI and ARI of the
topics against the intents (unassigned documents count as one more cluster, as
BERTopic's topic -1 does), the unassigned share, the number of topics, wall time and
peak memory. Each tool fits in its own fresh process (so peak RSS is that fit's alone),
one after the other.

The scale run (`--scale 100000`) fits convintel on 100,000 messages: every text of
BANKING77 train, GoEmotions train+dev, MELD train+dev, TweetEval sentiment val and the
project's labelled messages, topped up with BANKING77 queries wrapped in greetings and
sign-offs ("Hi, ... Thanks!") until there are N distinct texts. Embeddings are cached by
text under `.cache/features` (encoding 100k messages takes long on 2 cores; the fit is
what is timed).

    .venv/bin/python bench/topics.py [--json bench/results/topics.json]
    .venv/bin/python bench/topics.py --scale 100000 [--distinct 40000]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

GREETINGS = ("Hi, ", "Hello, ", "Hey, ", "Good morning, ", "Hi there, ")
SIGN_OFFS = (" Thanks!", " Thank you.", " Please help.", " Any ideas?", " Cheers.")


def load_banking77(path: Path) -> tuple[list[str], list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [r["text"] for r in rows], [r["category"] for r in rows]


def synthetic_corpus(data_root: Path, size: int, distinct: int | None = None) -> list[str]:
    """`size` messages: the real texts listed in the module docstring, then BANKING77
    queries with a greeting and a sign-off, deterministic. With `distinct`, only the first
    `distinct` texts are used, repeated in turn up to `size` (recurring messages, as in a
    real archive; each still goes through the fit as its own document)."""
    texts = _distinct_texts(data_root, min(size, distinct or size))
    return [texts[i % len(texts)] for i in range(size)]


def _distinct_texts(data_root: Path, size: int) -> list[str]:
    from training.datasets import load_goemotions, load_meld_sentiment, load_tweeteval_sentiment

    banking, _ = load_banking77(data_root / "banking77" / "train.csv")
    texts = list(banking)
    for split in ("train", "dev"):
        texts += load_goemotions(data_root, split).texts
        texts += load_meld_sentiment(data_root, split).texts
    texts += load_tweeteval_sentiment(data_root).texts
    for path in sorted((ROOT / "data" / "urgency").glob("messages_*.jsonl")):
        texts += [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]
    distinct = list(dict.fromkeys(t for t in texts if t.strip()))
    seen = set(distinct)
    for greeting in GREETINGS:
        for sign_off in SIGN_OFFS:
            for query in banking:
                if len(distinct) >= size:
                    return distinct[:size]
                text = greeting + query[0].lower() + query[1:] + sign_off
                if text not in seen:
                    seen.add(text)
                    distinct.append(text)
    return distinct[:size]


def embeddings_for(texts: list[str], cache_dir: Path, slice_size: int = 4096, model: Path | None = None) -> np.ndarray:
    """Sentence embeddings from the shared encoder (with the fine-tuned encoder of bundle
    `model`, when given), cached by text (slices are saved as they finish, so an
    interrupted encode resumes)."""
    from nlp.bundle import load_bundle
    from nlp.encoder import Encoder
    from training.features import FeatureCache

    adapter = load_bundle(model).adapter if model else None
    encoder = Encoder(num_threads=int(os.environ.get("CONVINTEL_TORCH_THREADS", os.cpu_count() or 1)), adapter=adapter)
    cache = FeatureCache(cache_dir, encoder)
    parts = []
    for start in range(0, len(texts), slice_size):
        parts.append(cache.features(texts[start : start + slice_size], label=f"{start}/{len(texts)}")[:, : encoder.dim])
        print(f"encoded {min(start + slice_size, len(texts))}/{len(texts)}", file=sys.stderr, flush=True)
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


# --- one fit per child process -----------------------------------------------------------


def child_fit(tool: str, texts_path: Path, embeddings_path: Path, labels_path: Path) -> None:
    """Runs in a fresh process: fit `tool`, save its document labels, print figures."""
    texts = json.loads(texts_path.read_text(encoding="utf-8"))
    embeddings = np.load(embeddings_path)
    started = time.perf_counter()
    if tool == "convintel":
        from nlp.topics import fit_topics

        result = fit_topics(texts, embeddings)
        labels, extra = result.labels, {"clustered_share": result.clustered_share, "steps_s": result.seconds}
    else:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from bertopic import BERTopic

        topics, _ = BERTopic().fit_transform(texts, embeddings=embeddings)
        labels, extra = np.asarray(topics), {}
    seconds = time.perf_counter() - started
    np.save(labels_path, np.asarray(labels, dtype=np.int64))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(json.dumps({"wall_s": round(seconds, 2), "peak_rss_mib": round(peak_mib, 1), **extra}))


def run_tool(tool: str, texts: list[str], embeddings: np.ndarray, workdir: Path) -> tuple[np.ndarray, dict]:
    texts_path, embeddings_path = workdir / "texts.json", workdir / "embeddings.npy"
    if not texts_path.exists():
        texts_path.write_text(json.dumps(texts), encoding="utf-8")
        np.save(embeddings_path, embeddings)
    labels_path = workdir / f"{tool}-labels.npy"
    completed = subprocess.run(
        [sys.executable, __file__, "--child", tool, str(texts_path), str(embeddings_path), str(labels_path)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return np.load(labels_path), json.loads(completed.stdout.strip().splitlines()[-1])


def scores(labels: np.ndarray, truth: list[str] | None) -> dict:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    figures = {
        "topics": int(len(set(labels.tolist()) - {-1})),
        "unassigned_share": round(float((labels < 0).mean()), 4),
    }
    if truth is not None:
        figures["nmi"] = round(float(normalized_mutual_info_score(truth, labels)), 4)
        figures["ari"] = round(float(adjusted_rand_score(truth, labels)), 4)
    return figures


def table(rows: dict[str, dict]) -> str:
    columns = [
        ("nmi", "NMI"),
        ("ari", "ARI"),
        ("unassigned_share", "unassigned"),
        ("topics", "topics"),
        ("wall_s", "wall s"),
        ("peak_rss_mib", "peak RSS MiB"),
    ]
    lines = ["| tool | " + " | ".join(title for _, title in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for tool, figures in rows.items():
        cells = []
        for key, _ in columns:
            value = figures.get(key)
            cells.append(
                "—"
                if value is None
                else f"{value:.1%}"
                if key == "unassigned_share"
                else f"{value:.4f}"
                if isinstance(value, float) and key in ("nmi", "ari")
                else str(value)
            )
        lines.append(f"| {tool} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data-root", type=Path, default=Path(os.environ.get("CONVINTEL_DATA_ROOT", ROOT.parent / "shared" / "data"))
    )
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".cache" / "features")
    parser.add_argument("--scale", type=int, help="fit convintel on this many synthetic messages instead")
    parser.add_argument("--distinct", type=int, help="with --scale: use only this many distinct texts, repeated")
    parser.add_argument("--skip-bertopic", action="store_true")
    parser.add_argument("--encode-only", action="store_true", help="fill the embedding cache and stop")
    parser.add_argument(
        "--embeddings",
        type=Path,
        help="a .npy of the texts' embeddings, row-aligned: loaded when present, else written",
    )
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument(
        "--model",
        type=Path,
        help="a model bundle: embed with its (fine-tuned) encoder, as the service does, instead of the base encoder",
    )
    args = parser.parse_args()

    if args.scale:
        texts, truth = synthetic_corpus(args.data_root, args.scale, args.distinct), None
        dataset = f"synthetic ({len(texts)} messages, {len(set(texts))} distinct)"
    else:
        texts, truth = load_banking77(args.data_root / "banking77" / "train.csv")
        dataset = f"banking77 train ({len(texts)} queries, {len(set(truth))} intents)"
    if args.model:
        dataset += f", encoder of {args.model}"
    started = time.perf_counter()
    unique = list(dict.fromkeys(texts))
    row = {text: i for i, text in enumerate(unique)}
    if args.embeddings and args.embeddings.exists():
        distinct_embeddings = np.load(args.embeddings)
        if distinct_embeddings.shape[0] != len(unique):
            raise SystemExit(f"{args.embeddings} has {distinct_embeddings.shape[0]} rows for {len(unique)} texts")
    else:
        distinct_embeddings = embeddings_for(unique, args.cache_dir, model=args.model)
        if args.embeddings:
            args.embeddings.parent.mkdir(parents=True, exist_ok=True)
            np.save(args.embeddings, distinct_embeddings)
    embeddings = distinct_embeddings[[row[text] for text in texts]]
    print(
        f"{dataset}: embeddings {embeddings.shape} in {time.perf_counter() - started:.0f} s (cached by text)",
        file=sys.stderr,
    )
    if args.encode_only:
        return
    tools = ["convintel"] + ([] if args.skip_bertopic or args.scale else ["bertopic"])
    rows: dict[str, dict] = {}
    (ROOT / ".cache").mkdir(exist_ok=True)  # a fresh checkout has none
    with tempfile.TemporaryDirectory(dir=ROOT / ".cache") as tmp:
        for tool in tools:
            labels, figures = run_tool(tool, texts, embeddings, Path(tmp))
            rows[tool] = {**scores(labels, truth), **figures}
            print(f"{tool}: {rows[tool]}", file=sys.stderr, flush=True)
    print(f"dataset: {dataset}; {os.cpu_count()} CPUs")
    print(table(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"dataset": dataset, "cpus": os.cpu_count(), "results": rows}, indent=2) + "\n")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        child_fit(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5]))
    else:
        main()
