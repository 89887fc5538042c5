"""Bounded soak: the real server (`convintel serve` on 127.0.0.1, its own temporary
database) under a steady, open-loop request rate for a fixed time, with a mix of valid
and invalid requests. Reports answers by status (and any that differ from the expected
one), p50/p99 latency per time window, and the server's resident memory over time.

Open loop: requests start on schedule whether or not earlier ones have finished, so a slow
server shows up as latency instead of silently lowering the rate.

    .venv/bin/python bench/soak.py [--duration 600] [--rate 10] [--window 30] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import numpy as np  # noqa: E402

from bench.server import ServerProcess  # noqa: E402

FIXTURES = sorted((ROOT / "fixtures" / "transcripts").glob("*.json"))
CONVERSATIONS = 50  # the per-message traffic is spread over this many conversations


@dataclass(frozen=True)
class Planned:
    kind: str
    method: str
    path: str
    expected: int
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


class Traffic:
    """The request mix: (weight, builder) per kind; builders make a fresh request."""

    def __init__(self, seed: int, max_body_bytes: int, max_message_chars: int) -> None:
        self.random = random.Random(seed)
        self.transcripts = [json.loads(p.read_text()) for p in FIXTURES]
        self.next_id: Counter[str] = Counter()
        self.acked: list[tuple[str, str]] = []
        too_big = json.dumps({"messages": [{"role": "customer", "text": "x" * 1000}] * (max_body_bytes // 1000 + 1)})
        self.mix: list[tuple[int, Callable[[], Planned]]] = [
            (30, lambda: Planned("analyze", "POST", "/v1/analyze", 200, json=self.random.choice(self.transcripts))),
            (30, self.new_message),
            (5, self.retry_message),
            (10, self.get_conversation),
            (
                5,
                lambda: Planned(
                    "batch",
                    "POST",
                    "/v1/analyze/batch",
                    200,
                    json={"transcripts": self.random.sample(self.transcripts, 2)},
                ),
            ),
            (3, lambda: Planned("healthz", "GET", "/healthz", 200)),
            (3, lambda: Planned("unknown_conversation", "GET", "/v1/conversations/nobody-here", 404)),
            (
                3,
                lambda: Planned(
                    "invalid_json",
                    "POST",
                    "/v1/analyze",
                    400,
                    content=b'{"messages": [',
                    headers={"content-type": "application/json"},
                ),
            ),
            (
                5,
                lambda: Planned(
                    "schema_violation", "POST", "/v1/analyze", 422, json={"messages": [{"role": "robot", "text": "hi"}]}
                ),
            ),
            (
                2,
                lambda: Planned(
                    "body_too_large",
                    "POST",
                    "/v1/analyze",
                    413,
                    content=too_big.encode(),
                    headers={"content-type": "application/json"},
                ),
            ),
            (
                2,
                lambda: Planned(
                    "message_too_long",
                    "POST",
                    "/v1/analyze",
                    413,
                    json={"messages": [{"role": "customer", "text": "y" * (max_message_chars + 1)}]},
                ),
            ),
            (
                2,
                lambda: Planned(
                    "wrong_content_type",
                    "POST",
                    "/v1/analyze",
                    415,
                    content=b"hello",
                    headers={"content-type": "text/plain"},
                ),
            ),
        ]
        self.weights = [w for w, _ in self.mix]

    def next(self) -> Planned:
        return self.random.choices(self.mix, weights=self.weights)[0][1]()

    def new_message(self) -> Planned:
        conversation = f"soak-{self.random.randrange(CONVERSATIONS)}"
        self.next_id[conversation] += 1
        message_id = f"m{self.next_id[conversation]}"
        text = self.random.choice(self.random.choice(self.transcripts)["messages"])["text"]
        return Planned(
            "message",
            "POST",
            f"/v1/conversations/{conversation}/messages",
            200,
            json={"id": message_id, "role": "customer", "text": text},
        )

    def retry_message(self) -> Planned:
        if not self.acked:
            return self.new_message()
        conversation, message_id = self.random.choice(self.acked)
        return Planned(
            "message_retry",
            "POST",
            f"/v1/conversations/{conversation}/messages",
            200,
            json={"id": message_id, "role": "customer", "text": "retry of an acknowledged message"},
        )

    def get_conversation(self) -> Planned:
        if not self.acked:
            return Planned("healthz", "GET", "/healthz", 200)
        conversation, _ = self.random.choice(self.acked)
        return Planned("get_conversation", "GET", f"/v1/conversations/{conversation}", 200)


@dataclass
class Result:
    started: float  # seconds since the soak began
    kind: str
    expected: int
    status: int  # 0: transport error (connection refused, timeout)
    latency_ms: float
    error: str | None = None  # the transport error's type, for status 0


@dataclass
class Window:
    start_s: int
    requests: int
    by_status: dict[str, int]
    unexpected: int
    p50_ms: float
    p99_ms: float
    rss_mib: float


async def run_soak(
    server: ServerProcess, traffic: Traffic, duration_s: float, rate: float, window_s: float, timeout_s: float
) -> tuple[list[Result], list[tuple[float, int]]]:
    results: list[Result] = []
    rss: list[tuple[float, int]] = [(0.0, server.rss_bytes())]
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
    async with httpx.AsyncClient(base_url=server.url, timeout=timeout_s, limits=limits) as client:
        began = time.perf_counter()

        async def send(plan: Planned, at: float) -> None:
            started = time.perf_counter()
            error = None
            try:
                response = await client.request(
                    plan.method, plan.path, json=plan.json, content=plan.content, headers=plan.headers
                )
                status = response.status_code
                if plan.kind == "message" and status == 200:
                    conversation = plan.path.split("/")[3]
                    traffic.acked.append((conversation, plan.json["id"]))
            except httpx.HTTPError as exc:
                status, error = 0, type(exc).__name__
            results.append(Result(at, plan.kind, plan.expected, status, (time.perf_counter() - started) * 1000, error))

        async def sample_rss() -> None:
            while True:
                await asyncio.sleep(window_s / 3)
                rss.append((time.perf_counter() - began, server.rss_bytes()))

        sampler = asyncio.create_task(sample_rss())
        tasks: set[asyncio.Task] = set()
        interval = 1.0 / rate
        for n in range(int(duration_s * rate)):
            due = began + n * interval
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            task = asyncio.create_task(send(traffic.next(), due - began))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        sampler.cancel()
        rss.append((time.perf_counter() - began, server.rss_bytes()))
    return results, rss


def windows(results: list[Result], rss: list[tuple[float, int]], window_s: float) -> list[Window]:
    grouped: dict[int, list[Result]] = defaultdict(list)
    for result in results:
        grouped[int(result.started // window_s)].append(result)
    out = []
    for index in sorted(grouped):
        group = grouped[index]
        latencies = np.array([r.latency_ms for r in group])
        in_window = [b for t, b in rss if index * window_s <= t < (index + 1) * window_s] or [rss[-1][1]]
        out.append(
            Window(
                start_s=int(index * window_s),
                requests=len(group),
                by_status=dict(sorted(Counter(str(r.status) for r in group).items())),
                unexpected=sum(r.status != r.expected for r in group),
                p50_ms=round(float(np.percentile(latencies, 50)), 1),
                p99_ms=round(float(np.percentile(latencies, 99)), 1),
                rss_mib=round(max(in_window) / 2**20, 1),
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load (default: 10 minutes)")
    parser.add_argument("--rate", type=float, default=10.0, help="requests started per second")
    parser.add_argument("--window", type=float, default=30.0, help="seconds per row of the report")
    parser.add_argument("--timeout", type=float, default=60.0, help="client timeout per request, seconds")
    parser.add_argument("--threads", type=int, default=None, help="CONVINTEL_TORCH_THREADS for the server")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()

    from service.settings import Settings

    defaults = Settings(_env_file=None)
    traffic = Traffic(args.seed, defaults.max_body_bytes, defaults.max_message_chars)
    with tempfile.TemporaryDirectory() as tmp:
        env = {"CONVINTEL_DB_PATH": str(Path(tmp) / "soak.sqlite3"), "CONVINTEL_LOG_LEVEL": "warning"}
        if args.threads:
            env["CONVINTEL_TORCH_THREADS"] = str(args.threads)
        server = ServerProcess.start(Path(tmp) / "server.log", env)
        try:
            results, rss = asyncio.run(run_soak(server, traffic, args.duration, args.rate, args.window, args.timeout))
            log_tail = server.log_tail()
        finally:
            server.kill()

    rows = windows(results, rss, args.window)
    latencies = np.array([r.latency_ms for r in results])
    by_status = dict(sorted(Counter(str(r.status) for r in results).items()))
    unexpected = Counter((r.kind, r.expected, r.status) for r in results if r.status != r.expected)
    summary = {
        "duration_s": args.duration,
        "rate_per_s": args.rate,
        "requests": len(results),
        "by_status": by_status,
        "by_kind": dict(sorted(Counter(r.kind for r in results).items())),
        "unexpected": [{"kind": k, "expected": e, "status": s, "count": c} for (k, e, s), c in unexpected.items()],
        "server_errors_5xx": sum(500 <= r.status < 600 for r in results),
        "transport_errors": by_status.get("0", 0),
        "transport_error_types": dict(Counter(r.error for r in results if r.error)),
        "p50_ms": round(float(np.percentile(latencies, 50)), 1),
        "p99_ms": round(float(np.percentile(latencies, 99)), 1),
        "rss_mib_first": round(rss[0][1] / 2**20, 1),
        "rss_mib_last": round(rss[-1][1] / 2**20, 1),
        "rss_mib_max": round(max(b for _, b in rss) / 2**20, 1),
        "windows": [asdict(w) for w in rows],
    }

    print(f"soak: {len(results)} requests in {args.duration:g} s at {args.rate:g}/s against {server.url}")
    print(f"{'window':>8} {'reqs':>6} {'p50 ms':>8} {'p99 ms':>8} {'RSS MiB':>8} {'unexp':>6}  statuses")
    for w in rows:
        statuses = " ".join(f"{s}:{c}" for s, c in w.by_status.items())
        print(
            f"{w.start_s:>7}s {w.requests:>6} {w.p50_ms:>8} {w.p99_ms:>8} {w.rss_mib:>8} {w.unexpected:>6}  {statuses}"
        )
    print(f"all: p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms; statuses {by_status}")
    print(
        f"5xx: {summary['server_errors_5xx']}, transport errors: {summary['transport_errors']} "
        f"{summary['transport_error_types'] or ''}, "
        f"unexpected answers: {sum(unexpected.values())} {summary['unexpected'] or ''}"
    )
    print(
        f"RSS: {summary['rss_mib_first']} MiB at start, {summary['rss_mib_last']} MiB at end, "
        f"{summary['rss_mib_max']} MiB max"
    )
    if summary["server_errors_5xx"]:
        print("server log tail:\n" + log_tail)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
