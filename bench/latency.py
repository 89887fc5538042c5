"""Per-message latency, side by side in one run:

- the per-message webhook path in-process (POST /v1/conversations/{id}/messages through
  the ASGI app: validation, one encoder pass, heads, SQLite commit, conversation summary);
- one raw encoder forward pass for the same single message (tokenise + transformer +
  pooling, nothing else): the floor the path cannot go below.

The two are interleaved call by call, so machine noise hits both alike.

    .venv/bin/python bench/latency.py [--requests 300] [--json out.json]
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

import numpy as np  # noqa: E402
import torch  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from service.api.app import create_app  # noqa: E402
from service.runtime import load_analyzer  # noqa: E402
from service.settings import Settings  # noqa: E402


def load_messages(limit: int) -> list[str]:
    texts = []
    for path in sorted((ROOT / "data" / "urgency").glob("messages_*.jsonl")):
        texts += [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]
    return texts[:limit]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--conversation-length", type=int, default=10, help="messages per conversation")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None, db_path=Path(tmp) / "bench.sqlite3")
        analyzer = load_analyzer(settings)
        texts = load_messages(args.requests + args.warmup)
        path_ms, raw_ms = [], []
        with TestClient(create_app(settings, analyzer)) as client:
            for i, text in enumerate(texts):
                conversation = f"bench-{i // args.conversation_length}"
                role = "customer" if i % 3 else "agent"
                start = time.perf_counter()
                response = client.post(f"/v1/conversations/{conversation}/messages", json={"role": role, "text": text})
                elapsed_path = (time.perf_counter() - start) * 1000
                if response.status_code != 200:
                    raise SystemExit(f"request failed: {response.status_code} {response.text}")
                start = time.perf_counter()
                with torch.inference_mode():
                    analyzer.encoder.forward([text])
                elapsed_raw = (time.perf_counter() - start) * 1000
                if i >= args.warmup:
                    path_ms.append(elapsed_path)
                    raw_ms.append(elapsed_raw)

    figures = {
        "requests": len(path_ms),
        "torch_threads": torch.get_num_threads(),
        "per_message_path_ms": {
            "p50": percentile(path_ms, 50),
            "p99": percentile(path_ms, 99),
            "mean": statistics.fmean(path_ms),
        },
        "raw_encoder_forward_ms": {
            "p50": percentile(raw_ms, 50),
            "p99": percentile(raw_ms, 99),
            "mean": statistics.fmean(raw_ms),
        },
    }
    figures["ratio_p50"] = figures["per_message_path_ms"]["p50"] / figures["raw_encoder_forward_ms"]["p50"]
    figures["ratio_p99"] = figures["per_message_path_ms"]["p99"] / figures["raw_encoder_forward_ms"]["p99"]

    print(
        f"{figures['requests']} messages, {args.conversation_length} per conversation, "
        f"torch threads {figures['torch_threads']}"
    )
    print(f"{'':32}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    for label, key in (
        ("per-message path (in-process)", "per_message_path_ms"),
        ("raw encoder forward (1 message)", "raw_encoder_forward_ms"),
    ):
        f = figures[key]
        print(f"{label:32}{f['p50']:10.2f}{f['p99']:10.2f}{f['mean']:10.2f}")
    print(f"{'ratio path / raw':32}{figures['ratio_p50']:10.2f}{figures['ratio_p99']:10.2f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
