"""Archive scoring throughput, side by side in one run, on a generated archive
(`service.batch.synthetic`: the team's escalation conversations replayed with new ids and
times, some customer turns swapped for other labelled messages):

- convintel: `convintel score` end to end in-process (read JSONL, validate, chunk, encode,
  heads, spaCy cues and redaction, conversation summaries, write JSONL, fsync, checkpoint);
- ceiling: the raw encoder (`Encoder.encode`: tokenise, transformer, pooling, nothing else)
  on the same messages, in the same chunks, at the same batch size;
- naive: the same analyses done one message at a time (one encoder call per message, then
  the conversation summary), as a loop over the per-message API would;
- with `--unscreened`, also `convintel score` with spaCy's tagger, parser and NER on every
  message (`TextInspector(screen_tokens=False)`, the reference the token screen must equal).

Rounds interleave the three, so machine noise hits them alike; the table gives each one's
best round (the least disturbed by other load) and the median. Beside wall-clock rates it
gives messages per CPU-second of this process (all threads): on a machine shared with
other jobs, that ratio moves far less than the wall-clock one.

    .venv/bin/python bench/batch.py [--conversations 300] [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from nlp.analyzer import Analyzer, assign_message_ids  # noqa: E402
from nlp.signals import Turn  # noqa: E402
from service.app import build_inspector, load_analyzer  # noqa: E402
from service.batch.engines import LocalEngine  # noqa: E402
from service.batch.records import FileFormat, RowReader, read_conversations  # noqa: E402
from service.batch.runner import ScoreJob, run_score  # noqa: E402
from service.batch.scoring import make_chunks  # noqa: E402
from service.batch.synthetic import synthetic_transcripts, write_rows  # noqa: E402
from service.settings import Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=300)
    parser.add_argument("--naive-share", type=float, default=0.25, help="share of the archive the naive loop runs on")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--unscreened", action="store_true", help="also time scoring without the token screen")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()

    settings = Settings(_env_file=None)
    analyzer = load_analyzer(settings)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "archive.jsonl"
        write_rows(synthetic_transcripts(args.conversations), archive)
        conversations = [item for item in read_conversations(iter(RowReader(archive, FileFormat.jsonl)), settings)]
        chunks = list(make_chunks(iter(conversations), settings.batch_chunk_messages))
        chunk_texts = [[m.text for c in chunk.conversations for m in c.transcript.messages] for chunk in chunks]
        total_messages = sum(len(t) for t in chunk_texts)
        naive_set = conversations[: max(1, int(len(conversations) * args.naive_share))]
        naive_messages = sum(len(c.transcript.messages) for c in naive_set)

        # Warm-up: first calls pay for lazy initialisation in torch and spaCy.
        analyzer.analyze_batch([c.transcript for c in conversations[:8]])

        keys = ["convintel", "ceiling", "naive"] + (["unscreened"] if args.unscreened else [])
        rates: dict[str, list[float]] = {key: [] for key in keys}
        cpu_rates: dict[str, list[float]] = {key: [] for key in keys}
        unscreened = Analyzer(analyzer.encoder, analyzer.bundle, analyzer.policy,
                              inspector=build_inspector(settings, screen_tokens=False)) if args.unscreened else None

        def record(key: str, messages: int, wall_started: float, cpu_started: float) -> None:
            rates[key].append(messages / (time.perf_counter() - wall_started))
            cpu_rates[key].append(messages / (time.process_time() - cpu_started))

        for round_index in range(args.rounds):
            output = Path(tmp) / f"scored-{round_index}.jsonl"
            started, cpu = time.perf_counter(), time.process_time()
            summary = run_score(ScoreJob(input=archive, output=output, progress=False), settings,
                                lambda: LocalEngine(analyzer))
            record("convintel", summary.messages, started, cpu)

            started, cpu = time.perf_counter(), time.process_time()
            for texts in chunk_texts:
                analyzer.encoder.encode(texts)
            record("ceiling", total_messages, started, cpu)

            started, cpu = time.perf_counter(), time.process_time()
            for conversation in naive_set:
                transcript = conversation.transcript
                ids = assign_message_ids([m.id for m in transcript.messages])
                analyses = [analyzer.analyze_messages([m], [mid])[0] for m, mid in zip(transcript.messages, ids)]
                turns = [Turn(id=a.id, role=m.role, text=m.text, timestamp=m.timestamp)
                         for a, m in zip(analyses, transcript.messages)]
                analyzer.summarize(analyses, turns, transcript.channel)
            record("naive", naive_messages, started, cpu)

            if unscreened is not None:
                started, cpu = time.perf_counter(), time.process_time()
                summary = run_score(ScoreJob(input=archive, output=Path(tmp) / f"unscreened-{round_index}.jsonl",
                                             progress=False), settings, lambda: LocalEngine(unscreened))
                record("unscreened", summary.messages, started, cpu)
            print(f"round {round_index + 1}: " + ", ".join(f"{k} {v[-1]:.1f} msg/s" for k, v in rates.items()),
                  file=sys.stderr)

    best = {k: max(v) for k, v in rates.items()}
    median = {k: statistics.median(v) for k, v in rates.items()}
    cpu_best = {k: max(v) for k, v in cpu_rates.items()}
    figures = {
        "conversations": len(conversations), "messages": total_messages, "naive_messages": naive_messages,
        "chunk_messages": settings.batch_chunk_messages, "encode_batch_size": settings.encode_batch_size,
        "torch_threads": torch.get_num_threads(), "detect_cues": settings.detect_cues, "redact_pii": settings.redact_pii,
        "rounds": rates, "cpu_rounds": cpu_rates, "best": best, "median": median, "cpu_best": cpu_best,
        "share_of_ceiling": {"best": best["convintel"] / best["ceiling"],
                             "median": median["convintel"] / median["ceiling"],
                             "cpu": cpu_best["convintel"] / cpu_best["ceiling"]},
    }
    print(f"{len(conversations)} conversations, {total_messages} messages; chunks of {settings.batch_chunk_messages} "
          f"messages, encoder batch {settings.encode_batch_size}, torch threads {torch.get_num_threads()}")
    print(f"{'':40}{'best msg/s':>12}{'median':>10}{'vs ceiling':>12}{'msg/CPU-s':>11}{'vs ceiling':>12}")
    labels = {"convintel": "convintel score (end to end)", "ceiling": "raw encoder, same batches (ceiling)",
              "naive": "naive loop, one message at a time",
              "unscreened": "convintel score, spaCy on every message"}
    for key, label in ((k, labels[k]) for k in keys):
        print(f"{label:40}{best[key]:12.1f}{median[key]:10.1f}{best[key] / best['ceiling']:12.1%}"
              f"{cpu_best[key]:11.1f}{cpu_best[key] / cpu_best['ceiling']:12.1%}")
    # Each round's own ratio compares runs seconds apart: the steadiest wall-clock figure.
    paired = [c / r for c, r in zip(rates["convintel"], rates["ceiling"])]
    figures["share_of_ceiling"]["per_round"] = paired
    print("convintel / ceiling, round by round: " + ", ".join(f"{x:.1%}" for x in paired)
          + f" (median {statistics.median(paired):.1%})")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
