"""Topic discovery benchmark, side by side on the same embeddings:

- convintel's topic fit (PCA -> HDBSCAN -> merge -> k-means refinement -> c-TF-IDF
  labels over spaCy lemmas and noun chunks), default settings (which adapt to the corpus
  size: nlp/topics/config.py);
- BERTopic with its default settings (UMAP -> HDBSCAN -> c-TF-IDF), given the same
  precomputed embeddings (BERTopic is a bench-only dependency: the `bench` extra).

Corpora (bench/topic_corpora.py): BANKING77 train at full size and seeded subsamples of
1,000 and 3,000 queries (3 seeds each), scored against the 77 intents, and the project's
train part of X-CI against its 11 `domain` labels: the corpora the size rule was tuned
on. Then, marked "(check)", corpora it was never tuned on: X-CI's held-out part and
BANKING77 subsamples of 2,000 and 6,000 queries (other seeds). Per fit: NMI and ARI
against the labels (unassigned documents count as one more cluster, as BERTopic's topic
-1 does), the unassigned share, the number of topics, coherence (mean NPMI of each topic's
top 10 keywords over the corpus: bench/topic_coherence.py), wall time of the fit and peak
RSS. Each fit runs in its own fresh process, one after the other, so each peak RSS is
that fit's alone. Subsample rows are means over their seeds; the other corpora's rows
are means over `--runs` fits of each tool (3), alternated.

The scale run (`--scale 100000`) fits convintel alone on that many distinct messages from
the train splits of TweetEval, GoEmotions, BANKING77, X-CI and MELD, and reports its wall
time and peak RSS. Embeddings are cached by text under `--cache-dir` (encoding is not
timed; `--embeddings E.npy` also keeps the corpus' embeddings, with their texts in
E.json, so later runs and bench/topic_sweep.py skip the encoder).

    .venv/bin/python bench/topics.py [--json bench/results/topics.json] [--no-check]
    .venv/bin/python bench/topics.py --scale 100000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.topic_corpora import Corpus, labelled_corpora, scale_corpus  # noqa: E402

TOOLS = ("convintel", "bertopic")
TOP_KEYWORDS = 10


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


def load_embeddings(texts: list[str], args: argparse.Namespace) -> np.ndarray:
    """Row-aligned embeddings of `texts`: from `--embeddings` (a .npy with its texts in
    the .json beside it) when it holds them all, else encoded (and then saved there)."""
    unique = list(dict.fromkeys(texts))
    store = args.embeddings
    if store and store.exists() and store.with_suffix(".json").exists():
        stored = json.loads(store.with_suffix(".json").read_text(encoding="utf-8"))
        row = {text: i for i, text in enumerate(stored)}
        if all(text in row for text in unique):
            return np.load(store, mmap_mode="r")[[row[text] for text in texts]]
    encoded = embeddings_for(unique, args.cache_dir, model=args.model)
    if store:
        store.parent.mkdir(parents=True, exist_ok=True)
        np.save(store, encoded)
        store.with_suffix(".json").write_text(json.dumps(unique), encoding="utf-8")
    row = {text: i for i, text in enumerate(unique)}
    return encoded[[row[text] for text in texts]]


# --- one fit per child process -----------------------------------------------------------


def child_fit(tool: str, workdir: Path) -> None:
    """Runs in a fresh process: fit `tool` on workdir's texts.json and embeddings.npy,
    save its document labels, print its figures and each topic's keywords as JSON."""
    texts = json.loads((workdir / "texts.json").read_text(encoding="utf-8"))
    embeddings = np.load(workdir / "embeddings.npy")
    started = time.perf_counter()
    if tool == "convintel":
        from nlp.topics import fit_topics

        result = fit_topics(texts, embeddings)
        labels = result.labels
        keywords = [topic.keywords for topic in result.model.topics]
        extra = {"clustered_share": round(result.clustered_share, 4), "steps_s": result.seconds}
    else:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from bertopic import BERTopic

        model = BERTopic()
        topics, _ = model.fit_transform(texts, embeddings=embeddings)
        labels = np.asarray(topics)
        keywords = [[word for word, _ in model.get_topic(k)] for k in range(int(labels.max()) + 1)]
        extra = {}
    seconds = time.perf_counter() - started
    np.save(workdir / f"{tool}-labels.npy", np.asarray(labels, dtype=np.int64))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(json.dumps({"wall_s": round(seconds, 2), "peak_rss_mib": round(peak_mib, 1), "keywords": keywords, **extra}))


def run_tool(tool: str, workdir: Path) -> tuple[np.ndarray, dict]:
    """Fit `tool` in a fresh process on what workdir holds."""
    completed = subprocess.run(
        [sys.executable, __file__, "--child", tool, str(workdir)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return np.load(workdir / f"{tool}-labels.npy"), json.loads(completed.stdout.strip().splitlines()[-1])


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


def fit_corpus(
    corpus: Corpus, embeddings: np.ndarray, tools: list[str], words: dict[str, frozenset[str]], runs: int = 1
) -> dict:
    """Every tool's figures on one corpus: the means over `runs` fits of each, alternated."""
    from bench.topic_coherence import npmi_coherence

    fits: dict[str, list[dict]] = {tool: [] for tool in tools}
    with tempfile.TemporaryDirectory(dir=ROOT / ".cache") as tmp:
        workdir = Path(tmp)
        (workdir / "texts.json").write_text(json.dumps(corpus.texts), encoding="utf-8")
        np.save(workdir / "embeddings.npy", np.ascontiguousarray(embeddings, dtype=np.float32))
        documents = [words[text] for text in corpus.texts]
        for _ in range(runs):
            for tool in tools:
                labels, figures = run_tool(tool, workdir)
                keywords = figures.pop("keywords")
                fit = {
                    **scores(labels, corpus.truth),
                    "npmi": round(npmi_coherence(keywords, documents, TOP_KEYWORDS), 4),
                    **figures,
                }
                fits[tool].append(fit)
                print(f"{corpus.name} {tool}: {fit}", file=sys.stderr, flush=True)
    rows = {}
    for tool, tool_fits in fits.items():
        rows[tool] = tool_fits[0] if runs == 1 else {**tool_fits[-1], **mean_figures(tool_fits), "runs": runs}
    return rows


def mean_figures(fits: list[dict]) -> dict[str, float]:
    """The mean of each table column over repeated fits of one tool on one corpus."""
    return {key: round(float(np.mean([fit[key] for fit in fits])), 4) for key, _, _ in COLUMNS if key in fits[0]}


COLUMNS = [
    ("nmi", "NMI", "{:.3f}"),
    ("ari", "ARI", "{:.3f}"),
    ("unassigned_share", "unassigned", "{:.1%}"),
    ("topics", "topics", "{:.0f}"),
    ("npmi", "NPMI", "{:.3f}"),
    ("wall_s", "wall s", "{:.1f}"),
    ("peak_rss_mib", "peak RSS MiB", "{:.0f}"),
]


def group_means(results: list[dict]) -> dict[str, dict[str, dict[str, float]]]:
    """group -> tool -> column -> mean over the group's corpora."""
    groups: dict[str, dict[str, dict[str, float]]] = {}
    for group in dict.fromkeys(r["group"] for r in results):
        members = [r["tools"] for r in results if r["group"] == group]
        groups[group] = {
            tool: {key: float(np.mean([m[tool][key] for m in members])) for key, _, _ in COLUMNS} for tool in members[0]
        }
    return groups


def tables(groups: dict[str, dict[str, dict[str, float]]]) -> str:
    """The figures per corpus and tool, then convintel's standing against the goals."""
    lines = [
        "| corpus | tool | " + " | ".join(t for _, t, _ in COLUMNS) + " |",
        "|---|---" + "|---:" * len(COLUMNS) + "|",
    ]
    for group, tools in groups.items():
        for tool, figures in tools.items():
            cells = [fmt.format(figures[key]) for key, _, fmt in COLUMNS]
            lines.append(f"| {group} | {tool} | " + " | ".join(cells) + " |")
    if not all(set(TOOLS) <= set(tools) for tools in groups.values()):
        return "\n".join(lines)
    lines += [
        "",
        "| corpus | NMI − BERTopic (goal ≥ +0.02) | ARI − BERTopic (goal ≥ 0) | unassigned (goal ≤ 5%) "
        "| speed-up (goal ≥ 3×) | NPMI − BERTopic | goals met |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for group, tools in groups.items():
        ours, theirs = tools["convintel"], tools["bertopic"]
        nmi, ari = ours["nmi"] - theirs["nmi"], ours["ari"] - theirs["ari"]
        speedup = theirs["wall_s"] / max(ours["wall_s"], 1e-9)
        met = nmi >= 0.02 and ari >= 0 and ours["unassigned_share"] <= 0.05 and speedup >= 3
        lines.append(
            f"| {group} | {nmi:+.3f} | {ari:+.3f} | {ours['unassigned_share']:.1%} | {speedup:.1f}× "
            f"| {ours['npmi'] - theirs['npmi']:+.3f} | {'yes' if met else 'no'} |"
        )
    return "\n".join(lines)


def scale_run(args: argparse.Namespace) -> None:
    """Fit convintel on `--scale` distinct messages; print wall time and peak RSS."""
    texts = scale_corpus(args.data_root, args.scale)
    embeddings = load_embeddings(texts, args)
    if args.encode_only:  # fill the cache now, time the fit later on a quiet machine
        return
    with tempfile.TemporaryDirectory(dir=ROOT / ".cache") as tmp:
        workdir = Path(tmp)
        (workdir / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
        np.save(workdir / "embeddings.npy", np.ascontiguousarray(embeddings, dtype=np.float32))
        labels, figures = run_tool("convintel", workdir)
    figures.pop("keywords")
    row = {"messages": len(texts), "distinct": len(set(texts)), **scores(labels, None), **figures}
    print(f"scale: {json.dumps(row)}; {os.cpu_count()} CPUs")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"scale": row, "cpus": os.cpu_count()}, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data-root", type=Path, default=Path(os.environ.get("CONVINTEL_DATA_ROOT", ROOT.parent / "shared" / "data"))
    )
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".cache" / "features")
    parser.add_argument("--scale", type=int, help="fit convintel alone on this many distinct messages instead")
    parser.add_argument("--skip-bertopic", action="store_true")
    parser.add_argument("--no-check", action="store_true", help="only the tuning corpora")
    parser.add_argument("--only", help="only the corpora whose name starts with this (e.g. banking77-1000)")
    parser.add_argument("--encode-only", action="store_true", help="fill the embedding cache and stop")
    parser.add_argument("--embeddings", type=Path, help="a .npy of embeddings with its texts in the .json beside it")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument(
        "--runs",
        type=int,
        default=3,
        help="fits of each tool, averaged, on the corpora that are not subsampled (BERTopic's UMAP is "
        "unseeded, so its figures move from fit to fit; subsampled sizes average their 3 seeds instead)",
    )
    parser.add_argument(
        "--model",
        type=Path,
        help="a model bundle: embed with its (fine-tuned) encoder, as the service does, instead of the base encoder",
    )
    args = parser.parse_args()
    (ROOT / ".cache").mkdir(exist_ok=True)  # a fresh checkout has none
    if args.scale:
        scale_run(args)
        return

    corpora = labelled_corpora(args.data_root, check=not args.no_check)
    if args.only:
        corpora = [c for c in corpora if c.name.startswith(args.only)]
    union = list(dict.fromkeys(text for c in corpora for text in c.texts))
    started = time.perf_counter()
    embeddings = load_embeddings(union, args)
    print(f"embeddings {embeddings.shape} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    if args.encode_only:
        return
    from bench.topic_coherence import document_words

    words = dict(zip(union, document_words(union)))
    row = {text: i for i, text in enumerate(union)}
    tools = ["convintel"] + ([] if args.skip_bertopic else ["bertopic"])
    group_sizes = Counter(c.group for c in corpora)
    results = []
    for corpus in corpora:
        runs = args.runs if group_sizes[corpus.group] == 1 else 1
        rows = fit_corpus(corpus, embeddings[[row[t] for t in corpus.texts]], tools, words, runs)
        results.append({"corpus": corpus.name, "group": corpus.group, "tuned": corpus.tuned, "tools": rows})
    encoder = f"encoder of {args.model}" if args.model else "base encoder"
    print(f"{encoder}; {os.cpu_count()} CPUs; subsample rows are means over seeds, the others over {args.runs} fits")
    print(tables(group_means(results)))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"encoder": encoder, "cpus": os.cpu_count(), "results": results}, indent=2) + "\n"
        )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child_fit(sys.argv[2], Path(sys.argv[3]))
    else:
        main()
