"""The bundle's model card (`README.md`): Hugging Face metadata front matter (licence,
datasets, metrics), then intended use, data, figures and known limits, so the bundle could
be published as it is."""

from __future__ import annotations

from collections.abc import Sequence

import yaml

from nlp.encoder import ENCODER_NAME
from nlp.heads import TaskHead

# Hub dataset ids of the public sets a report or training set name starts with.
DATASET_IDS = {
    "goemotions": "google-research-datasets/go_emotions",
    "tweeteval": "cardiffnlp/tweet_eval",
    "meld": "declare-lab/MELD",
}

LIMITS = """\
- English only. Other languages get scores, but they are unreliable (the API adds a warning
  when a transcript's `language` is not English).
- The encoder reads the first 256 word pieces of a message; longer messages are flagged
  `truncated`.
- Emotions come from a head trained on Reddit comments (GoEmotions) and mapped to a
  customer-service set; sentiment from Reddit, TV dialogue (MELD) and the project's own
  support messages. Support-specific phrasing (billing, outages) is covered mainly by the
  project's own labelled set, which is small.
- Urgency is learned from a few hundred messages written and labelled by the project team
  (see `data/urgency/GUIDELINE.md`); treat its figures as indicative, not as a benchmark.
- Scores inform a human decision (routing, prioritising); they are not a basis for
  automated action against a customer."""

COMPLAINT_LIMITS = """\
- Complaints are learned from X-CI: tweets to and about brands and their support handles.
  Its published test quarter is withheld, so the held-out figures are on a quarter of the
  published file, split off by id hash and never tuned on. Chat, email and call
  transcripts read differently from tweets; check the head on your own labelled messages
  (`convintel evaluate`, a `complaint` column of yes/no)."""


def render_model_card(
    name: str,
    version: str,
    description: str,
    heads: dict[str, TaskHead],
    task_data: dict[str, dict[str, list[str]]],
    metrics: dict[str, dict[str, dict]],
    training: dict,
    kept_results: Sequence[dict] = (),
) -> str:
    """Markdown model card from what training produced, with its metadata front matter.

    A head without an entry in `metrics` was kept from a base bundle (heads refit on a
    bundle, training.refit): its card section quotes the figures its manifest records, and
    `kept_results` are the base card's hub results for it."""
    signals = ["sentiment", "emotions", "urgency"] + (["complaints"] if "complaint" in heads else [])
    lines = [
        front_matter(name, heads, task_data, metrics, kept_results),
        f"# {name} {version}",
        "",
        description,
        "",
        "## Intended use",
        "",
        "Triage of customer-service conversations (chat, email, call transcripts, social, SMS): "
        f"per-message {', '.join(signals[:-1])} and {signals[-1]}, aggregated per conversation to drive "
        "escalation advice in the convintel service.",
        "",
        "## Tasks and data",
        "",
    ]
    base = training.get("base")
    for task, head in heads.items():
        lines += [
            f"### {task} ({head.spec.kind}, {len(head.spec.labels)} labels)",
            "",
            f"Labels: {', '.join(head.spec.labels)}",
            "",
            *(
                [
                    "Reads the pooled features and, through a label-wise attention of width "
                    f"{head.spec.attention_dim}, the message's token vectors (one query per label).",
                    "",
                ]
                if head.spec.attention_dim
                else []
            ),
            "Trained on: " + "; ".join(task_data[task]["train"]),
            "",
            "Early stopping, calibration"
            + (" and thresholds" if head.spec.kind == "multilabel" else "")
            + f" on: {task_data[task]['dev'][0]}",
            "",
        ]
        if task not in metrics:
            origin = f"{base['name']} {base['version']}" if base else "the base bundle"
            lines += [f"Kept unchanged from {origin}; the figures its manifest records:", ""]
            lines += ["| figure | value |", "|---|---|"]
            lines += [f"| {key} | {value:.3f} |" for key, value in head.spec.metrics.items()]
            lines.append("")
            continue
        lines += ["| report set | n | macro-F1 | macro-recall | ECE |", "|---|---|---|---|---|"]
        for report, figures in metrics[task].items():
            recall = figures.get("macro_recall")
            ece = figures.get("ece")
            lines.append(
                f"| {report} | {figures['n']} | {figures['macro_f1']:.3f} | "
                f"{'' if recall is None else f'{recall:.3f}'} | {'' if ece is None else f'{ece:.3f}'} |"
            )
        lines.append("")
        if task == "complaint":
            lines += complaint_table(metrics[task])
    lines += ["## Training", "", training_line(training), ""]
    if base:
        kept = [task for task in heads if task not in metrics]
        listed = " and ".join([", ".join(kept[:-1]), kept[-1]] if len(kept) > 1 else kept) or "no other"
        base_line = training_line(training.get("base_training", {}))
        lines += [
            f"The encoder (its adapter copied unchanged) and the {listed} heads come from "
            f"{base['name']} {base['version']}, whose training record the manifest keeps under "
            f"`training.base_training`: {base_line[0].lower()}{base_line[1:]}",
            "",
        ]
    lines += [
        "## Limits",
        "",
        LIMITS,
        *([COMPLAINT_LIMITS] if "complaint" in heads else []),
        "",
    ]
    return "\n".join(lines)


def training_line(training: dict) -> str:
    """One sentence on how a bundle (or its base) was trained, from its training record."""
    if "recipe" not in training or "mode" not in training:
        return "no training record."
    timing = f"{training['seconds']} s on {training['machine']}" if "seconds" in training else "time not recorded"
    if "encode_seconds" in training:
        timing += f" (encoding {training['encode_seconds']} s, cached across runs)"
    if "steps" in training:
        timing += (
            f"; {training['steps']} of {training['planned_steps']} planned steps, best dev at step "
            f"{training['best_step']}{', stopped early' if training['stopped_early'] else ''}"
        )
    line = f"Recipe `{training['recipe']}`, mode {training['mode']}, {timing}."
    base = training.get("continued_from")
    if base:
        before = training_line(base.get("encoder_training", {}))
        line += (
            f" Fine-tuning continued from {base['name']} {base['version']} ({base['created']}), whose encoder "
            f"the manifest describes under `training.continued_from`: {before[0].lower()}{before[1:]}"
        )
    return line


def card_results(card: str, tasks: Sequence[str]) -> list[dict]:
    """The hub results (`model-index`) of a model card's front matter that belong to
    `tasks`; none when the card has no readable front matter."""
    if not card.startswith("---\n"):
        return []
    try:
        document = yaml.safe_load(card[4:].split("\n---\n", 1)[0])
        results = document["model-index"][0]["results"]
    except (yaml.YAMLError, KeyError, IndexError, TypeError):
        return []
    return [
        result
        for result in results
        if isinstance(result, dict) and str(result.get("task", {}).get("name", "")).split(" (")[0] in tasks
    ]


def _figure(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def complaint_table(reports: dict[str, dict]) -> list[str]:
    """The complaint head's usual figures: F1, precision and recall of "yes" (a complaint
    is P(yes) >= 0.5), and Spearman's rank correlation of P(yes) with X-CI's severity."""
    lines = [
        'Complaint ("yes") figures; Spearman of P(complaint) against X-CI severity (0-4) over '
        "every row, and over the complaints alone (severity 1-4):",
        "",
        "| report set | F1 | precision | recall | Spearman, all | Spearman, complaints |",
        "|---|---|---|---|---|---|",
    ]
    for report, figures in reports.items():
        yes = figures["per_class"]["yes"]
        lines.append(
            f"| {report} | {yes['f1']:.3f} | {yes['precision']:.3f} | {yes['recall']:.3f} | "
            f"{_figure(figures.get('severity_spearman'))} | {_figure(figures.get('severity_spearman_complaints'))} |"
        )
    return lines + [""]


def front_matter(
    name: str,
    heads: dict[str, TaskHead],
    task_data: dict[str, dict[str, list[str]]],
    metrics: dict[str, dict[str, dict]],
    kept_results: Sequence[dict] = (),
) -> str:
    """The YAML block the Hugging Face Hub reads from a model card: licence, base model,
    datasets and the reported figures (`model-index`; `kept_results` first: those of heads
    kept from a base bundle)."""
    names = [entry for task in task_data.values() for part in task.values() for entry in part]
    datasets = sorted({hub for prefix, hub in DATASET_IDS.items() for entry in names if entry.startswith(prefix)})
    results = list(kept_results)
    for task, reports in metrics.items():
        kind = "multi_label_classification" if heads[task].spec.kind == "multilabel" else "text-classification"
        for report, figures in reports.items():
            values = [{"type": "f1", "name": "macro-F1", "value": round(figures["macro_f1"], 4)}]
            if "macro_recall" in figures:
                values.append({"type": "recall", "name": "macro-recall", "value": round(figures["macro_recall"], 4)})
            if figures.get("ece") is not None:
                values.append({"type": "ece", "name": "expected calibration error", "value": round(figures["ece"], 4)})
            if task == "complaint":
                yes = figures["per_class"]["yes"]
                values += [
                    {"type": kind, "name": f"{kind} (complaint)", "value": round(yes[kind], 4)}
                    for kind in ("f1", "precision", "recall")
                ]
                if figures.get("severity_spearman") is not None:
                    values.append(
                        {
                            "type": "spearmanr",
                            "name": "Spearman, P(complaint) vs severity",
                            "value": round(figures["severity_spearman"], 4),
                        }
                    )
            results.append(
                {
                    "task": {"type": "text-classification", "name": f"{task} ({kind})"},
                    "dataset": {"name": report, "type": report.split(":")[0]},
                    "metrics": values,
                }
            )
    document = {
        "license": "apache-2.0",
        "language": ["en"],
        "library_name": "convintel",
        "base_model": ENCODER_NAME,
        "pipeline_tag": "text-classification",
        "tags": ["customer-service", "sentiment", "emotion", "urgency"]
        + (["complaint"] if "complaint" in heads else [])
        + ["safetensors"],
        "datasets": datasets,
        "metrics": ["f1", "recall"] + (["precision", "spearmanr"] if "complaint" in heads else []),
        "model-index": [{"name": name, "results": results}],
    }
    return "---\n" + yaml.safe_dump(document, sort_keys=False, allow_unicode=True) + "---\n"
