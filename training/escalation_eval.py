"""Evaluate escalation advice against the team's labelled conversations
(`data/escalation/conversations.jsonl`, guideline beside it).

Reports, for all conversations, the part the policy may be tuned on, and the held-out
part it must not be tuned on: precision / recall / F1 of `recommended`, accuracy of
`level`, and the level confusion matrix."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from nlp.analyzer import Analyzer
from nlp.escalation import ESCALATION_LEVELS
from nlp.schemas import Transcript

DEFAULT_DATA = Path(__file__).resolve().parents[1] / "data" / "escalation" / "conversations.jsonl"
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


def read_labelled(path: Path = DEFAULT_DATA) -> list[LabelledConversation]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        label = record.pop("label")
        transcript = Transcript.model_validate(record)
        rows.append(LabelledConversation(transcript, label["level"], bool(label["recommended"]),
                                         is_heldout(record["conversation_id"])))
    return rows


def score(truth_levels: Sequence[str], predicted_levels: Sequence[str]) -> dict:
    """Precision/recall/F1 of recommended (escalate or urgent), level accuracy, confusion."""
    recommended = {"escalate", "urgent"}
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
        "level_within_one": round(sum(abs(index[t] - index[p]) <= 1 for t, p in zip(truth_levels, predicted_levels)) / n, 4)
        if n else 0.0,
        "confusion_matrix": {"labels": list(ESCALATION_LEVELS), "rows_truth_cols_predicted": confusion},
    }


def evaluate_escalation(analyzer: Analyzer, rows: Sequence[LabelledConversation]) -> dict:
    """Scores on all rows, the tuning part and the held-out part, plus every miss."""
    results = analyzer.analyze_batch([row.transcript for row in rows])
    predicted = [r.conversation.escalation.level for r in results]
    parts = {"all": [True] * len(rows), "tuning": [not r.heldout for r in rows], "heldout": [r.heldout for r in rows]}
    report = {name: score([r.level for r, keep in zip(rows, mask) if keep], [p for p, keep in zip(predicted, mask) if keep])
              for name, mask in parts.items()}
    report["mistakes"] = [
        {"conversation_id": row.transcript.conversation_id, "truth": row.level, "predicted": level,
         "heldout": row.heldout, "rules": [reason.rule for reason in result.conversation.escalation.reasons]}
        for row, result, level in zip(rows, results, predicted) if level != row.level
    ]
    return report
