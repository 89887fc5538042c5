"""Accuracy of every head with each encoder backend, side by side in one run.

Each backend encodes the same dev sets (the bundle's heads do not change) and is scored
through `training.evaluate.evaluate_bundle`, exactly as `convintel evaluate` scores the
PyTorch reference. The gate: no backend loses more than `--max-drop` macro-F1 (0.01) on
any set against the torch reference.

    .venv/bin/python bench/backends_accuracy.py [--limit 2000] [--json out.json]

`--limit N` scores the first N rows of each set (a subset, said so in the output) when the
full sets take too long on a small machine."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from nlp.backends import ENCODER_BACKENDS, load_encoder  # noqa: E402
from nlp.bundle import load_bundle  # noqa: E402
from service.settings import Settings  # noqa: E402
from training.datasets import DEFAULT_DATA_ROOT  # noqa: E402
from training.evaluate import Evaluation, evaluate_bundle  # noqa: E402

SOURCES = [
    "shared:goemotions/original",  # emotions: GoEmotions dev, 28 labels
    "shared:goemotions/group-sentiment",  # sentiment: GoEmotions dev, sentiment groups
    "shared:meld/sentiment",  # sentiment: MELD dev
    "shared:tweeteval/sentiment",  # sentiment: TweetEval val
    str(ROOT / "data" / "urgency" / "messages_*.jsonl"),  # urgency, sentiment: own held-out quarter
]


def macro_f1_by_set(evaluations: list[Evaluation]) -> dict[str, float]:
    """`set name` -> macro-F1, with derived emotion taxonomies as `set name/taxonomy`."""
    figures: dict[str, float] = {}
    for item in evaluations:
        figures[f"{item.task} {item.set_name}"] = item.metrics["macro_f1"]
        for taxonomy, derived in item.derived.items():
            figures[f"{item.task} {item.set_name} -> {taxonomy}"] = derived["macro_f1"]
    return figures


def limit_rows(limit: int | None):
    """Patch LabelledSet loading so every set keeps its first `limit` rows (a subset run)."""
    if not limit:
        return
    from training import evaluate

    original = evaluate.resolve_sources

    def limited(*args, **kwargs):
        sets, problems = original(*args, **kwargs)
        for item in sets:
            if len(item.data) > limit:
                item.data = item.data.subset(np.arange(len(item.data)) < limit, item.data.name)
        return sets, problems

    evaluate.resolve_sources = limited


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", default=list(ENCODER_BACKENDS), choices=ENCODER_BACKENDS)
    parser.add_argument("--limit", type=int, help="score only the first N rows of each set")
    parser.add_argument("--max-drop", type=float, default=0.01, help="largest macro-F1 loss allowed vs torch")
    parser.add_argument(
        "--data-root", type=Path, help="public data sets (default: CONVINTEL_DATA_ROOT or ../shared/data)"
    )
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument(
        "--reference",
        type=Path,
        help="take the torch figures from this earlier --json output instead of encoding again "
        "(they are deterministic; encoding the dev sets with torch is the slow part)",
    )
    args = parser.parse_args()

    settings = Settings()
    data_root = args.data_root or Path(os.environ.get("CONVINTEL_DATA_ROOT", DEFAULT_DATA_ROOT))
    bundle = load_bundle(settings.model_path)
    limit_rows(args.limit)
    table: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = {}
    sizes: dict[str, int] = {}
    if args.reference:
        earlier = json.loads(args.reference.read_text())
        if earlier.get("limit") != args.limit or "torch" not in earlier["macro_f1"]:
            raise SystemExit(f"{args.reference} has no torch figures for the same rows")
        table["torch"], sizes = earlier["macro_f1"]["torch"], earlier["n"]
        print(f"torch: figures from {args.reference}", file=sys.stderr)
    for backend in (b for b in args.backends if not (args.reference and b == "torch")):
        encoder = load_encoder(
            replace(settings.encoder_config(), backend=backend),
            max_seq_length=bundle.manifest.encoder.max_seq_length,
            adapter=bundle.adapter,
        )
        started = time.perf_counter()
        # No feature cache on disk: its key names the encoder files, not the backend.
        result = evaluate_bundle(
            bundle.path, SOURCES, data_root=data_root, split="heldout", encoder=encoder, cache_dir=None
        )
        seconds[backend] = round(time.perf_counter() - started, 1)
        table[backend] = macro_f1_by_set(result.evaluations)
        sizes.update({f"{e.task} {e.set_name}": e.n for e in result.evaluations})
        print(f"{backend}: scored in {seconds[backend]} s", file=sys.stderr)

    reference = table.get("torch")
    rows = sorted(next(iter(table.values())))
    width = max(len(row) for row in rows) + 2
    print(f"macro-F1 per set{f' (first {args.limit} rows of each set)' if args.limit else ''}")
    header = f"{'set':{width}}{'n':>7}" + "".join(f"{b:>11}" for b in table)
    if reference:
        header += "".join(f"{'Δ ' + b:>16}" for b in table if b != "torch")
    print(header)
    failures = []
    for row in rows:
        line = f"{row:{width}}{sizes.get(row.split(' -> ')[0], 0):>7}" + "".join(
            f"{table[b][row]:11.4f}" for b in table
        )
        if reference:
            for backend in (b for b in table if b != "torch"):
                delta = table[backend][row] - reference[row]
                line += f"{delta:+16.4f}"
                if delta < -args.max_drop:
                    failures.append(f"{backend} loses {-delta:.4f} macro-F1 on {row}")
        print(line)
    print("gate:", "PASS" if not failures else "FAIL", f"(max drop {args.max_drop})")
    for failure in failures:
        print("  " + failure)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {"limit": args.limit, "macro_f1": table, "n": sizes, "seconds": seconds, "failures": failures}, indent=2
            )
        )


if __name__ == "__main__":
    main()
