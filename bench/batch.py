"""Archive scoring throughput, side by side in one run, on a generated archive
(`service.batch.synthetic`: the team's escalation conversations replayed with new ids and
times, some customer turns swapped for other labelled messages):

- convintel: `convintel score` end to end in-process (read JSONL, validate, chunk, encode,
  heads, spaCy cues and redaction, conversation summaries, write JSONL, fsync, checkpoint);
- ceiling: the raw encoder (`Encoder.encode`: tokenise, transformer, pooling, nothing else)
  on the same messages, in the same chunks, at the same batch size. It runs inside the
  same `convintel score` run, on each chunk right before that chunk is scored, and its time
  is taken out of convintel's: the two alternate every few seconds, so the machine's speed,
  which drifts by a third from minute to minute on a shared host, moves both alike;
- with `--workers N` (default 2): `convintel score --workers N` (worker processes, each
  with an equal share of the torch threads), against the raw encoder run the same way: N
  processes, the same chunks, the same threads each. Both pools are started and warmed
  once, before the rounds (start-up is not in the rates);
- naive: the same analyses done one message at a time (one encoder call per message, then
  the conversation summary), as a loop over the per-message API would;
- with `--unscreened`, also `convintel score` with spaCy's tagger, parser and NER on every
  message (`TextInspector(screen_tokens=False)`, the reference the token screen must equal).

Rounds repeat all of it; the table gives each one's best round (the least disturbed by
other load) and the median, and each round's own convintel / ceiling ratio. Beside wall-clock rates it
gives messages per CPU-second of this process (all threads): on a machine shared with
other jobs, that ratio moves far less than the wall-clock one.

Chunks are `--chunk-messages` (128) messages, for every row alike, so that the worker
pool has enough chunks to share out. Messages per CPU-second are this process's CPU time,
so they are left out for the worker rows (their work is in other processes).

    .venv/bin/python bench/batch.py [--conversations 300] [--rounds 3] [--workers 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import multiprocessing  # noqa: E402
from concurrent.futures import ProcessPoolExecutor, wait  # noqa: E402

import torch  # noqa: E402

from nlp.analyzer import Analyzer  # noqa: E402
from nlp.archive import FileFormat, RowReader  # noqa: E402
from nlp.backends import load_encoder  # noqa: E402
from nlp.bundle import load_bundle  # noqa: E402
from nlp.encoder import SentenceEncoder  # noqa: E402
from nlp.inspection import build_inspector  # noqa: E402
from nlp.message_ids import assign_message_ids  # noqa: E402
from nlp.signals import Turn  # noqa: E402
from service.batch.engines import LocalEngine, ScoredChunk, WorkerPoolEngine, worker_settings  # noqa: E402
from service.batch.records import read_conversations  # noqa: E402
from service.batch.runner import ScoreJob, run_score  # noqa: E402
from service.batch.scoring import Chunk, make_chunks  # noqa: E402
from service.batch.synthetic import synthetic_transcripts, write_rows  # noqa: E402
from service.runtime import load_analyzer  # noqa: E402
from service.settings import Settings  # noqa: E402


class PairedEngine(LocalEngine):
    """The local engine, timing the raw encoder on each chunk's messages next to scoring
    that chunk: the ceiling, measured seconds from what it is compared with. The order
    alternates from chunk to chunk (and round to round), so neither side is always the one
    that finds the caches cold."""

    def __init__(self, analyzer: Analyzer, ceiling_first: bool) -> None:
        super().__init__(analyzer)
        self.ceiling_first = ceiling_first
        self.ceiling_wall_s = 0.0
        self.ceiling_cpu_s = 0.0

    def score(self, chunks: Iterator[Chunk]) -> Iterator[ScoredChunk]:
        for position, chunk in enumerate(chunks):
            texts = [m.text for c in chunk.conversations for m in c.transcript.messages]
            ceiling_first = self.ceiling_first == (position % 2 == 0)
            if ceiling_first:
                self._ceiling(texts)
            yield from super().score(iter([chunk]))
            if not ceiling_first:
                self._ceiling(texts)

    def _ceiling(self, texts: list[str]) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        self.analyzer.encoder.encode(texts)
        self.ceiling_wall_s += time.perf_counter() - wall
        self.ceiling_cpu_s += time.process_time() - cpu


class KeptOpen:
    """An engine that `run_score` may close: it stays open for the next round."""

    def __init__(self, engine: WorkerPoolEngine) -> None:
        self.engine, self.name = engine, engine.name

    def score(self, chunks: Iterator[Chunk]) -> Iterator[ScoredChunk]:
        return self.engine.score(chunks)

    def close(self) -> None:
        pass


_raw_encoder: SentenceEncoder | None = None


def _load_raw_encoder(settings_json: str) -> None:
    """Worker initializer for the raw pool: the encoder a scoring worker would load."""
    global _raw_encoder
    settings = Settings.model_validate_json(settings_json)
    bundle = load_bundle(settings.model_path)
    _raw_encoder = load_encoder(
        settings.encoder_config(), max_seq_length=bundle.manifest.encoder.max_seq_length, adapter=bundle.adapter
    )


def _raw_encode(texts: list[str]) -> int:
    assert _raw_encoder is not None
    _raw_encoder.encode(texts)
    return len(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=300)
    parser.add_argument("--naive-share", type=float, default=0.25, help="share of the archive the naive loop runs on")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--unscreened", action="store_true", help="also time scoring without the token screen")
    parser.add_argument(
        "--workers", type=int, default=2, help="worker processes for the worker rows (0: leave them out)"
    )
    parser.add_argument("--chunk-messages", type=int, default=128, help="messages per chunk, every row alike")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()

    settings = Settings(_env_file=None, batch_chunk_messages=args.chunk_messages)
    analyzer = load_analyzer(settings)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "archive.jsonl"
        write_rows(synthetic_transcripts(args.conversations), archive)
        conversations = [item for item in read_conversations(iter(RowReader(archive, FileFormat.jsonl)), settings)]
        total_messages = sum(len(c.transcript.messages) for c in conversations)
        chunk_texts = [
            [m.text for c in chunk.conversations for m in c.transcript.messages]
            for chunk in make_chunks(iter(conversations), settings.batch_chunk_messages)
        ]
        naive_set = conversations[: max(1, int(len(conversations) * args.naive_share))]
        naive_messages = sum(len(c.transcript.messages) for c in naive_set)

        # Warm-up: first calls pay for lazy initialisation in torch and spaCy.
        analyzer.analyze_batch([c.transcript for c in conversations[:8]])

        keys = (
            ["convintel", "ceiling"]
            + (["workers", "workers_ceiling"] if args.workers else [])
            + ["naive"]
            + (["unscreened"] if args.unscreened else [])
        )
        rates: dict[str, list[float]] = {key: [] for key in keys}
        cpu_rates: dict[str, list[float]] = {key: [] for key in keys}
        unscreened = (
            Analyzer(
                analyzer.encoder,
                analyzer.bundle,
                analyzer.policy,
                inspector=build_inspector(settings.analyzer_config(screen_tokens=False).inspection),
            )
            if args.unscreened
            else None
        )

        def record(
            key: str, messages: int, wall_started: float, cpu_started: float, *, minus: tuple[float, float] = (0.0, 0.0)
        ) -> None:
            rates[key].append(messages / (time.perf_counter() - wall_started - minus[0]))
            cpu_rates[key].append(messages / (time.process_time() - cpu_started - minus[1]))

        workers = raw_pool = None
        if args.workers:
            workers = WorkerPoolEngine(settings, args.workers)
            raw_pool = ProcessPoolExecutor(
                args.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_load_raw_encoder,
                initargs=(worker_settings(settings, args.workers).model_dump_json(),),
            )
            warm = Path(tmp) / "warm.jsonl"
            write_rows(synthetic_transcripts(max(8, args.conversations // 3)), warm)
            run_score(
                ScoreJob(input=warm, output=Path(tmp) / "warm-scored.jsonl", progress=False),
                settings,
                lambda: KeptOpen(workers),
            )
            wait([raw_pool.submit(_raw_encode, chunk_texts[0][:8]) for _ in range(2 * args.workers)])

        def run_workers(round_index: int) -> None:
            started = time.perf_counter()
            summary = run_score(
                ScoreJob(input=archive, output=Path(tmp) / f"workers-{round_index}.jsonl", progress=False),
                settings,
                lambda: KeptOpen(workers),
            )
            rates["workers"].append(summary.messages / (time.perf_counter() - started))

        def run_workers_ceiling() -> None:
            started = time.perf_counter()
            wait([raw_pool.submit(_raw_encode, texts) for texts in chunk_texts])
            rates["workers_ceiling"].append(total_messages / (time.perf_counter() - started))

        for round_index in range(args.rounds):
            output = Path(tmp) / f"scored-{round_index}.jsonl"
            engine = PairedEngine(analyzer, ceiling_first=round_index % 2 == 0)
            started, cpu = time.perf_counter(), time.process_time()
            summary = run_score(
                ScoreJob(input=archive, output=output, progress=False), settings, lambda engine=engine: engine
            )
            record("convintel", summary.messages, started, cpu, minus=(engine.ceiling_wall_s, engine.ceiling_cpu_s))
            rates["ceiling"].append(total_messages / engine.ceiling_wall_s)
            cpu_rates["ceiling"].append(total_messages / engine.ceiling_cpu_s)
            if workers is not None:  # the two worker runs in alternating order
                first, second = ((lambda index=round_index: run_workers(index)), run_workers_ceiling)
                for step in (first, second) if round_index % 2 == 0 else (second, first):
                    step()

            started, cpu = time.perf_counter(), time.process_time()
            for conversation in naive_set:
                transcript = conversation.transcript
                ids = assign_message_ids([m.id for m in transcript.messages])
                analyses = [analyzer.analyze_messages([m], [mid])[0] for m, mid in zip(transcript.messages, ids)]
                turns = [
                    Turn(id=a.id, role=m.role, text=m.text, timestamp=m.timestamp)
                    for a, m in zip(analyses, transcript.messages)
                ]
                analyzer.summarize(analyses, turns, transcript.channel)
            record("naive", naive_messages, started, cpu)

            if unscreened is not None:
                started, cpu = time.perf_counter(), time.process_time()
                summary = run_score(
                    ScoreJob(input=archive, output=Path(tmp) / f"unscreened-{round_index}.jsonl", progress=False),
                    settings,
                    lambda: LocalEngine(unscreened),
                )
                record("unscreened", summary.messages, started, cpu)
            print(
                f"round {round_index + 1}: " + ", ".join(f"{k} {v[-1]:.1f} msg/s" for k, v in rates.items()),
                file=sys.stderr,
            )
        if workers is not None:
            workers.close()
            raw_pool.shutdown()

    best = {k: max(v) for k, v in rates.items()}
    median = {k: statistics.median(v) for k, v in rates.items()}
    cpu_best = {k: max(v) for k, v in cpu_rates.items() if v}
    figures = {
        "conversations": len(conversations),
        "messages": total_messages,
        "naive_messages": naive_messages,
        "chunk_messages": settings.batch_chunk_messages,
        "encode_batch_size": settings.encode_batch_size,
        "torch_threads": torch.get_num_threads(),
        "detect_cues": settings.detect_cues,
        "redact_pii": settings.redact_pii,
        "rounds": rates,
        "cpu_rounds": cpu_rates,
        "best": best,
        "median": median,
        "cpu_best": cpu_best,
        "share_of_ceiling": {
            "best": best["convintel"] / best["ceiling"],
            "median": median["convintel"] / median["ceiling"],
            "cpu": cpu_best["convintel"] / cpu_best["ceiling"],
        },
    }
    print(
        f"{len(conversations)} conversations, {total_messages} messages; chunks of {settings.batch_chunk_messages} "
        f"messages, encoder batch {settings.encode_batch_size}, torch threads {torch.get_num_threads()}"
    )
    print(f"{'':40}{'best msg/s':>12}{'median':>10}{'vs ceiling':>12}{'msg/CPU-s':>11}{'vs ceiling':>12}")
    labels = {
        "convintel": "convintel score (end to end)",
        "ceiling": "raw encoder, same batches (ceiling)",
        "workers": f"convintel score --workers {args.workers}",
        "workers_ceiling": f"raw encoder, {args.workers} processes",
        "naive": "naive loop, one message at a time",
        "unscreened": "convintel score, spaCy on every message",
    }
    for key, label in ((k, labels[k]) for k in keys):
        cpu = (
            f"{cpu_best[key]:11.1f}{cpu_best[key] / cpu_best['ceiling']:12.1%}"
            if key in cpu_best
            else f"{'-':>11}{'-':>12}"
        )
        print(f"{label:40}{best[key]:12.1f}{median[key]:10.1f}{best[key] / best['ceiling']:12.1%}{cpu}")

    def per_round(numerator: str, denominator: str) -> None:
        # Each round's own ratio compares runs seconds apart: the steadiest wall-clock figure.
        paired = [n / d for n, d in zip(rates[numerator], rates[denominator])]
        figures["share_of_ceiling"][f"{numerator}/{denominator}"] = paired
        print(
            f"{labels[numerator]} / {labels[denominator]}, round by round: "
            + ", ".join(f"{x:.1%}" for x in paired)
            + f" (median {statistics.median(paired):.1%})"
        )

    per_round("convintel", "ceiling")
    if args.workers:
        figures["share_of_ceiling"]["workers_best"] = best["workers"] / best["ceiling"]
        per_round("workers", "ceiling")
        per_round("workers", "workers_ceiling")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
