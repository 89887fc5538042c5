"""Evaluate escalation advice against the team's labelled conversations
(`data/escalation/conversations.jsonl`, guideline beside it).

Reports, for all conversations, the part the policy may be tuned on, and the held-out
part it must not be tuned on: precision / recall / F1 of `recommended`, accuracy of
`level`, the level confusion matrix and route accuracy. The metric functions here are
also what `convintel policy backtest` (training/policy_backtest.py) reports with."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from nlp.analyzer import Analyzer
from nlp.paths import source_root
from nlp.policy import Rule
from nlp.schemas import Escalation, Transcript
from nlp.vocabulary import ESCALATION_LEVELS, NO_ROUTE, RECOMMENDED_LEVELS

# In the source checkout; installed (data/ is not), relative to the working directory as the CLI's default is.
DEFAULT_DATA = (source_root() or Path()) / "data" / "escalation" / "conversations.jsonl"
HELDOUT_PERCENT = 30
PARTS = ("all", "tuning", "heldout")
"""The parts every report scores: all conversations, the tuning part and the held-out part."""
LEVEL_INDEX = {level: i for i, level in enumerate(ESCALATION_LEVELS)}


def is_heldout(conversation_id: str) -> bool:
    """The guideline's rule: the first 8 hex digits of sha256(id), mod 100, below 30."""
    return int(hashlib.sha256(conversation_id.encode("utf-8")).hexdigest()[:8], 16) % 100 < HELDOUT_PERCENT


@dataclass
class LabelledConversation:
    transcript: Transcript
    level: str
    recommended: bool
    heldout: bool
    route: str | None = None
    """The label's `route_to`, where it names one."""
    conversation_id: str = ""
    """The transcript's id, or `line-N` where it has none (the id the held-out rule reads)."""


class EscalationDataError(ValueError):
    """A labelled conversation that cannot be read; the message names file, line and field."""


def read_labelled(path: Path = DEFAULT_DATA) -> list[LabelledConversation]:
    """Labelled conversations from a JSONL file (one transcript plus `label` per line)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EscalationDataError(f"cannot read {path}: {exc.strerror}") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
            label = record.pop("label")
            level = label["level"]
        except json.JSONDecodeError as exc:
            raise EscalationDataError(f"{where}: not valid JSON ({exc.msg})") from None
        except (KeyError, TypeError, AttributeError):
            raise EscalationDataError(f"{where}: label.level is missing") from None
        if level not in ESCALATION_LEVELS:
            raise EscalationDataError(f"{where}: label.level {level!r} is not one of {list(ESCALATION_LEVELS)}")
        route = label.get("route_to")
        if route is not None and not isinstance(route, str):
            raise EscalationDataError(f"{where}: label.route_to must be a route name, not {route!r}")
        transcript = parse_transcript(record, where)
        conversation_id = transcript.conversation_id or f"line-{number}"
        rows.append(
            LabelledConversation(
                transcript,
                level,
                bool(label.get("recommended", level in RECOMMENDED_LEVELS)),
                is_heldout(conversation_id),
                route,
                conversation_id,
            )
        )
    return rows


def parse_transcript(record: dict, where: str) -> Transcript:
    """One conversation record as a transcript; EscalationDataError names `where` and the field."""
    try:
        return Transcript.model_validate(record)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise EscalationDataError(f"{where}: {field}: {first['msg']}") from None


def score(truth_levels: Sequence[str], predicted_levels: Sequence[str]) -> dict:
    """Precision/recall/F1 of recommended (escalate or urgent), level accuracy, the recall of
    each level (None where no label has it; `urgent` recall is the issue's figure for
    minutes-matter cases) and the confusion matrix."""
    recommended = RECOMMENDED_LEVELS
    tp = sum(t in recommended and p in recommended for t, p in zip(truth_levels, predicted_levels))
    fp = sum(t not in recommended and p in recommended for t, p in zip(truth_levels, predicted_levels))
    fn = sum(t in recommended and p not in recommended for t, p in zip(truth_levels, predicted_levels))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    index = LEVEL_INDEX
    confusion = [[0] * len(ESCALATION_LEVELS) for _ in ESCALATION_LEVELS]
    for t, p in zip(truth_levels, predicted_levels):
        confusion[index[t]][index[p]] += 1
    n = len(truth_levels)
    return {
        "n": n,
        "recommended_precision": round(precision, 4),
        "recommended_recall": round(recall, 4),
        "recommended_f1": round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0,
        "level_accuracy": round(sum(t == p for t, p in zip(truth_levels, predicted_levels)) / n, 4) if n else 0.0,
        "level_within_one": round(
            sum(abs(index[t] - index[p]) <= 1 for t, p in zip(truth_levels, predicted_levels)) / n, 4
        )
        if n
        else 0.0,
        "level_recall": {
            level: round(row[i] / sum(row), 4) if sum(row) else None
            for i, (level, row) in enumerate(zip(ESCALATION_LEVELS, confusion))
        },
        "confusion_matrix": {"labels": list(ESCALATION_LEVELS), "rows_truth_cols_predicted": confusion},
    }


def route_score(truth_routes: Sequence[str | None], predicted_routes: Sequence[str]) -> dict:
    """Route accuracy over the conversations whose label names a route other than `none`
    (those a person should take: the route says who; a missed escalation counts as a wrong
    route), and how often each route is labelled and predicted. `accuracy` is None where no
    label names a route."""
    pairs = [(t, p) for t, p in zip(truth_routes, predicted_routes) if t is not None and t != NO_ROUTE]
    return {
        "n": len(pairs),
        "accuracy": round(sum(t == p for t, p in pairs) / len(pairs), 4) if pairs else None,
        "labelled": dict(sorted(Counter(t for t in truth_routes if t is not None).items())),
        "predicted": dict(sorted(Counter(predicted_routes).items())),
    }


def score_conversations(rows: Sequence[LabelledConversation], advice: Sequence[Escalation]) -> dict:
    """`score` of the levels with `route_score` of the routes under "routes"; `advice`
    aligns with `rows`."""
    figures = score([row.level for row in rows], [a.level for a in advice])
    figures["routes"] = route_score([row.route for row in rows], [a.route_to for a in advice])
    return figures


def in_part(row: LabelledConversation, part: str) -> bool:
    """Whether `row` belongs to `part` (one of PARTS)."""
    return part == "all" or row.heldout == (part == "heldout")


def score_parts(
    rows: Sequence[LabelledConversation], advice: Sequence[Escalation], parts: Sequence[str] = PARTS
) -> dict[str, dict]:
    """`score_conversations` on each part of the rows."""
    report = {}
    for part in parts:
        keep = [i for i, row in enumerate(rows) if in_part(row, part)]
        report[part] = score_conversations([rows[i] for i in keep], [advice[i] for i in keep])
    return report


def rule_counts(rows: Sequence[LabelledConversation], advice: Sequence[Escalation], rules: Sequence[Rule]) -> list:
    """Per policy rule, in policy order: on how many conversations it fired, and on how
    many of those the label is at the rule's level (`agrees`), above it or below it."""
    counts = []
    for rule in rules:
        fired = [row for row, a in zip(rows, advice) if any(reason.rule == rule.name for reason in a.reasons)]
        offsets = [LEVEL_INDEX[row.level] - LEVEL_INDEX[rule.level] for row in fired]
        counts.append(
            {
                "rule": rule.name,
                "level": rule.level,
                "fired": len(fired),
                "agrees": sum(o == 0 for o in offsets),
                "label_higher": sum(o > 0 for o in offsets),
                "label_lower": sum(o < 0 for o in offsets),
            }
        )
    return counts


def evaluate_escalation(analyzer: Analyzer, rows: Sequence[LabelledConversation]) -> dict:
    """Scores on all rows, the tuning part and the held-out part, plus every miss."""
    results = analyzer.analyze_batch([row.transcript for row in rows])
    advice = [r.conversation.escalation for r in results]
    predicted = [a.level for a in advice]
    report: dict = score_parts(rows, advice)
    report["mistakes"] = [
        {
            "conversation_id": row.transcript.conversation_id,
            "truth": row.level,
            "predicted": level,
            "heldout": row.heldout,
            "rules": [reason.rule for reason in result.conversation.escalation.reasons],
        }
        for row, result, level in zip(rows, results, predicted)
        if level != row.level
    ]
    return report


def render_markdown(report: dict, source: str) -> str:
    """The report as a short Markdown page: one row per part, then the held-out confusion matrix."""
    lines = [
        "# Escalation advice: evaluation",
        "",
        f"Data: `{source}`. The held-out part (sha256 rule in the guideline) was never used to tune the policy.",
        "",
        "| part | conversations | recommended precision | recommended recall | recommended F1 | urgent recall"
        " | level accuracy | level within one | route accuracy |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for part in PARTS:
        m = report[part]
        lines.append(
            f"| {part} | {m['n']} | {m['recommended_precision']:.3f} | {m['recommended_recall']:.3f} | "
            f"{m['recommended_f1']:.3f} | {format_level_recall(m, 'urgent')} | {m['level_accuracy']:.3f} | "
            f"{m['level_within_one']:.3f} | {format_route_accuracy(m['routes'])} |"
        )
    confusion = report["heldout"]["confusion_matrix"]
    labels = confusion["labels"]
    lines += [
        "",
        "Held-out confusion (rows: label, columns: predicted):",
        "",
        "| label \\ predicted | " + " | ".join(labels) + " |",
        "|---" * (len(labels) + 1) + "|",
    ]
    for label, row in zip(labels, confusion["rows_truth_cols_predicted"]):
        lines.append(f"| {label} | " + " | ".join(str(v) for v in row) + " |")
    lines += [
        "",
        f"{len(report['mistakes'])} conversation(s) got another level than the label; "
        "`escalation_metrics.json` lists each with the rules that fired. Route accuracy counts the "
        "conversations whose label names a route other than `none`.",
        "",
    ]
    return "\n".join(lines)


def format_level_recall(figures: dict, level: str) -> str:
    """A level's recall with the labels it counts, `0.867 (13/15)`, or `n/a` where no label has it."""
    recall = figures["level_recall"][level]
    if recall is None:
        return "n/a"
    index = LEVEL_INDEX[level]
    row = figures["confusion_matrix"]["rows_truth_cols_predicted"][index]
    return f"{recall:.3f} ({row[index]}/{sum(row)})"


def format_route_accuracy(routes: dict) -> str:
    """Route accuracy with its count, `0.812 (n=48)`, or `n/a` where no label names a route."""
    return "n/a" if routes["accuracy"] is None else f"{routes['accuracy']:.3f} (n={routes['n']})"
