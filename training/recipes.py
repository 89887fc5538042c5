"""Training recipes: which data trains and checks each task."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from training.datasets import (
    LabelledSet, interactions_for_task, load_goemotions, load_goemotions_sentiment,
    load_meld_sentiment, load_tweeteval_sentiment, read_interactions,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
OWN_DATA_FILES = sorted((PROJECT_ROOT / "data" / "urgency").glob("messages_*.jsonl"))


@dataclass
class TaskData:
    """Train set, the dev set used for early stopping / thresholds / calibration, and the
    sets reported in the manifest (dev first)."""

    train: LabelledSet
    dev: LabelledSet
    reports: list[LabelledSet] = field(default_factory=list)


def public_sets(data_root: Path) -> dict[str, LabelledSet]:
    """The public sets the default recipe reads, by name."""
    sets = [
        load_goemotions(data_root, "train"), load_goemotions(data_root, "dev"),
        load_goemotions_sentiment(data_root, "train"), load_goemotions_sentiment(data_root, "dev"),
        load_meld_sentiment(data_root, "train"), load_meld_sentiment(data_root, "dev"),
        load_tweeteval_sentiment(data_root, "val"),
    ]
    return {s.name: s for s in sets}


def default_recipe(data_root: Path, own_files: list[Path] | None = None) -> dict[str, TaskData]:
    """The shipped bundle's recipe.

    - emotions: GoEmotions (28 labels) train; dev for thresholds and reporting.
    - sentiment: GoEmotions sentiment groups + MELD + own labelled messages (train part);
      TweetEval sentiment val is never trained on: it is the out-of-domain dev report.
    - urgency: own labelled messages; the held-out quarter is only reported, never tuned on
      (early stopping and calibration use a slice of the training part)."""
    public = public_sets(data_root)
    rows, _ = read_interactions(own_files if own_files is not None else OWN_DATA_FILES)
    own_sentiment_train = interactions_for_task(rows, "sentiment", "train", "own")
    own_sentiment_heldout = interactions_for_task(rows, "sentiment", "heldout", "own")
    urgency_train = interactions_for_task(rows, "urgency", "train", "own")
    urgency_heldout = interactions_for_task(rows, "urgency", "heldout", "own")
    urgency_fit, urgency_stop = split_for_early_stopping(urgency_train)
    return {
        "emotions": TaskData(
            train=public["goemotions/original:train"], dev=public["goemotions/original:dev"],
            reports=[public["goemotions/original:dev"]],
        ),
        "sentiment": TaskData(
            train=LabelledSet.concat("sentiment:train", [
                public["goemotions/group-sentiment:train"], public["meld/sentiment:train"], own_sentiment_train]),
            dev=LabelledSet.concat("sentiment:dev", [
                public["goemotions/group-sentiment:dev"], public["meld/sentiment:dev"]]),
            reports=[public["tweeteval/sentiment:val"], public["goemotions/group-sentiment:dev"],
                     public["meld/sentiment:dev"], own_sentiment_heldout],
        ),
        "urgency": TaskData(train=urgency_fit, dev=urgency_stop, reports=[urgency_heldout]),
    }


def split_for_early_stopping(data: LabelledSet, share: int = 5) -> tuple[LabelledSet, LabelledSet]:
    """Every `share`-th row (stable order) becomes the early-stopping slice."""
    import numpy as np

    mask = np.arange(len(data)) % share == 0
    return data.subset(~mask, f"{data.name}-fit"), data.subset(mask, f"{data.name}-stop")
