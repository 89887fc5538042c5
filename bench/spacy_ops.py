"""spaCy's matrix products through BLIS (thinc's default) against numpy's BLAS, side by side
in one run, on the messages of a generated archive (`service.batch.synthetic`).

thinc runs spaCy's layers on `NumpyOps`, whose matrix products go to BLIS, one thread, by
default; `NumpyOps(use_blis=False)` sends them to numpy's BLAS (OpenBLAS in numpy's
wheels), which uses every core. For each way spaCy is used here (topic terms: tagger and
lemmatizer; redaction: the recogniser alone; cue detection: tagger and parser), batched
through `nlp.pipe` and one message at a time (the per-message path), interleaved rounds
give each backend's best and median time per message, and whether the annotations agree
on every token.

    .venv/bin/python bench/spacy_ops.py [--conversations 300] [--rounds 3] [--single 300]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spacy.language import Language  # noqa: E402
from spacy.tokens import Doc  # noqa: E402

from nlp import spacy_pipeline  # noqa: E402
from nlp.spacy_pipeline import entity_docs, parsed_docs  # noqa: E402
from service.batch.synthetic import synthetic_transcripts  # noqa: E402

Use = Callable[[Language, Iterable[str]], Iterator[Doc]]
USES: dict[str, tuple[tuple[str, ...], Use]] = {
    "terms (tagger, lemmatizer)": (spacy_pipeline.TERM_UNUSED_COMPONENTS, lambda nlp, texts: nlp.pipe(texts)),
    "entities (recogniser)": (spacy_pipeline.UNUSED_COMPONENTS, entity_docs),
    "parse (tagger, parser)": (spacy_pipeline.UNUSED_COMPONENTS, parsed_docs),
}


def annotations(docs: Iterable[Doc]) -> list[list[tuple]]:
    return [[(t.tag_, t.pos_, t.dep_, t.head.i, t.lemma_, t.ent_type_, t.ent_iob_) for t in doc] for doc in docs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--single", type=int, default=300, help="messages timed one at a time")
    args = parser.parse_args()

    texts = [m["text"] for t in synthetic_transcripts(args.conversations) for m in t["messages"]]
    print(f"{len(texts)} messages; {args.rounds} interleaved rounds; {args.single} of them one at a time")
    print(f"{'':28}{'backend':>8}{'batched ms/msg':>16}{'median':>8}{'single ms/msg':>15}{'median':>8}")
    for use, (exclude, run) in USES.items():
        pipelines = {
            "blis": spacy_pipeline.load_package(exclude, blas="blis"),
            "numpy": spacy_pipeline.load_package(exclude, blas="numpy"),
        }
        batched: dict[str, list[float]] = {name: [] for name in pipelines}
        single: dict[str, list[float]] = {name: [] for name in pipelines}
        results = {}
        for _ in range(args.rounds):
            for name, nlp in pipelines.items():
                started = time.perf_counter()
                docs = list(run(nlp, texts))
                batched[name].append((time.perf_counter() - started) / len(texts) * 1000)
                results[name] = annotations(docs)
                started = time.perf_counter()
                for text in texts[: args.single]:
                    list(run(nlp, [text]))
                single[name].append((time.perf_counter() - started) / args.single * 1000)
        for name in pipelines:
            print(
                f"{use:28}{name:>8}{min(batched[name]):16.3f}{statistics.median(batched[name]):8.3f}"
                f"{min(single[name]):15.3f}{statistics.median(single[name]):8.3f}"
            )
        same = sum(a == b for a, b in zip(results["blis"], results["numpy"]))
        print(
            f"{use:28}  numpy/blis batched {min(batched['numpy']) / min(batched['blis']):.2f}, "
            f"single {min(single['numpy']) / min(single['blis']):.2f}; same annotations on {same}/{len(texts)} messages"
        )


if __name__ == "__main__":
    main()
