"""Training recipes: which data trains and checks each task."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nlp.bundle import REQUIRED_TASKS
from nlp.paths import source_root
from training.cue_data import cue_interactions, cue_set_interactions
from training.datasets import (
    INTERACTION_TASKS,
    DataError,
    Interaction,
    LabelledSet,
    interactions_for_task,
    load_goemotions,
    load_goemotions_sentiment,
    load_meld_sentiment,
    load_tweeteval_sentiment,
    load_xci_complaint,
    read_interactions,
    read_labelled_files,
)
from training.urgency_pool import (
    LABELS_DIR,
    final_written_labels,
    missing_pool_sources,
    pool_interactions,
    with_final_urgency,
)

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from training.config import TrainConfig

_CHECKOUT = source_root()
# The project's own labelled messages: part of the source checkout only (data/ is not
# installed), so an installed convintel has none and the default recipe says so.
OWN_DATA_FILES = sorted((_CHECKOUT / "data" / "urgency").glob("messages_*.jsonl")) if _CHECKOUT else []
# The labelling passes over the public pool and the written messages (data/urgency/GUIDELINE.md).
URGENCY_LABELS_DIR = _CHECKOUT / LABELS_DIR if _CHECKOUT else None


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
        load_goemotions(data_root, "train"),
        load_goemotions(data_root, "dev"),
        load_goemotions_sentiment(data_root, "train"),
        load_goemotions_sentiment(data_root, "dev"),
        load_meld_sentiment(data_root, "train"),
        load_meld_sentiment(data_root, "dev"),
        load_tweeteval_sentiment(data_root, "train"),
        load_tweeteval_sentiment(data_root, "val"),
    ]
    return {s.name: s for s in sets}


def default_recipe(
    data_root: Path, own_files: list[Path] | None = None, tasks: Sequence[str] = REQUIRED_TASKS
) -> dict[str, TaskData]:
    """The shipped bundle's recipe. The public sets are read only for the tasks asked for:
    complaint (X-CI) on its own, the other three together.

    - emotions: GoEmotions (28 labels) train; dev for thresholds and reporting.
    - sentiment: TweetEval train + GoEmotions sentiment groups + MELD + own labelled
      messages (train part); early stopping and calibration on TweetEval val, GoEmotions
      groups dev and MELD dev together (the test splits stay withheld).
    - urgency: own labelled messages (the written ones with their blind passes' final
      labels) and the labelled public pool (texts read from `data_root`); each one's
      held-out quarter is only reported, never tuned on (early stopping and calibration use
      a slice of the training part).
    - complaint: X-CI, split the same way (`complaint_recipe`).
    - cues: every message labelled in two passes, split the same way (`cues_recipe`)."""
    recipe: dict[str, TaskData] = {}
    if "complaint" in tasks:
        recipe["complaint"] = complaint_recipe(data_root)
    if "cues" in tasks:
        recipe["cues"] = cues_recipe(data_root)
    if not {"sentiment", "emotions", "urgency"} & set(tasks):
        return recipe
    if own_files is None and not OWN_DATA_FILES:
        raise DataError(
            "the default recipe also trains on data/urgency/messages_*.jsonl of convintel's source "
            "checkout, which this installation does not have: run from a checkout, or train with "
            "--recipe none --data FILE"
        )
    public = public_sets(data_root)
    # Sentiment and urgency only: the own files' `emotions` use the customer-service set
    # (nlp.vocabulary.SUPPORT_EMOTIONS), not the 28 GoEmotions labels the emotions head predicts.
    rows, _ = read_interactions(own_files if own_files is not None else OWN_DATA_FILES, tasks=("sentiment", "urgency"))
    own_sentiment_train = interactions_for_task(rows, "sentiment", "train", "own")
    own_sentiment_heldout = interactions_for_task(rows, "sentiment", "heldout", "own")
    pool: list[Interaction] = []
    if own_files is None and URGENCY_LABELS_DIR is not None:  # the shipped recipe: the labelled pool joins
        rows = with_final_urgency(rows, final_written_labels(URGENCY_LABELS_DIR))
        missing = missing_pool_sources(data_root)
        if missing:
            log.warning("urgency trains without the labelled public pool: %s is missing", missing[0])
        else:
            pool = pool_interactions(data_root, URGENCY_LABELS_DIR)
    # The cue set's messages carry urgency too (labelled in the same two passes).
    cue_set = cue_set_interactions(_CHECKOUT) if own_files is None and _CHECKOUT is not None else []
    urgency_train = interactions_for_task(rows + pool + cue_set, "urgency", "train", "own+pool+cues")
    urgency_heldout = interactions_for_task(rows, "urgency", "heldout", "own")
    urgency_fit, urgency_stop = split_for_early_stopping(urgency_train)
    urgency_reports = [urgency_heldout]
    if pool:
        urgency_reports.append(interactions_for_task(pool, "urgency", "heldout", "pool"))
    if cue_set:
        urgency_reports.append(interactions_for_task(cue_set, "urgency", "heldout", "cue set"))
    recipe |= {
        "emotions": TaskData(
            train=public["goemotions/original:train"],
            dev=public["goemotions/original:dev"],
            reports=[public["goemotions/original:dev"]],
        ),
        "sentiment": TaskData(
            train=LabelledSet.concat(
                "sentiment:train",
                [
                    public["tweeteval/sentiment:train"],
                    public["goemotions/group-sentiment:train"],
                    public["meld/sentiment:train"],
                    own_sentiment_train,
                ],
            ),
            dev=LabelledSet.concat(
                "sentiment:dev",
                [
                    public["tweeteval/sentiment:val"],
                    public["goemotions/group-sentiment:dev"],
                    public["meld/sentiment:dev"],
                ],
            ),
            reports=[
                public["tweeteval/sentiment:val"],
                public["goemotions/group-sentiment:dev"],
                public["meld/sentiment:dev"],
                own_sentiment_heldout,
            ],
        ),
        "urgency": TaskData(train=urgency_fit, dev=urgency_stop, reports=urgency_reports),
    }
    return recipe


def complaint_recipe(data_root: Path) -> TaskData:
    """Complaint detection from X-CI: its `train` part is cut into a fitting slice and an
    early-stopping / calibration slice (every fifth row); the `heldout` part (a quarter of
    the published file, by id hash) is only reported, never tuned on. The held-out report
    carries X-CI's severity (0-4), so the bundle records how P(complaint) ranks it."""
    fit, stop = split_for_early_stopping(load_xci_complaint(data_root, "train"))
    return TaskData(train=fit, dev=stop, reports=[load_xci_complaint(data_root, "heldout")])


def cues_recipe(data_root: Path) -> TaskData:
    """Risk cues (multi-label over the cue families) from every double-labelled message
    (training.cue_data): the training part is cut into a fitting slice and a dev slice
    (thresholds, calibration); the held-out quarter is only reported."""
    if _CHECKOUT is None:
        raise DataError("the cues recipe trains on data/urgency and data/cues of convintel's source checkout")
    rows = cue_interactions(data_root, _CHECKOUT)
    fit, stop = split_for_early_stopping(interactions_for_task(rows, "cues", "train", "labelled"))
    return TaskData(train=fit, dev=stop, reports=[interactions_for_task(rows, "cues", "heldout", "labelled")])


def split_for_early_stopping(data: LabelledSet, share: int = 5) -> tuple[LabelledSet, LabelledSet]:
    """Every `share`-th row (stable order) becomes the early-stopping slice."""
    import numpy as np

    mask = np.arange(len(data)) % share == 0
    return data.subset(~mask, f"{data.name}-fit"), data.subset(mask, f"{data.name}-stop")


def with_user_data(recipe: dict[str, TaskData], rows: Sequence[Interaction], source: str) -> dict[str, TaskData]:
    """Add labelled interactions to a recipe: rows of split `train` join each task's
    training set, `dev` rows its dev set (early stopping, calibration), and any other split
    (`heldout`, the default for a quarter of rows without one) is only reported."""
    recipe = dict(recipe)
    for task in INTERACTION_TASKS:
        labelled = interactions_for_task(rows, task, None, source)
        if not len(labelled):
            continue
        train = interactions_for_task(rows, task, "train", source)
        dev = interactions_for_task(rows, task, "dev", source)
        held = [r for r in rows if r.split not in {"train", "dev"}]
        heldout = interactions_for_task(held, task, None, f"{source}-heldout")
        base = recipe.get(task)
        if base is None:
            if not len(train):
                raise DataError(f"{source}: no training rows for {task}")
            if not len(dev):  # no dev rows given: every fifth training row stops early instead
                train, dev = split_for_early_stopping(train)
            recipe[task] = TaskData(train=train, dev=dev, reports=[dev] + ([heldout] if len(heldout) else []))
            continue
        if train.label_names != base.train.label_names:
            raise DataError(f"{source}: {task} labels {train.label_names} differ from the recipe's")
        recipe[task] = TaskData(
            train=LabelledSet.concat(base.train.name + "+" + source, [base.train, train]) if len(train) else base.train,
            dev=LabelledSet.concat(base.dev.name + "+" + source, [base.dev, dev]) if len(dev) else base.dev,
            reports=base.reports + ([dev] if len(dev) else []) + ([heldout] if len(heldout) else []),
        )
    return recipe


def build_recipe(config: TrainConfig) -> tuple[dict[str, TaskData], list[str]]:
    """The recipe a training configuration asks for: the default recipe and/or the user's
    labelled files, restricted to `config.tasks`. Returns (recipe, skipped-row problems).

    Raises DataError for a bad row (file:line: field) or a task left without data."""
    recipe: dict[str, TaskData] = (
        default_recipe(config.data_root, tasks=config.tasks) if config.recipe == "default" else {}
    )
    problems: list[str] = []
    if config.data:
        rows, problems = read_labelled_files(config.data, skip_invalid=config.skip_invalid, tasks=config.tasks)
        source = config.data[0].stem if len(config.data) == 1 else "data"
        recipe = with_user_data(recipe, rows, source)
    missing = [task for task in config.tasks if task not in recipe]
    if missing:
        raise DataError(
            f"no training data for task {missing[0]!r} (recipe {config.recipe!r}, data {[str(p) for p in config.data]})"
        )
    return {task: recipe[task] for task in config.tasks}, problems
