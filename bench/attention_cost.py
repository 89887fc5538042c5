"""What a head that attends over token vectors costs per message, side by side in one run:
the stacked heads of a bundle whose emotions head attends (default: the shipped one)
against those of a bundle whose heads read pooled features only (`--baseline`), on the
same encoder pass, for a batch of messages and for one message; and what keeping every
row's token vectors adds to the encoder pass. Rounds alternate, so noise hits both alike.

    .venv/bin/python bench/attention_cost.py --baseline /tmp/convintel-base-0.6.0 [--bundle models/convintel-base]
                                             [--batch 32] [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench.latency import load_messages  # noqa: E402
from nlp.bundle import ModelBundle, load_bundle  # noqa: E402
from nlp.encoder import Encoder  # noqa: E402
from nlp.heads import HeadStack  # noqa: E402
from nlp.token_states import TokenStates  # noqa: E402


def stack(bundle: ModelBundle) -> HeadStack:
    return HeadStack(list(bundle.heads.values()))


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=ROOT / "models" / "convintel-base")
    parser.add_argument("--baseline", type=Path, required=True, help="a bundle whose heads read pooled features only")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    attending, pooled = load_bundle(args.bundle), load_bundle(args.baseline)
    if not stack(attending).reads_tokens or stack(pooled).reads_tokens:
        parser.error("--bundle must have a head that attends over tokens and --baseline none")
    encoder = Encoder(max_seq_length=attending.manifest.encoder.max_seq_length, adapter=attending.adapter)
    with_attention, without = stack(attending), stack(pooled)
    texts = load_messages(args.batch)
    print(f"{len(texts)} messages a batch, {args.rounds} rounds, torch threads {args.threads}")

    for size in (len(texts), 1):
        times = measure(encoder, texts[:size], with_attention, without, args.rounds)
        encode_ms = median_ms(times["encode"])
        print(f"\n{size} message(s), median ms")
        for name, samples in times.items():
            print(f"  {name:<20} {median_ms(samples):8.2f}")
        extra = median_ms(times["heads + attention"]) - median_ms(times["heads"])
        extra += median_ms(times["encode + tokens"]) - encode_ms
        print(f"  attention's extra cost {extra:.2f} ms = {100 * extra / encode_ms:.1f}% of the encoder pass")


def measure(
    encoder: Encoder, batch: list[str], with_attention: HeadStack, without: HeadStack, rounds: int
) -> dict[str, list[float]]:
    """Seconds per round of each step: the encoder pass with and without every row's token
    vectors, and each head stack on its pass's output (the token rows joined included)."""
    keep = [True] * len(batch)
    plain, kept = encoder.encode(batch), encoder.encode(batch, keep)
    rows = kept.tokens or []
    times: dict[str, list[float]] = {"encode": [], "encode + tokens": [], "heads": [], "heads + attention": []}
    for _ in range(rounds):
        times["encode"].append(timed(lambda: encoder.encode(batch)))
        times["encode + tokens"].append(timed(lambda: encoder.encode(batch, keep)))
        times["heads"].append(timed(lambda: without.predict_proba(plain.features)))
        times["heads + attention"].append(
            timed(lambda: with_attention.predict_proba(kept.features, TokenStates.from_rows(rows)))  # type: ignore[arg-type]
        )
    return times


if __name__ == "__main__":
    main()
