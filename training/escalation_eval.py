"""Evaluate escalation advice against the team's labelled conversations
(`data/escalation/conversations.jsonl`, guideline beside it).

Reports, for all conversations, the part the policy may be tuned on, and the held-out
part it must not be tuned on: precision / recall / F1 of `recommended`, accuracy of
`level`, and the level confusion matrix."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from nlp.analyzer import Analyzer
from nlp.paths import source_root
from nlp.schemas import Transcript
from nlp.vocabulary import ESCALATION_LEVELS, RECOMMENDED_LEVELS

# In the source checkout; installed (data/ is not), relative to the working directory as the CLI's default is.
DEFAULT_DATA = (source_root() or Path()) / "data" / "escalation" / "conversations.jsonl"
HELDOUT_PERCENT = 30


def is_heldout(conversation_id: str) -> bool:
    """The guideline's rule: the first 8 hex digits of sha256(id), mod 100, below 30."""
    return int(hashlib.sha256(conversation_id.encode("utf-8")).hexdigest()[:8], 16) % 100 < HELDOUT_PERCENT


@dataclass
class LabelledConversation:
    transcript: Transcript
    level: str
    recommended: bool
    heldout: bool


class EscalationDataError(ValueError):
    """A labelled conversation that cannot be read; the message names file, line and field."""


def read_labelled(path: Path = DEFAULT_DATA) -> list[LabelledConversation]:
    """Labelled conversations from a JSONL file (one transcript plus `label` per line)."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
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
        try:
            transcript = Transcript.model_validate(record)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"])
            raise EscalationDataError(f"{where}: {field}: {first['msg']}") from None
        conversation_id = transcript.conversation_id or f"line-{number}"
        rows.append(
            LabelledConversation(
                transcript,
                level,
                bool(label.get("recommended", level in RECOMMENDED_LEVELS)),
                is_heldout(conversation_id),
            )
        )
    return rows


def score(truth_levels: Sequence[str], predicted_levels: Sequence[str]) -> dict:
    """Precision/recall/F1 of recommended (escalate or urgent), level accuracy, confusion."""
    recommended = RECOMMENDED_LEVELS
    tp = sum(t in recommended and p in recommended for t, p in zip(truth_levels, predicted_levels))
    fp = sum(t not in recommended and p in recommended for t, p in zip(truth_levels, predicted_levels))
    fn = sum(t in recommended and p not in recommended for t, p in zip(truth_levels, predicted_levels))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    index = {level: i for i, level in enumerate(ESCALATION_LEVELS)}
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
        "confusion_matrix": {"labels": list(ESCALATION_LEVELS), "rows_truth_cols_predicted": confusion},
    }


def evaluate_escalation(analyzer: Analyzer, rows: Sequence[LabelledConversation]) -> dict:
    """Scores on all rows, the tuning part and the held-out part, plus every miss."""
    results = analyzer.analyze_batch([row.transcript for row in rows])
    predicted = [r.conversation.escalation.level for r in results]
    parts = {"all": [True] * len(rows), "tuning": [not r.heldout for r in rows], "heldout": [r.heldout for r in rows]}
    report = {
        name: score([r.level for r, keep in zip(rows, mask) if keep], [p for p, keep in zip(predicted, mask) if keep])
        for name, mask in parts.items()
    }
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
        "| part | conversations | recommended precision | recommended recall | recommended F1 | level accuracy"
        " | level within one |",
        "|---|---|---|---|---|---|---|",
    ]
    for part in ("all", "tuning", "heldout"):
        m = report[part]
        lines.append(
            f"| {part} | {m['n']} | {m['recommended_precision']:.3f} | {m['recommended_recall']:.3f} | "
            f"{m['recommended_f1']:.3f} | {m['level_accuracy']:.3f} | {m['level_within_one']:.3f} |"
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
        "`escalation_metrics.json` lists each with the rules that fired.",
        "",
    ]
    return "\n".join(lines)
