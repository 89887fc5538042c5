"""Evaluate a model bundle on labelled data: labelled-interaction files (JSONL or CSV) and
the shared public sets, with a VADER baseline beside every sentiment figure.

`convintel evaluate` and the tests both come through `evaluate_bundle`; `training.report`
turns its `EvaluationResult` into metrics.json, an HTML report and a text summary."""

from __future__ import annotations

import glob
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import numpy as np

from nlp.bundle import ModelBundle, load_bundle
from nlp.encoder import ENCODER_PACKAGE, Encoder, packaged_model_version
from nlp.extras import require
from nlp.token_states import TokenStates
from training.datasets import (
    DEFAULT_DATA_ROOT,
    TASK_LABELS,
    Interaction,
    LabelledSet,
    interactions_for_task,
    load_goemotions,
    load_goemotions_sentiment,
    load_meld_sentiment,
    load_tweeteval_sentiment,
    load_xci_complaint,
    read_labelled_files,
)
from training.features import FeatureCache
from training.head_trainer import evaluate_report
from training.metrics import multiclass_metrics
from training.recipes import OWN_DATA_FILES
from training.train import derived_emotion_reports

TASKS = ("sentiment", "urgency", "emotions", "complaint")
SHARED_PREFIX = "shared:"
VADER_POSITIVE = 0.05
VADER_NEGATIVE = -0.05
VADER_RULE = "compound >= 0.05: positive; compound <= -0.05: negative; else neutral"
VADER_ECE_NOTE = (
    "VADER gives a score, not class probabilities, so it has no ECE (an ECE over one-hot "
    "predictions would only restate 1 - accuracy)."
)


class SourceError(ValueError):
    """A --data source cannot be used: unknown shared set, missing file, or no labels to score."""


@dataclass(frozen=True)
class SharedSet:
    """A public set under the data root, the task it labels, and its loader."""

    task: str
    default_split: str
    load: Callable[[Path, str], LabelledSet]


SHARED_SETS: dict[str, SharedSet] = {
    "tweeteval/sentiment": SharedSet("sentiment", "val", load_tweeteval_sentiment),
    "meld/sentiment": SharedSet("sentiment", "dev", load_meld_sentiment),
    "goemotions/group-sentiment": SharedSet("sentiment", "dev", load_goemotions_sentiment),
    "goemotions/original": SharedSet("emotions", "dev", lambda root, split: load_goemotions(root, split, "original")),
    # X-CI has one published file; its parts are the project's split of it (training.datasets).
    "xci/complaint": SharedSet("complaint", "heldout", load_xci_complaint),
}


@dataclass
class EvaluationSet:
    """One labelled set to score, with the --data source it came from."""

    source: str
    task: str
    split: str  # the set's split, or "all" for every row of an interactions file
    data: LabelledSet
    files: list[Path] = field(default_factory=list)  # local files read; empty for shared sets


@dataclass
class Evaluation:
    """The bundle's figures on one set for one task, with baselines beside them."""

    source: str
    set_name: str
    task: str
    split: str
    kind: str
    labels: list[str]
    n: int
    metrics: dict
    baselines: dict[str, dict] = field(default_factory=dict)
    derived: dict[str, dict] = field(default_factory=dict)  # GoEmotions Ekman / group figures

    def to_dict(self) -> dict:
        record = {
            "data": self.source,
            "set": self.set_name,
            "task": self.task,
            "split": self.split,
            "kind": self.kind,
            "labels": self.labels,
            "n": self.n,
            "metrics": self.metrics,
            "baselines": self.baselines,
        }
        if self.derived:
            record["derived"] = self.derived
        return record


@dataclass
class EvaluationResult:
    """Everything `convintel evaluate` reports: one Evaluation per (set, task)."""

    model_name: str
    model_version: str
    model_path: str
    created: str
    evaluations: list[Evaluation]
    skipped_rows: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The metrics.json document."""
        return {
            "model": {"name": self.model_name, "version": self.model_version, "path": self.model_path},
            "created": self.created,
            "evaluations": [e.to_dict() for e in self.evaluations],
            "baseline_rules": {"vader": VADER_RULE},
            "skipped_rows": {"count": len(self.skipped_rows), "rows": self.skipped_rows},
            "notes": self.notes,
        }


# --- reading labelled data (readers live in training.datasets) ------------------------


def _expand(source: str) -> list[Path]:
    if glob.has_magic(source):
        paths = [Path(p) for p in sorted(glob.glob(source)) if Path(p).is_file()]
        if not paths:
            raise SourceError(f"{source}: no file matches")
        return paths
    path = Path(source)
    if not path.is_file():
        raise SourceError(f"{source}: no such file")
    return [path]


def _interaction_sets(
    source: str, files: list[Path], rows: Sequence[Interaction], split: str | None
) -> list[EvaluationSet]:
    sets = []
    for task in TASK_LABELS:
        data = interactions_for_task(rows, task, split, Path(source).name)
        if len(data):
            sets.append(EvaluationSet(source, task, split or "all", data, files))
    return sets


def _shared_set(source: str, data_root: Path) -> EvaluationSet:
    name, _, split = source[len(SHARED_PREFIX) :].partition(":")
    entry = SHARED_SETS.get(name)
    if entry is None:
        raise SourceError(f"{source}: unknown shared set {name!r}; available: {', '.join(SHARED_SETS)}")
    split = split or entry.default_split
    try:
        data = entry.load(data_root, split)
    except FileNotFoundError as exc:
        raise SourceError(f"{source}: {exc.filename} not found (set --data-root or CONVINTEL_DATA_ROOT)") from None
    except ValueError as exc:  # includes DataError; e.g. a withheld test split
        raise SourceError(f"{source}: {exc}") from None
    return EvaluationSet(source, entry.task, split, data)


def resolve_sources(
    sources: Sequence[str],
    *,
    data_root: Path = DEFAULT_DATA_ROOT,
    task: str | None = None,
    split: str | None = None,
    skip_invalid: bool = False,
) -> tuple[list[EvaluationSet], list[str]]:
    """Turn --data values into labelled sets. Returns (sets, skipped-row problems).

    A value is `shared:SET[:SPLIT]` (a public set under `data_root`), or a JSONL/CSV file
    of labelled interactions (or a glob, whose files are pooled into one source). Files
    give one set per task they label, restricted to `split` when given. `task` keeps only
    that task; a source left with nothing to score is a SourceError."""
    if task is not None and task not in TASKS:
        raise SourceError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    sets: list[EvaluationSet] = []
    problems: list[str] = []
    for source in sources:
        if source.startswith(SHARED_PREFIX):
            found = [_shared_set(source, data_root)]
        else:
            files = _expand(source)
            rows, skipped = read_labelled_files(files, skip_invalid=skip_invalid)
            problems += skipped
            found = _interaction_sets(source, files, rows, split)
        chosen = [s for s in found if task is None or s.task == task]
        if not chosen:
            what = f"{task} labels" if task else "labelled rows"
            where = f" in split {split!r}" if split and not source.startswith(SHARED_PREFIX) else ""
            raise SourceError(f"{source}: no {what}{where} to evaluate")
        sets += chosen
    return sets, problems


# --- scoring ------------------------------------------------------------------------------


@lru_cache(maxsize=2)
def _load_base_encoder(max_seq_length: int) -> Encoder:
    return Encoder(max_seq_length=max_seq_length)


def load_encoder(bundle: ModelBundle, device: str = "cpu") -> Encoder:
    """The encoder a bundle reads: the packaged one at the bundle's window length, loaded
    once per process, or for a fine-tuned bundle that encoder with its adapter merged."""
    if bundle.adapter is not None or device != "cpu":
        return Encoder(max_seq_length=bundle.manifest.encoder.max_seq_length, adapter=bundle.adapter, device=device)
    return _load_base_encoder(bundle.manifest.encoder.max_seq_length)


@lru_cache(maxsize=1)
def _vader():
    vader = require("vaderSentiment.vaderSentiment", "train", "the VADER sentiment baseline")
    return vader.SentimentIntensityAnalyzer()


def vader_labels(texts: Sequence[str]) -> list[str]:
    """VADER's sentiment label for each text, by the standard compound-score thresholds."""
    analyzer = _vader()
    labels = []
    for text in texts:
        compound = analyzer.polarity_scores(text)["compound"]
        labels.append(
            "positive" if compound >= VADER_POSITIVE else "negative" if compound <= VADER_NEGATIVE else "neutral"
        )
    return labels


def vader_metrics(texts: Sequence[str], y_true: np.ndarray, labels: Sequence[str]) -> dict:
    """VADER's figures in the model's metric structure; `ece` is None (see VADER_ECE_NOTE)."""
    predicted = np.array([list(labels).index(label) for label in vader_labels(texts)], dtype=np.int64)
    one_hot = np.eye(len(labels), dtype=np.float64)[predicted]
    metrics = multiclass_metrics(y_true, one_hot, labels)
    metrics["ece"] = None
    return metrics


def _check_set(bundle: ModelBundle, item: EvaluationSet) -> None:
    head = bundle.heads.get(item.task)
    if head is None:
        raise SourceError(f"{item.source}: the bundle has no {item.task} head")
    if item.data.label_names != head.spec.labels:
        raise SourceError(
            f"{item.source}: {item.task} labels {item.data.label_names} differ from the bundle's {head.spec.labels}"
        )


def _training_overlap(bundle: ModelBundle, item: EvaluationSet) -> str | None:
    """Name the case where a set includes rows the shipped recipe trained on, so a figure
    is not mistaken for held-out performance."""
    if bundle.manifest.training.get("recipe") != "default":
        return None
    own = {p.resolve() for p in OWN_DATA_FILES}
    if any(p.resolve() in own for p in item.files) and item.split != "heldout":
        return (
            f"{item.data.name}: includes rows of the default recipe's training part "
            "(use --split heldout for held-out figures)"
        )
    if not item.files and item.split == "train":
        return f"{item.data.name}: a training split of the default recipe"
    return None


def _set_tokens(bundle: ModelBundle, item: EvaluationSet, cache: FeatureCache) -> TokenStates | None:
    """The set's token vectors when its task's head attends over them (else None); the
    pass that encodes them adds its features to `cache`."""
    if not bundle.heads[item.task].reads_tokens:
        return None
    return cache.token_states(item.data, label="evaluate")


def evaluate_set(
    bundle: ModelBundle, item: EvaluationSet, features: np.ndarray, tokens: TokenStates | None = None
) -> Evaluation:
    """Score one labelled set with the bundle's head for its task (and VADER for sentiment);
    `tokens`, the set's token vectors, for a head that attends over them."""
    head = bundle.heads[item.task]
    data = item.data
    metrics = evaluate_report(head, features, data, tokens)
    baselines: dict[str, dict] = {}
    derived: dict[str, dict] = {}
    if item.task == "sentiment":
        baselines["vader"] = vader_metrics(data.texts, data.labels, head.spec.labels)
    if data.name.startswith("goemotions/original:"):
        # derived_emotion_reports names its figures "<taxonomy>:dev"; keep just the taxonomy.
        for name, figures in derived_emotion_reports(head, features, data, tokens).items():
            derived[name.split("/")[1].split(":")[0]] = figures
    return Evaluation(
        source=item.source,
        set_name=data.name,
        task=item.task,
        split=item.split,
        kind=data.kind,
        labels=list(data.label_names),
        n=len(data),
        metrics=metrics,
        baselines=baselines,
        derived=derived,
    )


def evaluate_bundle(
    bundle_path: str | Path,
    sources: Sequence[str],
    *,
    data_root: Path = DEFAULT_DATA_ROOT,
    task: str | None = None,
    split: str | None = None,
    skip_invalid: bool = False,
    encoder: Encoder | None = None,
    cache_dir: Path | None = None,
) -> EvaluationResult:
    """Evaluate the bundle at `bundle_path` on every set the `sources` give (see
    `resolve_sources`). Data is read and checked before the encoder loads, so a bad file
    fails fast. Raises BundleError, SourceError or DataError."""
    bundle = load_bundle(bundle_path)
    sets, skipped = resolve_sources(sources, data_root=data_root, task=task, split=split, skip_invalid=skip_invalid)
    notes = []
    # A file may label tasks this bundle has no head for (complaint, for an older bundle):
    # those are left out and said so; a shared set or --task asked for it explicitly.
    scored = [not (item.files and task is None and item.task not in bundle.heads) for item in sets]
    notes += [
        f"{item.source}: {item.task} labels not scored (the bundle has no {item.task} head)"
        for item, keep in zip(sets, scored)
        if not keep
    ]
    sets = [item for item, keep in zip(sets, scored) if keep]
    if not sets:
        raise SourceError(f"nothing to evaluate: the bundle has none of the heads the data labels ({notes[0]})")
    for item in sets:
        _check_set(bundle, item)
    encoder = encoder or load_encoder(bundle)
    cache = FeatureCache(cache_dir, encoder)  # in memory without cache_dir: each distinct text encoded once
    evaluations = []
    for item in sets:
        tokens = _set_tokens(bundle, item, cache)  # first: its pass fills the features too
        evaluations.append(evaluate_set(bundle, item, cache.features(item.data.texts, label=item.data.name), tokens))

    if any(e.baselines for e in evaluations):
        notes.append(f"VADER baseline: {VADER_RULE}. {VADER_ECE_NOTE}")
    if encoder.max_seq_length != bundle.manifest.encoder.max_seq_length:
        notes.append(
            f"encoder window {encoder.max_seq_length} differs from the bundle's "
            f"{bundle.manifest.encoder.max_seq_length}"
        )
    installed = packaged_model_version()
    if installed != bundle.manifest.encoder.package_version:
        notes.append(
            f"the bundle was trained with {ENCODER_PACKAGE} {bundle.manifest.encoder.package_version}; "
            f"{installed} is installed"
        )
    notes += [note for item in sets if (note := _training_overlap(bundle, item))]
    return EvaluationResult(
        model_name=bundle.name,
        model_version=bundle.version,
        model_path=str(bundle.path),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        evaluations=evaluations,
        skipped_rows=skipped,
        notes=notes,
    )
