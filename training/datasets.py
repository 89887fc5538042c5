"""Labelled data for training and evaluation: the public sets in `../shared/data` and the
project's (or a user's) own labelled interactions.

Every loader returns a `LabelledSet`: texts plus labels in the task's label order, named
by where it came from so manifests and reports can say what a model saw."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from nlp.paths import source_root
from nlp.vocabulary import COMPLAINT_LABELS, CUE_FAMILIES, GOEMOTIONS_LABELS, SENTIMENT_LABELS, URGENCY_LABELS

Kind = Literal["multiclass", "multilabel"]
# Beside the source checkout; installed (no checkout), `../shared/data` from the working directory.
_CHECKOUT = source_root()
DEFAULT_DATA_ROOT = _CHECKOUT.parent / "shared" / "data" if _CHECKOUT else Path("../shared/data")
HELDOUT_SHARE = 4  # 1 in 4 labelled interactions (by id hash) is held out


class DataError(ValueError):
    """A labelled file has a row that cannot be used; the message names file, line, field."""


@dataclass
class LabelledSet:
    """Texts with labels for one task."""

    name: str
    texts: list[str]
    labels: np.ndarray  # multiclass: (n,) int64 label index; multilabel: (n, L) float32 0/1
    label_names: list[str]
    kind: Kind
    aux: dict[str, np.ndarray] = field(default_factory=dict)
    """Per-row side information that is not a label, aligned with `texts` (X-CI's
    `severity`): reported beside a head's figures, never trained on."""

    def __len__(self) -> int:
        return len(self.texts)

    @staticmethod
    def concat(name: str, parts: Sequence[LabelledSet]) -> LabelledSet:
        """Join sets of the same task and label order."""
        first = parts[0]
        for part in parts[1:]:
            if part.label_names != first.label_names or part.kind != first.kind:
                raise ValueError(f"cannot join {part.name} with {first.name}: labels differ")
        # Side information survives a join only where every part has it (rows stay aligned).
        shared = [key for key in first.aux if all(key in p.aux for p in parts)]
        return LabelledSet(
            name=name,
            texts=[t for p in parts for t in p.texts],
            labels=np.concatenate([p.labels for p in parts]),
            label_names=first.label_names,
            kind=first.kind,
            aux={key: np.concatenate([p.aux[key] for p in parts]) for key in shared},
        )

    def subset(self, mask: np.ndarray, name: str) -> LabelledSet:
        """The rows where `mask` is true, with their side information."""
        return LabelledSet(
            name,
            [t for t, keep in zip(self.texts, mask) if keep],
            self.labels[mask],
            self.label_names,
            self.kind,
            {key: values[mask] for key, values in self.aux.items()},
        )


def _split_file(split: str) -> str:
    if split not in {"train", "dev"}:
        raise ValueError(f"split must be 'train' or 'dev' (test splits are withheld), not {split!r}")
    return split


# --- GoEmotions --------------------------------------------------------------------


def load_goemotions(root: Path, split: str, taxonomy: str = "original") -> LabelledSet:
    """GoEmotions in one of its taxonomies ('original' 28 labels, 'ekman', 'group'), multi-label."""
    folder = root / "goemotions" / taxonomy
    names = [line.strip() for line in (folder / "labels.txt").read_text().splitlines() if line.strip()]
    texts: list[str] = []
    rows: list[list[int]] = []
    with open(folder / f"{_split_file(split)}.tsv", encoding="utf-8") as handle:
        for line in handle:
            text, label_ids, _ = line.rstrip("\n").split("\t")
            texts.append(text)
            rows.append([int(i) for i in label_ids.split(",")])
    labels = np.zeros((len(texts), len(names)), dtype=np.float32)
    for i, ids in enumerate(rows):
        labels[i, ids] = 1.0
    if taxonomy == "original" and names != list(GOEMOTIONS_LABELS):
        raise DataError(f"{folder}/labels.txt does not list the 28 GoEmotions labels in their usual order")
    return LabelledSet(f"goemotions/{taxonomy}:{split}", texts, labels, names, "multilabel")


def load_goemotions_sentiment(root: Path, split: str) -> LabelledSet:
    """GoEmotions sentiment groups as 3-class sentiment: texts with exactly one of
    positive / negative / neutral (ambiguous and mixed rows are left out)."""
    grouped = load_goemotions(root, split, "group")
    keep = np.zeros(len(grouped), dtype=bool)
    labels = np.zeros(len(grouped), dtype=np.int64)
    for i, row in enumerate(grouped.labels):
        present = [grouped.label_names[j] for j in np.flatnonzero(row)]
        if len(present) == 1 and present[0] in SENTIMENT_LABELS:
            keep[i] = True
            labels[i] = SENTIMENT_LABELS.index(present[0])
    texts = [t for t, k in zip(grouped.texts, keep) if k]
    return LabelledSet(f"goemotions/group-sentiment:{split}", texts, labels[keep], list(SENTIMENT_LABELS), "multiclass")


# --- TweetEval and MELD ----------------------------------------------------------------


def load_tweeteval_sentiment(root: Path, split: str = "val") -> LabelledSet:
    """TweetEval sentiment (0 negative, 1 neutral, 2 positive): 'train' or 'val' (the
    test split is withheld)."""
    if split not in {"train", "val"}:
        raise ValueError(f"TweetEval split must be 'train' or 'val' (test is withheld), not {split!r}")
    folder = root / "tweeteval" / "sentiment"
    texts = (folder / f"{split}_text.txt").read_text(encoding="utf-8").splitlines()
    labels = np.array([int(x) for x in (folder / f"{split}_labels.txt").read_text().split()], dtype=np.int64)
    if len(texts) != len(labels):
        raise DataError(f"{folder}: {len(texts)} texts but {len(labels)} labels")
    return LabelledSet(f"tweeteval/sentiment:{split}", texts, labels, list(SENTIMENT_LABELS), "multiclass")


def load_meld_sentiment(root: Path, split: str) -> LabelledSet:
    """MELD utterances with their sentiment (negative / neutral / positive)."""
    path = root / "meld" / f"{_split_file(split)}_sent_emo.csv"
    texts, labels = [], []
    with open(path, encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            texts.append(row["Utterance"].replace("\x92", "'"))
            labels.append(SENTIMENT_LABELS.index(row["Sentiment"]))
    return LabelledSet(
        f"meld/sentiment:{split}", texts, np.array(labels, dtype=np.int64), list(SENTIMENT_LABELS), "multiclass"
    )


# --- X-CI (complaints) -------------------------------------------------------------------

XCI_PARTS = ("train", "heldout")
XCI_SEVERITY_MAX = 4  # 0 no complaint, 1 no explicit reproach ... 4 blame (see the data README)


def load_xci_complaint(root: Path, part: str) -> LabelledSet:
    """X-CI tweets with their complaint label ("no" / "yes" from `label` 0/1) and their
    `Severity` (0-4) as side information (`aux["severity"]`).

    X-CI publishes one labelled file here (its test quarter is withheld), so `part` picks
    the project's own split of it by the held-out rule of labelled interactions
    (`heldout_split("xci:<id>")`): `train` (about three quarters) or `heldout` (the rest,
    only reported, never tuned on)."""
    if part not in XCI_PARTS:
        raise ValueError(f"X-CI part must be one of {list(XCI_PARTS)} (its test split is withheld), not {part!r}")
    path = root / "xci" / "train.csv"
    texts, labels, severity = [], [], []
    with open(path, encoding="utf-8", newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            try:
                label, level = int(row["label"]), int(row["Severity"])
            except (KeyError, TypeError, ValueError):
                raise DataError(f"{path}:{line}: fields 'label' and 'Severity' must be integers") from None
            if label not in (0, 1) or not 0 <= level <= XCI_SEVERITY_MAX:
                raise DataError(f"{path}:{line}: label {label} / Severity {level} out of range")
            if heldout_split(f"xci:{row['id']}") != part:
                continue
            texts.append(row["tweet"])
            labels.append(label)
            severity.append(level)
    return LabelledSet(
        f"xci/complaint:{part}",
        texts,
        np.array(labels, dtype=np.int64),
        list(COMPLAINT_LABELS),
        "multiclass",
        aux={"severity": np.array(severity, dtype=np.int64)},
    )


# --- labelled interactions (the project's own and users') --------------------------------

TASK_LABELS: dict[str, tuple[str, ...]] = {
    "sentiment": SENTIMENT_LABELS,
    "urgency": URGENCY_LABELS,
    "complaint": COMPLAINT_LABELS,
}
"""Single-label tasks of labelled interactions."""
MULTILABEL_TASKS: dict[str, tuple[str, ...]] = {"emotions": GOEMOTIONS_LABELS, "cues": CUE_FAMILIES}
"""Multi-label tasks: a list of labels (JSONL) or labels joined by ';' or ',' (CSV)."""
NONE_IS_A_LABEL: frozenset[str] = frozenset({"cues"})
"""Multi-label tasks where an empty list is an answer (a message with no risk cue), not a
missing label; every message has at least one emotion, if only neutral."""
INTERACTION_TASKS: tuple[str, ...] = (*TASK_LABELS, *MULTILABEL_TASKS)


@dataclass
class Interaction:
    """One labelled message; any subset of the task labels may be present."""

    id: str
    text: str
    labels: dict[str, str]
    split: str
    multilabels: dict[str, tuple[str, ...]] = field(default_factory=dict)


def heldout_split(identifier: str) -> str:
    """Deterministic split from the id, so it never changes as files grow."""
    digest = int(hashlib.sha1(identifier.encode("utf-8")).hexdigest(), 16)
    return "heldout" if digest % HELDOUT_SHARE == 0 else "train"


def read_interactions(
    paths: Iterable[Path],
    *,
    skip_invalid: bool = False,
    tasks: Sequence[str] = tuple(TASK_LABELS),
) -> tuple[list[Interaction], list[str]]:
    """Read labelled interactions from JSONL files. Returns (rows, problems).

    Each row needs `text` and may carry labels for `tasks` (`sentiment`, `urgency`,
    `complaint` yes/no, and `emotions`, a list of GoEmotions labels), an `id` and a `split`; labels are checked
    against the task's label set, other fields are ignored. A bad row raises DataError
    naming file, line and field, unless `skip_invalid`, where it is listed in problems."""
    rows: list[Interaction] = []
    problems: list[str] = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    rows.append(_parse_interaction(line, f"{path.name}:{number}", tasks))
                except DataError as exc:
                    if not skip_invalid:
                        raise DataError(f"{path}:{number}: {exc}") from None
                    problems.append(f"{path}:{number}: {exc}")
    return rows, problems


def _parse_interaction(line: str, default_id: str, tasks: Sequence[str]) -> Interaction:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise DataError("a row must be a JSON object")
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise DataError("field 'text': missing or empty")
    return _interaction(record, text, default_id, tasks)


def _interaction(record: dict, text: str, default_id: str, tasks: Sequence[str]) -> Interaction:
    """Check the labels of a parsed row (JSONL object or CSV record; empty means no label)."""
    labels: dict[str, str] = {}
    multilabels: dict[str, tuple[str, ...]] = {}
    for task in tasks:
        value = record.get(task)
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "":
            continue
        if task in MULTILABEL_TASKS:
            multilabels[task] = _multilabel_value(task, value)
            continue
        allowed = TASK_LABELS[task]
        if value not in allowed:
            raise DataError(f"field {task!r}: {value!r} is not one of {list(allowed)}")
        labels[task] = value
    identifier = str(record.get("id") or "").strip() or default_id
    split = str(record.get("split") or "").strip() or heldout_split(identifier)
    return Interaction(id=identifier, text=text, labels=labels, split=split, multilabels=multilabels)


def _multilabel_value(task: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DataError(f"field {task!r}: expected a list of labels")
    if not value and task not in NONE_IS_A_LABEL:
        raise DataError(f"field {task!r}: expected a non-empty list of labels")
    allowed = MULTILABEL_TASKS[task]
    unknown = [v for v in value if v not in allowed]
    if unknown:
        raise DataError(f"field {task!r}: {unknown[0]!r} is not one of the {len(allowed)} {task} labels")
    return tuple(dict.fromkeys(value))


def read_csv_interactions(
    path: Path,
    *,
    skip_invalid: bool = False,
    tasks: Sequence[str] = tuple(TASK_LABELS),
) -> tuple[list[Interaction], list[str]]:
    """Read labelled interactions from a CSV file with a `text` column and label columns
    for some of `tasks` (optional `id`, `split`). An empty cell is no label.

    Same contract as `read_interactions`: a bad row raises DataError naming file, line and
    field, unless `skip_invalid`, where it is listed in the returned problems."""
    rows: list[Interaction] = []
    problems: list[str] = []
    # utf-8-sig: spreadsheets often save a byte-order mark, which would stick to the first column name.
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        if "text" not in columns:
            raise DataError(f"{path}:1: field 'text': the header has no 'text' column")
        if not any(task in columns for task in tasks):
            raise DataError(f"{path}:1: the header has none of the label columns {list(tasks)}")
        for record in reader:
            line = reader.line_num
            try:
                text = record.get("text")
                if not text or not text.strip():
                    raise DataError("field 'text': missing or empty")
                rows.append(_interaction(record, text, f"{path.name}:{line}", tasks))
            except DataError as exc:
                if not skip_invalid:
                    raise DataError(f"{path}:{line}: {exc}") from None
                problems.append(f"{path}:{line}: {exc}")
    return rows, problems


def read_labelled_files(
    paths: Sequence[Path],
    *,
    skip_invalid: bool = False,
    tasks: Sequence[str] = tuple(TASK_LABELS),
) -> tuple[list[Interaction], list[str]]:
    """Read interactions from JSONL and CSV files (chosen by the `.csv` suffix)."""
    rows: list[Interaction] = []
    problems: list[str] = []
    for path in paths:
        try:
            if path.suffix.lower() == ".csv":
                found, skipped = read_csv_interactions(path, skip_invalid=skip_invalid, tasks=tasks)
            else:
                found, skipped = read_interactions([path], skip_invalid=skip_invalid, tasks=tasks)
        except UnicodeDecodeError:  # a whole-file problem: no row of it can be trusted
            raise DataError(f"{path}: not UTF-8 text") from None
        rows += found
        problems += skipped
    return rows, problems


def interactions_for_task(rows: Sequence[Interaction], task: str, split: str | None, name: str) -> LabelledSet:
    """The rows of one split (every row when `split` is None) that carry a label for
    `task`, as a LabelledSet."""
    if task in MULTILABEL_TASKS:
        names = MULTILABEL_TASKS[task]
        chosen = [r for r in rows if task in r.multilabels and (split is None or r.split == split)]
        labels = np.zeros((len(chosen), len(names)), dtype=np.float32)
        for i, row in enumerate(chosen):
            labels[i, [names.index(label) for label in row.multilabels[task]]] = 1.0
        kind: Kind = "multilabel"
    else:
        names = TASK_LABELS[task]
        chosen = [r for r in rows if task in r.labels and (split is None or r.split == split)]
        labels = np.array([names.index(r.labels[task]) for r in chosen], dtype=np.int64)
        kind = "multiclass"
    return LabelledSet(f"{name}/{task}:{split or 'all'}", [r.text for r in chosen], labels, list(names), kind)
