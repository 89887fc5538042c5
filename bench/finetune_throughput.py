"""Seconds per LoRA fine-tuning step of the default recipe on this machine (a few steps,
then stop): what a full `--mode finetune` run of the recipe would cost here.

    .venv/bin/python bench/finetune_throughput.py [--steps 12] [--max-length 64] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training.config import load_train_config  # noqa: E402
from training.finetune import finetune, steps_per_epoch  # noqa: E402
from training.recipes import build_recipe  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        config = load_train_config(None, {
            "mode": "finetune", "max_length": args.max_length, "threads": args.threads,
            "output": Path(folder) / "bundle", "finetune.eval_every": 10**9})
        recipe, _ = build_recipe(config)
        started = time.perf_counter()
        finetune(recipe, config, interrupt_after=args.steps)
        seconds = (time.perf_counter() - started) / args.steps
    per_epoch = steps_per_epoch(recipe, config.batch_size)
    print(f"{seconds:.2f} s per step of {config.batch_size} texts (max length {args.max_length}, "
          f"{args.threads} thread(s), encoder load included); one epoch = {per_epoch} steps = "
          f"{per_epoch * seconds / 3600:.1f} h; the default {config.epochs} epochs = "
          f"{config.epochs * per_epoch * seconds / 3600:.1f} h")


if __name__ == "__main__":
    main()
