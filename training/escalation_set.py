"""The whole escalation set (`data/escalation/GUIDELINE.md`): the written conversations
that carry their label (`conversations.jsonl`), the later written ones (`written_2.jsonl`)
and STC-3 dialogues kept as references only (`stc3.jsonl`, `{"ref": "stc3:train:<id>"}`,
texts read from the public set by path, never copied). The last two take their labels
from the blind passes (`training.escalation_labels`); until a conversation has a final
label it is skipped and counted.

    python -m training.escalation_set draw-stc3      # (re)writes data/escalation/stc3.jsonl
    python -m training.escalation_set sheet --out DIR  # blind sheet of every unlabelled conversation
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from dataclasses import dataclass
from pathlib import Path

from nlp.schemas import Transcript
from training.escalation_eval import (
    EscalationDataError,
    LabelledConversation,
    is_heldout,
    parse_transcript,
    read_labelled,
)
from training.escalation_labels import LABELS_DIR, final_escalation_labels
from training.urgency_pool import POOL_SOURCES, resolve_dialogues, stc3_dialogues

SET_DIR = Path("data") / "escalation"
LABELLED_FILE = "conversations.jsonl"
WRITTEN_FILE = "written_2.jsonl"
STC3_FILE = "stc3.jsonl"
STC3_CHANNEL = "social"
STC3_INDUSTRY = "consumer brands (Weibo)"
STC3_ROLES = {"customer": "customer", "helpdesk": "agent"}
"""STC-3 senders as the service's message roles."""

STC3_STRATA = {"unhappy": 64, "mixed": 56, "satisfied": 40}
"""How many dialogues each satisfaction stratum gives (160 in all): unhappy ones carry most
escalation cues, satisfied ones are the `none` cases a policy must leave alone."""
STC3_SATISFIED_ABOVE = 0.5
STC3_UNHAPPY_BELOW = -0.5
"""Bounds on the mean of the 19 annotators' `S` (customer satisfaction, -2..2); between them is `mixed`."""
DRAW_SEED = 2026


@dataclass
class EscalationSet:
    """The labelled conversations, and how many of the set were left out and why."""

    rows: list[LabelledConversation]
    unlabelled: int
    """Conversations with no final label yet (passes unfinished, or a disagreement not adjudicated)."""
    unresolved: int
    """Labelled STC-3 conversations skipped because the data root lacks STC-3."""


def satisfaction_stratum(dialogue: dict) -> str:
    """`unhappy`, `mixed` or `satisfied` by the annotators' mean customer satisfaction."""
    mean = statistics.fmean(annotation["quality"]["S"] for annotation in dialogue["annotations"])
    if mean < STC3_UNHAPPY_BELOW:
        return "unhappy"
    return "satisfied" if mean > STC3_SATISFIED_ABOVE else "mixed"


def draw_stc3(data_root: Path, seed: int = DRAW_SEED) -> list[str]:
    """References of the chosen STC-3 dialogues, `STC3_STRATA` of each stratum, in a
    shuffled order (deterministic for a seed)."""
    rng = random.Random(seed)
    by_stratum: dict[str, list[str]] = {stratum: [] for stratum in STC3_STRATA}
    for ref, dialogue in stc3_dialogues(data_root):
        by_stratum[satisfaction_stratum(dialogue)].append(ref)
    chosen = [ref for stratum, size in STC3_STRATA.items() for ref in rng.sample(by_stratum[stratum], size)]
    rng.shuffle(chosen)
    return chosen


def read_stc3_refs(path: Path) -> list[dict]:
    """The STC-3 reference records (`ref`, `channel`, `industry`) of the set."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def stc3_transcripts(records: list[dict], data_root: Path) -> list[tuple[dict, Transcript]]:
    """Each reference record with its dialogue as a transcript; the id is the reference."""
    dialogues = resolve_dialogues([record["ref"] for record in records], data_root)
    return [(record, _stc3_transcript(record, dialogues[record["ref"]])) for record in records]


def read_written(path: Path) -> list[tuple[dict, Transcript]]:
    """Unlabelled written conversations (one transcript per line), each with its record."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EscalationDataError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        rows.append((record, parse_transcript(record, f"{path}:{number}")))
    return rows


def read_escalation_set(set_dir: Path, data_root: Path) -> EscalationSet:
    """Every conversation of the set in `set_dir` (a checkout's `data/escalation`) that has
    a final label. STC-3 texts are read from `data_root` only for conversations that have
    one; if it lacks STC-3 they are counted as unresolved. Raises EscalationDataError for a
    label whose id is not in the set."""
    rows = read_labelled(set_dir / LABELLED_FILE)
    final = final_escalation_labels(set_dir / LABELS_DIR.name)
    written = read_written(set_dir / WRITTEN_FILE)
    refs = read_stc3_refs(set_dir / STC3_FILE)
    known = {transcript.conversation_id for _, transcript in written} | {record["ref"] for record in refs}
    unknown = sorted(final.keys() - known)
    if unknown:
        raise EscalationDataError(f"{len(unknown)} labelled ids are not in the set, e.g. {unknown[0]}")
    labelled_refs = [record for record in refs if record["ref"] in final]
    unresolved = 0
    if not (data_root / POOL_SOURCES["stc3"]).is_file():
        unresolved, labelled_refs = len(labelled_refs), []
    candidates = written + (stc3_transcripts(labelled_refs, data_root) if labelled_refs else [])
    for _, transcript in candidates:
        label = final.get(transcript.conversation_id or "")
        if label is None:
            continue
        conversation_id = transcript.conversation_id or ""
        rows.append(
            LabelledConversation(
                transcript, label.level, label.recommended, is_heldout(conversation_id), label.route_to, conversation_id
            )
        )
    unlabelled = len(written) + len(refs) - sum(cid in final for cid in known)
    return EscalationSet(rows, unlabelled, unresolved)


def sheet_rows(set_dir: Path, data_root: Path, seed: int = DRAW_SEED) -> list[dict]:
    """The blind annotation sheet: every conversation of `set_dir` that takes its label from
    the passes (written and STC-3), texts resolved, no label and no note, in a shuffled order."""
    conversations = read_written(set_dir / WRITTEN_FILE)
    conversations += stc3_transcripts(read_stc3_refs(set_dir / STC3_FILE), data_root)
    rows = [
        {
            "conversation_id": transcript.conversation_id,
            "channel": transcript.channel.value,
            "industry": record.get("industry"),
            "messages": [message.model_dump(mode="json", exclude_none=True) for message in transcript.messages],
        }
        for record, transcript in conversations
    ]
    random.Random(seed).shuffle(rows)
    return rows


def _stc3_transcript(record: dict, turns: list[tuple[str, str]]) -> Transcript:
    return Transcript.model_validate(
        {
            "conversation_id": record["ref"],
            "channel": record.get("channel", STC3_CHANNEL),
            "messages": [
                {"id": f"m{index}", "role": STC3_ROLES[sender], "text": text}
                for index, (sender, text) in enumerate(turns, start=1)
            ],
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("draw-stc3", "sheet"))
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--set-dir", type=Path, default=SET_DIR)
    parser.add_argument("--out", type=Path, help="sheet: a folder outside the repository")
    args = parser.parse_args()
    if args.command == "draw-stc3":
        path = args.set_dir / STC3_FILE
        refs = draw_stc3(args.data_root)
        records = [{"ref": ref, "channel": STC3_CHANNEL, "industry": STC3_INDUSTRY} for ref in refs]
        path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
        print(f"wrote {len(refs)} references to {path}")
        return
    if args.out is None:
        parser.error("sheet needs --out")
    rows = sheet_rows(args.set_dir, args.data_root)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sheet.jsonl").write_text(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8"
    )
    print(f"wrote {len(rows)} conversations to {args.out / 'sheet.jsonl'}")


if __name__ == "__main__":
    main()
