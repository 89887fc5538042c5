"""HTTP load on the per-message endpoint, with the raw encoder as the floor, in one run.

For each encoder backend this starts `uvicorn` on 127.0.0.1 (one server process, settings
from the environment plus the backend), waits for /readyz and then:

1. measures the raw encoder in this process (same backend and thread settings, server
   idle): one message at a time, and batches of 32 (see below for when);
2. drives POST /v1/conversations/{id}/messages with a bounded asyncio client (httpx) at
   each concurrency level: throughput, p50/p95/p99 latency, errors. Each client writes
   its own conversations, 10 messages each, alternating customer and agent turns;
3. compares a message on a long conversation with one on a short one (`--long-conversation`
   messages against 10): one conversation is filled to the long length and fresh ones to 9
   messages, then single posts alternate between the two, so noise hits both alike;
4. sends `--memory-requests` more requests in ten parts, reading the server's RSS after start-up
   and after each part (warm-up levels off; a leak keeps climbing).

Last it prints each figure against the goals (GOALS below).

The raw floor is measured right before and right after each concurrency level, and the
level is compared with both (the median of all their samples): this host's speed drifts
by a third from one minute to the next. At concurrency 1 the single-message floor is
measured between the requests instead: after each reply, the raw encoder encodes the
message just sent, so each request and its floor are a second apart. Finally the
backends' raw batch-32 times are measured interleaved, round by round, for the
int8-versus-fp32 ratio.

    .venv/bin/python bench/load.py [--backends torch onnx-int8] [--concurrency 1 8 32]
                                   [--requests 400] [--memory-requests 10000]
                                   [--long-conversation 500] [--length-samples 40] [--json out.json]

The client runs on the same cores as the server, so it takes a share of the CPU (said in
the output); `uptime`'s load is printed before and after, since other work on the
machine moves every figure."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import numpy as np  # noqa: E402

from bench.server import ServerProcess  # noqa: E402
from nlp.backends import ENCODER_BACKENDS, load_encoder  # noqa: E402
from nlp.bundle import load_bundle  # noqa: E402
from nlp.encoder import SentenceEncoder  # noqa: E402
from service.settings import Settings  # noqa: E402

RAW_BATCH = 32
MEMORY_READINGS = 10
MESSAGES_PER_CONVERSATION = 10
SHORT_CONVERSATION = 10
FILL_CONCURRENCY = 8


@dataclass(frozen=True)
class Goals:
    """Issue 18's goals for one server process, checked in `print_goals`."""

    c32_of_raw_batch32: float = 0.70
    """Throughput at concurrency 32, at least this share of the raw encoder's batch-32 msg/s."""
    c1_p50_of_raw: float = 1.7
    """One caller's p50, at most this many raw single-message passes."""
    c1_p99_of_raw: float = 3.0
    long_of_short: float = 1.2
    """A message on the long conversation, at most this many times one on a 10-message one (p50)."""
    memory_growth: float = 0.05
    """RSS after the last memory part at most this much above RSS halfway (after warm-up)."""


GOALS = Goals()


def load_messages() -> list[str]:
    """The project's own customer-style messages (varied lengths, realistic text)."""
    texts = []
    for path in sorted((ROOT / "data" / "urgency").glob("messages_*.jsonl")):
        texts += [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]
    return texts


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --- raw encoder floor -----------------------------------------------------------------------


@dataclass
class Floor:
    single_ms: float
    """Median time of encoder.encode([one message])."""
    batch32_ms: float
    """Median time of encoder.encode(32 messages)."""

    @property
    def batch32_per_s(self) -> float:
        return RAW_BATCH / self.batch32_ms * 1000


@dataclass
class FloorSamples:
    """Raw encoder timings in ms, gathered around (and at concurrency 1, between) requests."""

    single: list[float]
    batch32: list[float]

    def __add__(self, other: FloorSamples) -> FloorSamples:
        return FloorSamples(self.single + other.single, self.batch32 + other.batch32)

    def floor(self) -> Floor:
        return Floor(single_ms=statistics.median(self.single), batch32_ms=statistics.median(self.batch32))


def measure_floor(encoder: SentenceEncoder, texts: list[str], *, singles: int = 40, batches: int = 6) -> FloorSamples:
    """Raw encoder timings on the load's own texts: normalise, tokenise, forward, pool."""
    encoder.encode(texts[:RAW_BATCH])  # warm
    single = [timed_encode(encoder, [texts[i % len(texts)]]) for i in range(singles)]
    batch = [
        timed_encode(encoder, [texts[(i * RAW_BATCH + k) % len(texts)] for k in range(RAW_BATCH)])
        for i in range(batches)
    ]
    return FloorSamples(single, batch)


def timed_encode(encoder: SentenceEncoder, texts: list[str]) -> float:
    """Milliseconds of one raw `encoder.encode(texts)`."""
    started = time.perf_counter()
    encoder.encode(texts)
    return (time.perf_counter() - started) * 1000


# --- HTTP load ---------------------------------------------------------------------------------


@dataclass
class LoadResult:
    concurrency: int
    requests: int
    errors: int
    seconds: float
    throughput: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    floor: Floor
    mean_batch: float | None = None
    """Messages per encoder call during the level, from the server's /metrics."""
    mean_group: float | None = None
    """Messages per store transaction (group commit) during the level; None: the server does not say."""


SIZE_HISTOGRAMS = ("convintel_encode_batch_size", "convintel_commit_group_size")
"""The server's messages-per-call histograms: encoder calls, store transactions."""


def size_totals(base_url: str) -> dict[str, tuple[float, float]]:
    """For each of `SIZE_HISTOGRAMS` the server has: (calls, messages) so far."""
    from prometheus_client.parser import text_string_to_metric_families

    totals: dict[str, tuple[float, float]] = {}
    for family in text_string_to_metric_families(httpx.get(f"{base_url}/metrics", timeout=10).text):
        if family.name in SIZE_HISTOGRAMS:
            calls = sum(sample.value for sample in family.samples if sample.name.endswith("_count"))
            messages = sum(sample.value for sample in family.samples if sample.name.endswith("_sum"))
            totals[family.name] = (calls, messages)
    return totals


def per(mean: float | None) -> str:
    """A messages-per-call figure for the report ("-": not reported by the server)."""
    return "-" if mean is None else f"{mean:.1f}"


def mean_size(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]], name: str) -> float | None:
    """Messages per call of histogram `name` between two `size_totals` readings."""
    if name not in after:
        return None
    calls_before, messages_before = before.get(name, (0.0, 0.0))
    return (after[name][1] - messages_before) / max(after[name][0] - calls_before, 1)


async def drive(
    base_url: str,
    texts: list[str],
    *,
    concurrency: int,
    requests: int,
    run_id: str,
    after_reply: Callable[[str], None] | None = None,
) -> tuple[list[float], int, float]:
    """`requests` POSTs from `concurrency` clients, each waiting for its reply before the
    next (and calling `after_reply` with the text it sent, if given). Returns (latencies
    in ms, errors, wall seconds)."""
    latencies: list[float] = []
    errors = 0
    issued = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120.0) as client:

        async def worker(number: int) -> None:
            nonlocal errors, issued
            sent = 0
            while issued < requests:
                index = issued
                issued += 1
                conversation = f"{run_id}-c{number}-{sent // MESSAGES_PER_CONVERSATION}"
                body = {"role": "customer" if sent % 2 == 0 else "agent", "text": texts[index % len(texts)]}
                started = time.perf_counter()
                try:
                    response = await client.post(f"/v1/conversations/{conversation}/messages", json=body)
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append((time.perf_counter() - started) * 1000)
                errors += not ok
                sent += 1
                if after_reply is not None:
                    after_reply(body["text"])

        started = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(concurrency)))
        return latencies, errors, time.perf_counter() - started


def run_level(
    base_url: str, texts: list[str], concurrency: int, requests: int, encoder: SentenceEncoder, run_id: str
) -> LoadResult:
    """One concurrency level, with the raw floor measured before and after it (and at
    concurrency 1, between its requests)."""
    asyncio.run(
        drive(base_url, texts, concurrency=concurrency, requests=max(2 * concurrency, 20), run_id=f"{run_id}-warm")
    )
    samples = measure_floor(encoder, texts)
    between: list[float] = []
    after_reply = (lambda text: between.append(timed_encode(encoder, [text]))) if concurrency == 1 else None
    sizes_before = size_totals(base_url)
    latencies, errors, seconds = asyncio.run(
        drive(base_url, texts, concurrency=concurrency, requests=requests, run_id=run_id, after_reply=after_reply)
    )
    sizes_after = size_totals(base_url)
    samples = samples + measure_floor(encoder, texts)
    if between:
        samples.single = between
    values = np.array(latencies)
    return LoadResult(
        concurrency=concurrency,
        requests=len(latencies),
        errors=errors,
        seconds=round(seconds, 2),
        throughput=len(latencies) / seconds,
        p50_ms=float(np.percentile(values, 50)),
        p95_ms=float(np.percentile(values, 95)),
        p99_ms=float(np.percentile(values, 99)),
        floor=samples.floor(),
        mean_batch=mean_size(sizes_before, sizes_after, "convintel_encode_batch_size"),
        mean_group=mean_size(sizes_before, sizes_after, "convintel_commit_group_size"),
    )


# --- long against short conversations ------------------------------------------------------


@dataclass
class LengthResult:
    long_messages: int
    samples: int
    long_p50_ms: float
    short_p50_ms: float
    errors: int

    @property
    def ratio(self) -> float:
        return self.long_p50_ms / self.short_p50_ms


async def fill(client: httpx.AsyncClient, conversation: str, texts: list[str], count: int, offset: int) -> int:
    """Post `count` messages to `conversation` (alternating customer and agent turns), a few
    at a time; the number of errors."""
    errors = 0
    for start in range(0, count, FILL_CONCURRENCY):
        bodies = [
            {"role": "customer" if k % 2 == 0 else "agent", "text": texts[(offset + k) % len(texts)]}
            for k in range(start, min(start + FILL_CONCURRENCY, count))
        ]
        replies = await asyncio.gather(
            *(client.post(f"/v1/conversations/{conversation}/messages", json=body) for body in bodies)
        )
        errors += sum(reply.status_code != 200 for reply in replies)
    return errors


async def compare_lengths(
    base_url: str, texts: list[str], long_messages: int, samples: int, run_id: str
) -> LengthResult:
    """p50 of a customer message posted to a conversation of about `long_messages` messages
    against one posted as the 10th message of a fresh conversation, alternating one by one."""
    long_id = f"{run_id}-long"
    async with httpx.AsyncClient(base_url=base_url, timeout=120.0) as client:
        errors = await fill(client, long_id, texts, long_messages - 1, 0)
        for n in range(samples):
            errors += await fill(client, f"{run_id}-short-{n}", texts, SHORT_CONVERSATION - 1, n)
        long_ms, short_ms = [], []
        for n in range(samples):
            for conversation, into in ((long_id, long_ms), (f"{run_id}-short-{n}", short_ms)):
                body = {"role": "customer", "text": texts[(7 * n) % len(texts)]}
                started = time.perf_counter()
                reply = await client.post(f"/v1/conversations/{conversation}/messages", json=body)
                into.append((time.perf_counter() - started) * 1000)
                errors += reply.status_code != 200
    return LengthResult(long_messages, samples, statistics.median(long_ms), statistics.median(short_ms), errors)


# --- one backend -----------------------------------------------------------------------------


@dataclass
class BackendRun:
    backend: str
    startup_s: float
    rss_after_startup_mib: float
    rss_after_memory_run_mib: float | None
    memory_requests: int
    levels: list[LoadResult]
    rss_series_mib: list[tuple[int, float]]  # (requests sent in the memory run so far, RSS)
    lengths: LengthResult | None = None
    memory_errors: int = 0


def encoder_for(backend: str, settings: Settings) -> SentenceEncoder:
    """The encoder the server builds for `backend`, with the same settings."""
    bundle = load_bundle(settings.model_path)
    return load_encoder(
        replace(settings.encoder_config(), backend=backend),
        max_seq_length=bundle.manifest.encoder.max_seq_length,
        adapter=bundle.adapter,
    )


def run_backend(backend: str, args: argparse.Namespace, texts: list[str], settings: Settings) -> BackendRun:
    encoder = encoder_for(backend, settings)
    with tempfile.TemporaryDirectory() as tmp:
        # The ONNX graph is already cached (the encoder above exported it if needed):
        # start-up is timed warm. The one-off export time is in the cache's .json.
        started = time.perf_counter()
        server = ServerProcess.start(
            Path(tmp) / "server.log",
            {
                "CONVINTEL_ENCODER_BACKEND": backend,
                "CONVINTEL_DB_PATH": str(Path(tmp) / "load.sqlite3"),
                "CONVINTEL_LOG_LEVEL": "warning",
                **args.server_env,
            },
            timeout_s=600,
        )
        startup_s = time.perf_counter() - started
        try:
            base_url = server.url
            rss_startup = server.rss_bytes() / 2**20
            print(f"[{backend}] ready in {startup_s:.1f} s, RSS {rss_startup:.0f} MiB", file=sys.stderr)
            levels = []
            for concurrency in args.concurrency:
                requests = args.requests if concurrency > 1 else max(args.requests // 2, 50)
                result = run_level(base_url, texts, concurrency, requests, encoder, f"{backend}-{concurrency}")
                floor = result.floor
                levels.append(result)
                print(
                    f"[{backend}] c={concurrency}: {result.throughput:.1f} req/s, p50 {result.p50_ms:.1f} ms, "
                    f"p99 {result.p99_ms:.1f} ms, errors {result.errors}; raw single {floor.single_ms:.1f} ms, "
                    f"batch-32 {floor.batch32_ms:.1f} ms; {per(result.mean_batch)} messages per encoder call, "
                    f"{per(result.mean_group)} per commit",
                    file=sys.stderr,
                )
            lengths = None
            if args.long_conversation:
                lengths = asyncio.run(
                    compare_lengths(base_url, texts, args.long_conversation, args.length_samples, f"{backend}-len")
                )
                print(
                    f"[{backend}] message on a {lengths.long_messages}-message conversation: p50 "
                    f"{lengths.long_p50_ms:.1f} ms; on a {SHORT_CONVERSATION}-message one: "
                    f"{lengths.short_p50_ms:.1f} ms "
                    f"({lengths.ratio:.2f}x, {lengths.errors} errors)",
                    file=sys.stderr,
                )
            rss_after, series, errors = None, [], 0
            if args.memory_requests:
                # In tenths, reading RSS after each: warm-up levels off, growth keeps climbing.
                sent, errors, seconds = 0, 0, 0.0
                for tenth in range(MEMORY_READINGS):
                    part = args.memory_requests * (tenth + 1) // MEMORY_READINGS - sent
                    latencies, part_errors, part_seconds = asyncio.run(
                        drive(
                            base_url,
                            texts,
                            concurrency=max(args.concurrency),
                            requests=part,
                            run_id=f"{backend}-memory-{tenth}",
                        )
                    )
                    sent, errors, seconds = sent + len(latencies), errors + part_errors, seconds + part_seconds
                    series.append((sent, round(server.rss_bytes() / 2**20, 1)))
                rss_after = series[-1][1]
                print(
                    f"[{backend}] {sent} more requests in {seconds:.0f} s ({errors} errors): RSS "
                    + ", ".join(f"{mib:.0f}" for _, mib in series)
                    + " MiB",
                    file=sys.stderr,
                )
        finally:
            server.process.terminate()
            server.process.wait(timeout=30)
    return BackendRun(
        backend=backend,
        startup_s=round(startup_s, 2),
        rss_after_startup_mib=round(rss_startup, 1),
        rss_after_memory_run_mib=round(rss_after, 1) if rss_after else None,
        memory_requests=args.memory_requests,
        levels=levels,
        rss_series_mib=series,
        lengths=lengths,
        memory_errors=errors,
    )


def interleaved_batch_ratio(
    backends: list[str], texts: list[str], settings: Settings, rounds: int = 8
) -> dict[str, float]:
    """Median raw batch-32 ms per backend, measured round-robin in one process."""
    encoders = {b: encoder_for(b, settings) for b in backends}
    times: dict[str, list[float]] = {b: [] for b in backends}
    for encoder in encoders.values():
        encoder.encode(texts[:RAW_BATCH])
    for i in range(rounds):
        chunk = [texts[(i * RAW_BATCH + k) % len(texts)] for k in range(RAW_BATCH)]
        for backend, encoder in encoders.items():
            started = time.perf_counter()
            encoder.encode(chunk)
            times[backend].append((time.perf_counter() - started) * 1000)
    return {b: statistics.median(t) for b, t in times.items()}


# --- report ------------------------------------------------------------------------------------


def print_report(runs: list[BackendRun], batch_ms: dict[str, float], meta: dict) -> None:
    print(
        f"load average before {meta['load_before']}, after {meta['load_after']}; {meta['cpus']} CPUs; "
        f"client and server share them"
    )
    print(
        f"settings: torch_threads={meta['torch_threads']} onnx_threads={meta['onnx_threads']} "
        f"microbatch_max_messages={meta['max_messages']} microbatch_max_wait_ms={meta['max_wait_ms']}"
        f"{' server env: ' + str(meta['server_env']) if meta['server_env'] else ''}"
    )
    print()
    print(
        "| backend | concurrency | requests | errors | req/s | p50 ms | p95 ms | p99 ms | raw 1-msg ms | "
        "raw b32 ms | p50/raw | p99/raw | req/s / raw b32 msg/s | messages per encoder call | messages per commit |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        for level in run.levels:
            f = level.floor
            print(
                f"| {run.backend} | {level.concurrency} | {level.requests} | {level.errors} | "
                f"{level.throughput:.1f} | {level.p50_ms:.1f} | {level.p95_ms:.1f} | {level.p99_ms:.1f} | "
                f"{f.single_ms:.1f} | {f.batch32_ms:.1f} | {level.p50_ms / f.single_ms:.2f} | "
                f"{level.p99_ms / f.single_ms:.2f} | {level.throughput / f.batch32_per_s:.2f} | "
                f"{per(level.mean_batch)} | {per(level.mean_group)} |"
            )
    print()
    print("| backend | start-up s (graph cached) | RSS after start-up MiB | RSS after more requests MiB |")
    print("|---|---:|---:|---:|")
    for run in runs:
        after = (
            f"{run.rss_after_memory_run_mib:.0f} (+{run.memory_requests} requests)"
            if run.rss_after_memory_run_mib
            else "-"
        )
        print(f"| {run.backend} | {run.startup_s:.1f} | {run.rss_after_startup_mib:.0f} | {after} |")
    for run in runs:
        if run.rss_series_mib:
            print(
                f"{run.backend} RSS during the memory run: {run.rss_after_startup_mib:.0f} MiB at start-up, then "
                + ", ".join(f"{mib:.0f} after {sent:,}" for sent, mib in run.rss_series_mib)
            )
    if batch_ms:
        print()
        reference = batch_ms.get("torch")
        print(
            "raw batch-32, interleaved: "
            + ", ".join(
                f"{b} {ms:.0f} ms ({RAW_BATCH / ms * 1000:.0f} msg/s"
                + (f", {reference / ms:.2f}x torch)" if reference else ")")
                for b, ms in batch_ms.items()
            )
        )


def memory_growth(run: BackendRun) -> float | None:
    """RSS after the last part over RSS halfway through the memory run, minus 1."""
    series = [mib for _, mib in run.rss_series_mib]
    if len(series) < 2:
        return None
    return series[-1] / series[len(series) // 2 - 1] - 1


def print_goals(runs: list[BackendRun], goals: Goals = GOALS) -> None:
    """Each measured figure against its goal: met, or not met."""

    def line(label: str, value: str, met: bool) -> None:
        print(f"| {label} | {value} | {'met' if met else '**not met**'} |")

    print()
    print("Against the goals (one sitting; this host's timings are noisy):")
    print()
    print("| backend: goal | measured | |")
    print("|---|---:|---|")
    for run in runs:
        name = run.backend
        by_concurrency = {level.concurrency: level for level in run.levels}
        if 32 in by_concurrency:
            level = by_concurrency[32]
            share = level.throughput / level.floor.batch32_per_s
            line(
                f"{name}: c=32 ≥ {goals.c32_of_raw_batch32:.0%} of raw batch-32",
                f"{share:.0%}",
                share >= goals.c32_of_raw_batch32,
            )
        if 1 in by_concurrency:
            level = by_concurrency[1]
            p50, p99 = level.p50_ms / level.floor.single_ms, level.p99_ms / level.floor.single_ms
            line(f"{name}: c=1 p50 ≤ {goals.c1_p50_of_raw}x raw pass", f"{p50:.2f}x", p50 <= goals.c1_p50_of_raw)
            line(f"{name}: c=1 p99 ≤ {goals.c1_p99_of_raw}x raw pass", f"{p99:.2f}x", p99 <= goals.c1_p99_of_raw)
        if run.lengths is not None:
            ratio = run.lengths.ratio
            line(
                f"{name}: {run.lengths.long_messages}-message conversation ≤ {goals.long_of_short}x a "
                f"{SHORT_CONVERSATION}-message one (p50)",
                f"{ratio:.2f}x",
                ratio <= goals.long_of_short,
            )
        errors = sum(level.errors for level in run.levels) + run.memory_errors
        errors += run.lengths.errors if run.lengths else 0
        line(f"{name}: zero errors", str(errors), errors == 0)
        growth = memory_growth(run)
        if growth is not None:
            line(
                f"{name}: memory flat over {run.memory_requests:,} requests "
                f"(last ≤ halfway + {goals.memory_growth:.0%})",
                f"{growth:+.1%}",
                growth <= goals.memory_growth,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", default=["torch", "onnx-int8"], choices=ENCODER_BACKENDS)
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=400, help="measured requests per level (half at c=1)")
    parser.add_argument("--memory-requests", type=int, default=10_000, help="requests between the two RSS readings")
    parser.add_argument(
        "--long-conversation", type=int, default=500, help="messages of the long conversation (0: skip the comparison)"
    )
    parser.add_argument("--length-samples", type=int, default=40, help="posts to each of long and short conversations")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an environment variable for the server only (repeatable), so a setting is compared "
        "against the same raw floor in this process",
    )
    args = parser.parse_args()
    if bad := [item for item in args.server_env if "=" not in item]:
        parser.error(f"--server-env wants KEY=VALUE, not {bad[0]!r}")
    args.server_env = dict(item.split("=", 1) for item in args.server_env)
    # SIGTERM ends the run through the `finally` that stops the server it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    settings = Settings()
    texts = load_messages()
    meta = {
        "load_before": load_average(),
        "cpus": os.cpu_count(),
        "torch_threads": settings.torch_threads,
        "onnx_threads": settings.onnx_threads,
        "max_messages": settings.microbatch_max_messages,
        "max_wait_ms": settings.microbatch_max_wait_ms,
        "server_env": args.server_env,
    }
    runs = [run_backend(backend, args, texts, settings) for backend in args.backends]
    batch_ms = interleaved_batch_ratio(args.backends, texts, settings) if len(args.backends) > 1 else {}
    meta["load_after"] = load_average()
    print_report(runs, batch_ms, meta)
    print_goals(runs)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {"meta": meta, "runs": [asdict(run) for run in runs], "raw_batch32_ms_interleaved": batch_ms}, indent=2
            )
        )


if __name__ == "__main__":
    main()
