"""Risk cues measured per family on labelled messages: the patterns alone, the bundle's cue
head alone, and both together as the service reports them (head ∪ patterns, the head
deferring where the patterns ruled a family out).

    convintel evaluate-cues [--split heldout] [--output var/evaluation]

The held-out quarter of the double-labelled messages (training.cue_data) is never tuned
on: the head's thresholds come from a dev slice of the training part."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from nlp.analyzer import Analyzer
from nlp.schemas import Message, Role
from nlp.vocabulary import CUE_FAMILIES
from training.datasets import Interaction

SOURCES = ("patterns", "head", "both")


def family_matrix(families: Sequence[Iterable[str]]) -> np.ndarray:
    """(n, families) True where row i's families include the column's."""
    found = np.zeros((len(families), len(CUE_FAMILIES)), dtype=bool)
    for row, names in enumerate(families):
        for family in names:
            found[row, CUE_FAMILIES.index(family)] = True
    return found


def pattern_cues(analyzer: Analyzer, texts: Sequence[str]) -> np.ndarray:
    """(n, families) the cue patterns' findings, each text read as a customer message."""
    if analyzer.inspector is None or analyzer.inspector.cues is None:
        raise ValueError("cue detection is off in this configuration (CONVINTEL_DETECT_CUES)")
    inspections = analyzer.inspector.inspect(list(texts), [Role.customer] * len(texts), redact=False)
    return family_matrix([[cue.family for cue in inspection.cues] for inspection in inspections])


def head_cues(analyzer: Analyzer, texts: Sequence[str]) -> np.ndarray:
    """(n, families) the cue head's decisions at its tuned thresholds."""
    head = analyzer.bundle.heads.get("cues")
    if head is None:
        raise ValueError(f"bundle {analyzer.bundle.name} {analyzer.bundle.version} has no cue head")
    probabilities = head.predict_proba(analyzer.encode(list(texts)).features)
    thresholds = np.asarray(head.spec.thresholds or [0.5] * len(CUE_FAMILIES))
    return probabilities >= thresholds


def reported_cues(analyzer: Analyzer, texts: Sequence[str]) -> np.ndarray:
    """(n, families) the cues the service reports for each text as a customer message:
    patterns and head together, the head deferring where the patterns ruled a family out."""
    messages = [Message(role=Role.customer, text=text) for text in texts]
    analyses = analyzer.analyze_messages(messages, [f"m{i}" for i in range(len(texts))])
    return family_matrix([[cue.family for cue in analysis.cues] for analysis in analyses])


def family_figures(truth: np.ndarray, predicted: np.ndarray) -> dict[str, dict[str, float | int]]:
    """Precision, recall, F1 and support per family, and their macro means."""
    figures: dict[str, dict[str, float | int]] = {}
    for k, family in enumerate(CUE_FAMILIES):
        tp = int((truth[:, k] & predicted[:, k]).sum())
        fp = int((~truth[:, k] & predicted[:, k]).sum())
        fn = int((truth[:, k] & ~predicted[:, k]).sum())
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        figures[family] = {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn, "predicted": tp + fp}
    figures["macro"] = {
        name: float(np.mean([figures[f][name] for f in CUE_FAMILIES])) for name in ("precision", "recall", "f1")
    }
    return figures


def evaluate_cues(analyzer: Analyzer, rows: Sequence[Interaction]) -> dict:
    """Per-family figures of the patterns, the head and both, on `rows` (with `cues` labels)."""
    texts = [row.text for row in rows]
    truth = family_matrix([row.multilabels["cues"] for row in rows])
    patterns, head = pattern_cues(analyzer, texts), head_cues(analyzer, texts)
    predicted = {"patterns": patterns, "head": head, "both": reported_cues(analyzer, texts)}
    return {
        "model": f"{analyzer.bundle.name} {analyzer.bundle.version}",
        "n": len(rows),
        "messages_with_cues": int(truth.any(axis=1).sum()),
        "sources": {source: family_figures(truth, predicted[source]) for source in SOURCES},
    }


def render_markdown(report: dict, source: str) -> str:
    """One row per family: precision / recall of the patterns, the head and both."""
    lines = [
        "# Risk cues: evaluation",
        "",
        f"Model {report['model']}; data: {source}, {report['n']} messages ({report['messages_with_cues']} with a cue).",
        "Each cell: precision / recall (support: labelled messages with the family).",
        "",
        "| family | support | patterns | head | both |",
        "|---|---:|---|---|---|",
    ]
    sources = report["sources"]
    for family in [*CUE_FAMILIES, "macro"]:
        cells = [f"{sources[s][family]['precision']:.2f} / {sources[s][family]['recall']:.2f}" for s in SOURCES]
        support = sources["both"][family].get("support", "")
        lines.append(f"| {family} | {support} | " + " | ".join(cells) + " |")
    macro_f1 = ", ".join(f"{s} {sources[s]['macro']['f1']:.3f}" for s in SOURCES)
    return "\n".join([*lines, "", f"Macro-F1: {macro_f1}.", ""])
