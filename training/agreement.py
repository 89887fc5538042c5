"""Agreement between two independent labelling passes, and the final labels after
adjudication.

Each pass is a JSONL file of `{"ref", "urgency", "cues", "note"?}` lines
(`data/urgency/GUIDELINE.md`). Agreement is Cohen's kappa on the urgency level (plain, and
quadratic-weighted because the levels are ordered) and on each cue family (present or
not). Where the passes differ, the adjudicated file decides and keeps its reason; where
they agree, their label stands.

    python -m training.agreement data/urgency/labels/pass_a.jsonl data/urgency/labels/pass_b.jsonl \
        [--adjudicated data/urgency/labels/adjudicated.jsonl] [--json OUT] [--disagreements OUT]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sklearn.metrics import cohen_kappa_score

from nlp.vocabulary import CUE_FAMILIES, URGENCY_LABELS


@dataclass(frozen=True)
class Label:
    """One annotator's (or the adjudicator's) decision on one message."""

    urgency: str
    cues: frozenset[str]


L = TypeVar("L", bound=Hashable)
"""Any label type that compares by value: this module's `Label`, or another set's (escalation)."""


class LabelFileError(ValueError):
    """A label file line is not valid JSON or uses values outside the guideline's."""


def read_labels(path: Path) -> dict[str, Label]:
    """The labels of one pass, by reference; a reference labelled twice keeps the last line."""
    labels: dict[str, Label] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            ref, urgency, cues = row["ref"], row["urgency"], frozenset(row.get("cues") or ())
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise LabelFileError(f"{path}:{number}: {exc}") from None
        if urgency not in URGENCY_LABELS or not cues <= set(CUE_FAMILIES):
            raise LabelFileError(f"{path}:{number}: urgency {urgency!r} or cues {sorted(cues)} not in the guideline")
        labels[ref] = Label(urgency, cues)
    return labels


def kappa(
    first: Sequence[object],
    second: Sequence[object],
    labels: Sequence[object] | None = None,
    weights: str | None = None,
) -> float | None:
    """Cohen's kappa of two aligned label lists, rounded to 3 places; None where it is
    undefined: no items, or nothing varies (each pass gave one value throughout)."""
    if not first or (len(set(first)) == 1 and len(set(second)) == 1):
        return None
    return round(float(cohen_kappa_score(first, second, labels=labels, weights=weights)), 3)


def agreement(first: dict[str, Label], second: dict[str, Label]) -> dict:
    """Kappas, raw agreement and the urgency confusion table over the references both passes labelled."""
    refs = sorted(first.keys() & second.keys())
    a = [first[ref].urgency for ref in refs]
    b = [second[ref].urgency for ref in refs]
    cues = {}
    for family in CUE_FAMILIES:
        x = [family in first[ref].cues for ref in refs]
        y = [family in second[ref].cues for ref in refs]
        cues[family] = {
            "first": sum(x),
            "second": sum(y),
            "both": sum(p and q for p, q in zip(x, y)),
            "kappa": kappa(x, y),
        }
    confusion = Counter(zip(a, b))
    return {
        "messages": len(refs),
        "only_first": len(first.keys() - second.keys()),
        "only_second": len(second.keys() - first.keys()),
        "urgency": {
            "agreement": round(sum(p == q for p, q in zip(a, b)) / max(len(refs), 1), 3),
            "kappa": round(cohen_kappa_score(a, b, labels=list(URGENCY_LABELS)), 3),
            "kappa_quadratic": round(cohen_kappa_score(a, b, labels=list(URGENCY_LABELS), weights="quadratic"), 3),
            "confusion": {f"{p}/{q}": n for (p, q), n in sorted(confusion.items())},
        },
        "cues": cues,
    }


def disagreements(first: dict[str, Label], second: dict[str, Label]) -> list[str]:
    """References where the passes differ on urgency or on any cue family."""
    return [ref for ref in sorted(first.keys() & second.keys()) if first[ref] != second[ref]]


def final_labels(first: Mapping[str, L], second: Mapping[str, L], adjudicated: Mapping[str, L]) -> dict[str, L]:
    """The label of each reference both passes labelled: theirs where they agree, the
    adjudicated one where they differ. Raises LabelFileError for a disagreement not yet adjudicated."""
    final: dict[str, L] = {}
    missing = []
    for ref in sorted(first.keys() & second.keys()):
        if first[ref] == second[ref]:
            final[ref] = first[ref]
        elif ref in adjudicated:
            final[ref] = adjudicated[ref]
        else:
            missing.append(ref)
    if missing:
        raise LabelFileError(f"{len(missing)} disagreements are not adjudicated yet, e.g. {missing[0]}")
    return final


def main() -> None:
    parser = argparse.ArgumentParser(description="Agreement between two labelling passes.")
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--adjudicated", type=Path, help="adjudicated labels: also report the final distribution")
    parser.add_argument("--json", type=Path, help="write the report here too")
    parser.add_argument("--disagreements", type=Path, help="write the references to adjudicate here (JSONL)")
    args = parser.parse_args()
    first, second = read_labels(args.first), read_labels(args.second)
    report = agreement(first, second)
    if args.disagreements:
        rows = [
            {"ref": ref, "first": _as_dict(first[ref]), "second": _as_dict(second[ref])}
            for ref in disagreements(first, second)
        ]
        args.disagreements.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    if args.adjudicated:
        final = final_labels(first, second, read_labels(args.adjudicated))
        report["final"] = {
            "messages": len(final),
            "urgency": dict(Counter(label.urgency for label in final.values())),
            "cues": dict(Counter(cue for label in final.values() for cue in label.cues)),
        }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")


def _as_dict(label: Label) -> dict:
    return {"urgency": label.urgency, "cues": sorted(label.cues)}


if __name__ == "__main__":
    main()
