"""Risk-cue training rows: every customer message the project labelled in two independent
passes (`data/urgency/GUIDELINE.md`), with its final `cues` list:

- the public pool (`data/urgency/pool.jsonl`, texts read from `../shared/data` by path);
- the written critical-situation messages (`data/urgency/messages_c.jsonl`);
- the cue set (`data/cues/messages.jsonl`): positives in and out of the usual wording, and
  the hard negatives the patterns trip on (negations, hypotheticals, how-to questions,
  jokes, problems already solved, other people's problems).

An empty list is a label (no cue). Which rows are held out follows the usual id rule
(`heldout_split`), the same as for urgency."""

from __future__ import annotations

import json
from pathlib import Path

from training.agreement import Label, final_labels, read_labels
from training.datasets import Interaction, heldout_split
from training.urgency_pool import final_pool_labels, final_written_labels, missing_pool_sources, resolve_texts

CUE_SET_DIR = Path("data") / "cues"
"""The cue set and its labelling passes, relative to the source checkout."""
URGENCY_DIR = Path("data") / "urgency"


def final_cue_set_labels(cue_dir: Path) -> dict[str, Label]:
    """The cue set's final labels: the two passes where they agree, the adjudication where not."""
    labels = cue_dir / "labels"
    return final_labels(
        read_labels(labels / "pass_a.jsonl"),
        read_labels(labels / "pass_b.jsonl"),
        read_labels(labels / "adjudicated.jsonl"),
    )


def cue_interactions(data_root: Path, source_root: Path = Path(".")) -> list[Interaction]:
    """Every double-labelled message as a row with its final `cues` (and `urgency`, so the
    cue set can train urgency too). The public pool joins when `data_root` holds its sets."""
    urgency_labels = source_root / URGENCY_DIR / "labels"
    rows = _written(source_root / URGENCY_DIR / "messages_c.jsonl", final_written_labels(urgency_labels))
    rows += cue_set_interactions(source_root)
    if not missing_pool_sources(data_root):
        pool = final_pool_labels(urgency_labels)
        texts = resolve_texts(list(pool), data_root)
        rows += [_row(ref, texts[ref], label) for ref, label in pool.items()]
    return rows


def cue_set_interactions(source_root: Path = Path(".")) -> list[Interaction]:
    """The cue set's messages with their final labels (none before it is labelled)."""
    cue_dir = source_root / CUE_SET_DIR
    if not (cue_dir / "labels" / "adjudicated.jsonl").is_file():
        return []
    return _written(cue_dir / "messages.jsonl", final_cue_set_labels(cue_dir))


def _written(path: Path, labels: dict[str, Label]) -> list[Interaction]:
    """The written messages of `path` that both passes labelled, with their final labels."""
    messages = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [_row(m["id"], m["text"], labels[m["id"]]) for m in messages if m["id"] in labels]


def _row(identifier: str, text: str, label: Label) -> Interaction:
    return Interaction(
        id=identifier,
        text=text,
        labels={"urgency": label.urgency},
        split=heldout_split(identifier),
        multilabels={"cues": tuple(sorted(label.cues))},
    )
