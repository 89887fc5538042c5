"""Escalation labels from two independent blind passes, their agreement, and the final
labels after adjudication (`data/escalation/GUIDELINE.md`).

Each pass, and the adjudication, is a JSONL file of
`{"conversation_id", "level", "recommended", "route_to", "reasons"}` lines. Two labels
agree when level and route agree (`recommended` follows from the level; reasons are free
text, kept but not compared). The final label of a conversation is the adjudicated one
where there is one, else the passes' label where both gave the same; any other
conversation has no final label yet. The pairing rule is `training.agreement`'s, as for
the urgency and cue sets.

    python -m training.escalation_labels [--labels-dir data/escalation/labels]

writes `agreement.json` (kappas on level, recommended and route) and `disagreements.jsonl`
(what the adjudicator has to decide) beside the passes."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from nlp.vocabulary import DEFAULT_ROUTES, ESCALATION_LEVELS, NO_ROUTE, RECOMMENDED_LEVELS
from training.agreement import LabelFileError, final_labels, kappa

LABELS_DIR = Path("data") / "escalation" / "labels"
"""Where the passes and the adjudication live, relative to the source checkout."""
PASS_FILES = ("pass_a.jsonl", "pass_b.jsonl")
ADJUDICATED_FILE = "adjudicated.jsonl"


@dataclass(frozen=True)
class EscalationLabel:
    """One annotator's (or the adjudicator's) decision on one conversation."""

    level: str
    route_to: str
    reasons: tuple[str, ...] = field(default=(), compare=False)

    @property
    def recommended(self) -> bool:
        """A person should step in: the guideline's `recommended`."""
        return self.level in RECOMMENDED_LEVELS


def read_escalation_labels(path: Path) -> dict[str, EscalationLabel]:
    """The labels of one file, by conversation id (none where the file does not exist yet;
    an id labelled twice keeps the last line). Raises LabelFileError on a line that breaks
    the guideline: unknown level or route, a route on a level that takes none or the other
    way round, or `recommended` contradicting the level."""
    if not path.is_file():
        return {}
    labels: dict[str, EscalationLabel] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
            conversation_id, level, route = row["conversation_id"], row["level"], row["route_to"]
            reasons = tuple(str(reason) for reason in row.get("reasons") or ())
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise LabelFileError(f"{where}: {exc}") from None
        if level not in ESCALATION_LEVELS or route not in DEFAULT_ROUTES:
            raise LabelFileError(f"{where}: level {level!r} or route_to {route!r} not in the guideline")
        label = EscalationLabel(level, route, reasons)
        if (route == NO_ROUTE) == label.recommended:
            raise LabelFileError(
                f"{where}: route_to {route!r} does not fit level {level!r} (a route exactly when recommended)"
            )
        if "recommended" in row and row["recommended"] is not label.recommended:
            raise LabelFileError(f"{where}: recommended {row['recommended']!r} contradicts level {level!r}")
        labels[conversation_id] = label
    return labels


def final_escalation_labels(labels_dir: Path = LABELS_DIR) -> dict[str, EscalationLabel]:
    """The final label of every conversation that has one so far: the adjudicated one, or
    the one both passes gave. Disagreements not yet adjudicated, and conversations one pass
    has not reached, have none (and are skipped by the evaluation)."""
    first, second = (read_escalation_labels(labels_dir / name) for name in PASS_FILES)
    adjudicated = read_escalation_labels(labels_dir / ADJUDICATED_FILE)
    # Only what is decided goes through the shared pairing rule, so it never raises for an
    # open disagreement; the adjudicator may also label a conversation outright.
    decided = {cid for cid in first.keys() & second.keys() if first[cid] == second[cid] or cid in adjudicated}
    final = final_labels({cid: first[cid] for cid in decided}, {cid: second[cid] for cid in decided}, adjudicated)
    return {**final, **{cid: label for cid, label in adjudicated.items() if cid not in final}}


def escalation_agreement(first: dict[str, EscalationLabel], second: dict[str, EscalationLabel]) -> dict:
    """Agreement over the conversations both passes labelled: raw agreement and Cohen's
    kappa of the level (plain and quadratic-weighted, the levels being ordered), of
    `recommended`, and of the route (on all, and on those both passes recommend)."""
    ids = sorted(first.keys() & second.keys())
    a, b = [first[i] for i in ids], [second[i] for i in ids]
    levels = list(ESCALATION_LEVELS)
    both_recommended = [(x, y) for x, y in zip(a, b) if x.recommended and y.recommended]
    return {
        "conversations": len(ids),
        "only_first": len(first.keys() - second.keys()),
        "only_second": len(second.keys() - first.keys()),
        "level": {
            "agreement": _share([x.level == y.level for x, y in zip(a, b)]),
            "kappa": kappa([x.level for x in a], [y.level for y in b], labels=levels),
            "kappa_quadratic": kappa([x.level for x in a], [y.level for y in b], labels=levels, weights="quadratic"),
            "confusion": {
                f"{p}/{q}": n for (p, q), n in sorted(Counter((x.level, y.level) for x, y in zip(a, b)).items())
            },
        },
        "recommended": {
            "agreement": _share([x.recommended == y.recommended for x, y in zip(a, b)]),
            "kappa": kappa([x.recommended for x in a], [y.recommended for y in b]),
        },
        "route": {
            "agreement": _share([x.route_to == y.route_to for x, y in zip(a, b)]),
            "kappa": kappa([x.route_to for x in a], [y.route_to for y in b], labels=list(DEFAULT_ROUTES)),
            "both_recommended": len(both_recommended),
            "agreement_when_both_recommended": _share([x.route_to == y.route_to for x, y in both_recommended]),
        },
    }


def disagreements(first: dict[str, EscalationLabel], second: dict[str, EscalationLabel]) -> list[dict]:
    """The conversations the passes label differently (level or route), with both labels."""
    return [
        {"conversation_id": cid, "pass_a": as_record(cid, first[cid]), "pass_b": as_record(cid, second[cid])}
        for cid in sorted(first.keys() & second.keys())
        if first[cid] != second[cid]
    ]


def as_record(conversation_id: str, label: EscalationLabel) -> dict:
    """A label as one line of a pass or adjudication file."""
    return {
        "conversation_id": conversation_id,
        "level": label.level,
        "recommended": label.recommended,
        "route_to": label.route_to,
        "reasons": list(label.reasons),
    }


def _share(hits: list[bool]) -> float | None:
    return round(sum(hits) / len(hits), 3) if hits else None


def main() -> None:
    parser = argparse.ArgumentParser(description="Agreement between the two escalation labelling passes.")
    parser.add_argument("--labels-dir", type=Path, default=LABELS_DIR, help="holds pass_a.jsonl and pass_b.jsonl")
    args = parser.parse_args()
    first, second = (read_escalation_labels(args.labels_dir / name) for name in PASS_FILES)
    report = escalation_agreement(first, second)
    final = final_escalation_labels(args.labels_dir)
    report["final"] = {"conversations": len(final), "level": dict(Counter(label.level for label in final.values()))}
    open_rows = disagreements(first, second)
    (args.labels_dir / "agreement.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (args.labels_dir / "disagreements.jsonl").write_text(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in open_rows), encoding="utf-8"
    )
    print(json.dumps(report, indent=2))
    print(f"{len(open_rows)} disagreements written to {args.labels_dir / 'disagreements.jsonl'}")


if __name__ == "__main__":
    main()
