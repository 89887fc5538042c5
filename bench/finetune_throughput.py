"""What a fine-tuning run of the shipped recipe costs on this machine: training examples
per second for each method (LoRA, partial unfreezing, full), timed over real optimizer
steps of `training.finetune` (the recipe's interleaved, length-bucketed batches), with
the encoder load and the first warm-up steps left out, and the epoch time that follows.

    .venv/bin/python bench/finetune_throughput.py [--config training/finetune.yaml]
        [--methods lora partial full] [--steps 40] [--warmup 5] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training.config import load_train_config  # noqa: E402
from training.finetune import finetune, steps_per_epoch  # noqa: E402
from training.recipes import build_recipe  # noqa: E402


def measure(
    config_file: Path | None, method: str, steps: int, warmup: int, threads: int | None, data_root: Path
) -> dict:
    """Examples/s of `steps` optimizer steps after `warmup` ones, for one method."""
    stamps: list[tuple[float, int]] = []
    with tempfile.TemporaryDirectory() as folder:
        config = load_train_config(
            config_file,
            {
                "mode": "finetune",
                "finetune.method": method,
                "threads": threads,
                "data_root": data_root,
                # Its own checkpoint folder: the recipe's would be overwritten, and with it the
                # resume point of a real run.
                "output": Path(folder) / "bundle",
                "checkpoint_dir": Path(folder) / "checkpoint",
                "finetune.eval_every": 10**9,
                "finetune.checkpoint_every": 10**9,
            },
        )
        recipe, _ = build_recipe(config)
        finetune(
            recipe,
            config,
            interrupt_after=warmup + steps,
            show_progress=False,
            on_step=lambda step, rows: stamps.append((time.perf_counter(), rows)),
        )
    timed = stamps[warmup:]
    seconds = timed[-1][0] - stamps[warmup - 1][0]
    examples = sum(rows for _, rows in timed)
    per_second = examples / seconds
    epoch_rows = steps_per_epoch(recipe, config.batch_size, config.finetune.rows_per_epoch) * config.batch_size
    return {
        "method": method,
        "threads": threads or os.cpu_count(),
        "batch_size": config.batch_size,
        "max_length": config.max_length,
        "steps": steps,
        "examples_per_second": round(per_second, 1),
        "epoch_examples": epoch_rows,
        "epoch_minutes": round(epoch_rows / per_second / 60, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "training" / "finetune.yaml")
    parser.add_argument("--methods", nargs="+", default=["lora", "partial", "full"])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: one per core)")
    parser.add_argument("--data-root", type=Path, default=Path(os.environ.get("CONVINTEL_DATA_ROOT", "../shared/data")))
    args = parser.parse_args()
    for method in args.methods:
        print(
            json.dumps(measure(args.config, method, args.steps, args.warmup, args.threads, args.data_root)), flush=True
        )


if __name__ == "__main__":
    main()
