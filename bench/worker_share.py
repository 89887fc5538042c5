"""What the model worker does per micro-batch, against the raw encoder on the same batch.

The per-message endpoint's micro-batch worker runs `Analyzer.analyze_turns` on each batch:
one encoder pass, the heads and, with the default settings, spaCy (the cue screen and the
parse of cue candidates, and the entity recogniser on every message, because the stored
text is redacted). That call is the service's serial stage, so the raw encoder's share of
it bounds what the endpoint can deliver against the raw encoder's throughput, before any
HTTP, database or client cost: `bench/load.py`'s c=32 goal (70% of the raw batch-32
throughput) is out of reach while this share is below 0.70.

Timed side by side in one process, batch by batch and alternating which runs first, on the
bench's messages (`bench/load.py`'s, customer and agent turns alternating):
- the raw encoder (`encoder.encode`, the floor `bench/load.py` uses);
- `analyze_turns` (what the worker runs);
- the text inspection alone (spaCy; `TextInspector.inspect`, as `analyze_turns` calls it).

    .venv/bin/python bench/worker_share.py [--batch-sizes 16 32] [--batches 30] [--json out.json]

Settings come from the environment (`CONVINTEL_*`), so for instance
`CONVINTEL_REDACT_PII=false` shows the share without the recogniser.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import load_messages  # noqa: E402
from nlp.analyzer import Analyzer  # noqa: E402
from nlp.schemas import Message, Role  # noqa: E402
from service.runtime import load_analyzer  # noqa: E402
from service.settings import Settings  # noqa: E402

FLOOR_BATCH = 32
"""The batch size of bench/load.py's throughput floor."""


def batch_steps(analyzer: Analyzer, batch: list[Message]) -> dict[str, Callable[[], object]]:
    """The three measured calls on one batch: raw encoder, the worker's call, inspection."""
    texts, roles, ids = [m.text for m in batch], [m.role for m in batch], [f"m{i}" for i in range(len(batch))]
    steps: dict[str, Callable[[], object]] = {
        "encoder": partial(analyzer.encoder.encode, texts),
        "worker": partial(analyzer.analyze_turns, batch, ids),
    }
    if analyzer.inspector is not None:
        steps["inspection"] = partial(analyzer.inspector.inspect, texts, roles)
    return steps


def timed(work: Callable[[], object]) -> float:
    """Milliseconds `work` took."""
    started = time.perf_counter()
    work()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--batches", type=int, default=30, help="measured batches per size (after 3 warm-up ones)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()

    settings = Settings(_env_file=None)
    analyzer = load_analyzer(settings)
    texts = load_messages()
    roles = [Role.customer, Role.agent]
    rows = []
    for size in args.batch_sizes:
        batches = [
            [Message(role=roles[(b + i) % 2], text=texts[(b * size + i) % len(texts)]) for i in range(size)]
            for b in range(args.batches + 3)
        ]
        times: dict[str, list[float]] = {"encoder": [], "worker": [], "inspection": []}
        for number, batch in enumerate(batches):
            steps = batch_steps(analyzer, batch)
            order = list(steps) if number % 2 == 0 else list(reversed(steps))  # alternate who goes first
            measured = {name: timed(steps[name]) for name in order}
            if number >= 3:
                for name, ms in measured.items():
                    times[name].append(ms)
        median = {name: statistics.median(values) for name, values in times.items() if values}
        row = {
            "batch_size": size,
            "encoder_ms": round(median["encoder"], 1),
            "worker_ms": round(median["worker"], 1),
            "inspection_ms": round(median["inspection"], 1) if "inspection" in median else None,
            "encoder_share_of_worker": round(median["encoder"] / median["worker"], 3),
        }
        rows.append(row)
        print(
            f"batch {size}: raw encoder {row['encoder_ms']} ms, worker (analyze_turns) {row['worker_ms']} ms, "
            f"inspection {row['inspection_ms']} ms; encoder / worker = {row['encoder_share_of_worker']}",
            flush=True,
        )
    # bench/load.py's c=32 goal compares with the raw encoder at batch 32, whatever size the
    # micro-batches reach: the worker's messages per second at each size against that floor.
    floor = next((row for row in rows if row["batch_size"] == FLOOR_BATCH), None)
    for row in rows:
        row["worker_vs_raw_batch32"] = (
            round((floor["encoder_ms"] / FLOOR_BATCH) / (row["worker_ms"] / row["batch_size"]), 3) if floor else None
        )
    print()
    print(
        "| batch | raw encoder ms | worker ms | of which inspection ms | encoder ÷ worker "
        "| worker msg/s ÷ raw batch-32 msg/s |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['batch_size']} | {row['encoder_ms']} | {row['worker_ms']} | {row['inspection_ms']} | "
            f"{row['encoder_share_of_worker']:.2f} | {row['worker_vs_raw_batch32'] if floor else '-'} |"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"settings": "environment", "rows": rows}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
