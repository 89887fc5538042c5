"""How far the analyzer's signals can carry escalation level accuracy: learned level models
over the signals, cross-validated on the tuning part of data/escalation, beside the
shipped rule policy on the same part.

Every labelled conversation of the whole set (`read_whole_escalation_set`: the written
conversations and the STC-3 dialogues) is analysed once with the configured bundle and
policy, built as `convintel evaluate-escalation` builds it (settings from `CONVINTEL_*`
and `.env`). Each analysis becomes one feature vector (signals only, no text features):

| feature                        | what it holds                                                        |
|--------------------------------|----------------------------------------------------------------------|
| `rule:<name>`                  | 1 when that policy rule fired (`escalation.reasons[*].rule`), else 0  |
| `urgency_max:<level>`          | max over customer messages of P(urgency = level), level low..critical |
| `urgency_max:at_least_high`    | max over customer messages of P(urgency >= high)                     |
| `sentiment_overall`            | the customer's overall sentiment score (P(pos) - P(neg)); 0 if none  |
| `sentiment_last`               | the last customer message's sentiment score; 0 if none               |
| `sentiment_min`                | the lowest customer message's sentiment score; 0 if none             |
| `complaint_max`                | max P(complaint) over customer messages (0 without a complaint head) |
| `emotion_max:<emotion>`        | max score of each negative support emotion over customer messages    |
|                                | (0 where the emotion is never present)                               |
| `cue:<family>`                 | 1 when the conversation has a risk cue of that family, else 0        |
| `customer_turns`               | number of customer messages                                          |
| `longest_wait_minutes`         | the longest customer wait for an agent reply (0 without timestamps)  |
| `experience_score`             | the predicted satisfaction, 0..100                                   |
| `policy_level`                 | the shipped policy's level as an ordinal, none 0 .. urgent 3         |

On the tuning part only (`row.heldout` False), stratified k-fold repeated over several
shuffles fits (a) multinomial logistic regression on standardised features and (b) a
histogram gradient-boosted tree ensemble, both with settings fixed in advance below (nothing
is chosen on the folds). Reported per model: level accuracy mean and std over all folds,
and, from each shuffle's out-of-fold predictions, `urgent` recall and `recommended`
(escalate or urgent) precision / recall (mean and std over shuffles). The shipped policy
is scored on the tuning part as it is (no fitting, so no folds), and per source within
each part: the first written batch (esc-0001..esc-0168, conversations.jsonl), the second
(esc-0169..esc-0248, written_2.jsonl) and STC-3 (`stc3:` ids). Nothing is fitted or chosen
on the held-out part; the policy's held-out figures are for reference only.

    .venv/bin/python bench/escalation_ceiling.py [--folds 5] [--shuffles 3] [--model BUNDLE]
        [--data-root ../shared/data] [--output out.json]

Prints one JSON object; `--output` writes it there too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import typer  # noqa: E402
from sklearn.base import ClassifierMixin  # noqa: E402
from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from nlp.analyzer import Analyzer  # noqa: E402
from nlp.schemas import MessageAnalysis, Role, TranscriptAnalysis  # noqa: E402
from nlp.signals import urgency_at_least  # noqa: E402
from nlp.vocabulary import CUE_FAMILIES, ESCALATION_LEVELS, NEGATIVE_SUPPORT_EMOTIONS, URGENCY_LABELS  # noqa: E402
from service.cli.escalation_set import read_whole_escalation_set  # noqa: E402
from service.cli.main import load_settings  # noqa: E402
from service.runtime import load_analyzer  # noqa: E402
from training.escalation_eval import LEVEL_INDEX, LabelledConversation, score  # noqa: E402

DEFAULT_DATA_ROOT = ROOT.parent / "shared" / "data"
"""The public data sets beside the checkout, as this project's machines have them (STC-3 texts)."""

TARGET_ACCURACY = 0.80
"""The level accuracy the question is about; reported beside the figures, never used to fit."""

LOGISTIC_C = 1.0
"""Inverse L2 strength of the logistic regression, fixed in advance (sklearn's default) so
that no setting is chosen on the folds that report it."""
LOGISTIC_MAX_ITER = 5000
"""Enough lbfgs iterations to converge on a few hundred standardised rows (not a tuning knob)."""
BOOSTING_SETTINGS: dict[str, float | int] = {"max_depth": 3, "learning_rate": 0.05, "max_iter": 200}
"""Modest, fixed boosting settings: shallow trees and a slow rate suit ~300 training rows."""

FIT_THREADS = 1
"""OpenMP / BLAS threads while fitting. On a few hundred rows the boosting's OpenMP threads
only spin against each other (and anything else on a busy 2-core machine): one thread fits
in a fraction of a second where two took a minute."""

URGENCY_HIGH = "high"
"""The level whose P(urgency >= level) the policy's escalate rules read (`urgency_at_least: high`)."""
NEGATIVE_EMOTIONS = tuple(sorted(NEGATIVE_SUPPORT_EMOTIONS))
"""The negative support emotions in a fixed column order (the vocabulary holds a set)."""
SECONDS_PER_MINUTE = 60
NEUTRAL_EXPERIENCE = 50.0
"""The experience score's midpoint, standing in where an analysis has no insights."""

WRITTEN_1_LAST = 168
"""The highest id number of the first written batch (conversations.jsonl: esc-0001..esc-0168);
esc-0169 on is the second batch (written_2.jsonl)."""
WRITTEN_PREFIX = "esc-"
STC3_PREFIX = "stc3:"
SOURCES = ("written_1", "written_2", "stc3")
PARTS = ("tuning", "heldout")


def build_analyzer(model: Path | None) -> Analyzer:
    """The analyzer `convintel evaluate-escalation` uses (settings, bundle and policy from the
    environment), with the bundle replaced by `model` where given."""
    settings = load_settings()
    if model is not None:
        settings = settings.model_copy(update={"model": str(model)})
    return load_analyzer(settings)


def load_rows(data_root: Path) -> list[LabelledConversation]:
    """The whole labelled set. Its notes on skipped conversations go to stderr, so that
    stdout holds only the JSON result."""
    with contextlib.redirect_stdout(sys.stderr):
        rows, _ = read_whole_escalation_set(None, data_root)
    return rows


def source_of(conversation_id: str) -> str:
    """Which part of the set a conversation comes from, read from its id."""
    if conversation_id.startswith(STC3_PREFIX):
        return "stc3"
    if conversation_id.startswith(WRITTEN_PREFIX) and conversation_id[len(WRITTEN_PREFIX) :].isdigit():
        return "written_1" if int(conversation_id[len(WRITTEN_PREFIX) :]) <= WRITTEN_1_LAST else "written_2"
    return "other"


def feature_names(rule_names: Sequence[str]) -> list[str]:
    """The feature columns, in the order `features` fills them."""
    return [
        *(f"rule:{name}" for name in rule_names),
        *(f"urgency_max:{level}" for level in URGENCY_LABELS),
        f"urgency_max:at_least_{URGENCY_HIGH}",
        "sentiment_overall",
        "sentiment_last",
        "sentiment_min",
        "complaint_max",
        *(f"emotion_max:{emotion}" for emotion in NEGATIVE_EMOTIONS),
        *(f"cue:{family}" for family in CUE_FAMILIES),
        "customer_turns",
        "longest_wait_minutes",
        "experience_score",
        "policy_level",
    ]


def features(result: TranscriptAnalysis, rule_names: Sequence[str]) -> list[float]:
    """One conversation's feature vector (columns as `feature_names`), from its analysis alone."""
    conversation = result.conversation
    escalation = conversation.escalation
    customer = [m for m in result.messages if m.role == Role.customer]
    fired = {reason.rule for reason in escalation.reasons}
    sentiments = [m.sentiment.score for m in customer]
    urgencies = [m.urgency for m in customer if m.urgency is not None]
    complaints = [m.complaint.score for m in customer if m.complaint is not None]
    cue_families = {cue.family for cue in conversation.risk_cues}
    wait = conversation.timing.longest_wait_seconds
    insights = conversation.insights
    # Maxima default to 0: a signal that never shows reads as absent, as the policy reads it.
    return [
        *(float(name in fired) for name in rule_names),
        *(max((u.probabilities.get(level, 0.0) for u in urgencies), default=0.0) for level in URGENCY_LABELS),
        max((urgency_at_least(m, URGENCY_HIGH) for m in customer), default=0.0),
        conversation.sentiment.score if conversation.sentiment is not None else 0.0,
        sentiments[-1] if sentiments else 0.0,
        min(sentiments, default=0.0),
        max(complaints, default=0.0),
        *(max_emotion(customer, emotion) for emotion in NEGATIVE_EMOTIONS),
        *(float(family in cue_families) for family in CUE_FAMILIES),
        float(conversation.customer_messages),
        wait / SECONDS_PER_MINUTE if wait is not None else 0.0,
        float(insights.experience_score) if insights is not None else NEUTRAL_EXPERIENCE,
        float(LEVEL_INDEX[escalation.level]),
    ]


def max_emotion(messages: Sequence[MessageAnalysis], emotion: str) -> float:
    """The highest score of `emotion` over `messages` (0 where it is never present: a
    message lists only the emotions over their thresholds)."""
    return max((e.score for m in messages for e in m.emotions if e.label == emotion), default=0.0)


def level_models(seed: int) -> dict[str, ClassifierMixin]:
    """The two learned level models, fresh, with their fixed settings."""
    return {
        "logistic_regression": make_pipeline(
            StandardScaler(), LogisticRegression(C=LOGISTIC_C, max_iter=LOGISTIC_MAX_ITER)
        ),
        "gradient_boosting": HistGradientBoostingClassifier(**BOOSTING_SETTINGS, random_state=seed),
    }


def mean_std(values: Sequence[float]) -> dict[str, float]:
    """Mean and (sample) standard deviation, rounded; std 0 for a single value."""
    return {
        "mean": round(statistics.fmean(values), 4),
        "std": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
    }


def cross_validate(x: np.ndarray, y: np.ndarray, folds: int, shuffles: int) -> dict[str, dict]:
    """Each model's figures over `shuffles` repetitions of stratified `folds`-fold CV on (x, y):
    fold accuracies, and per shuffle the out-of-fold predictions scored as the policy is."""
    levels = np.array(ESCALATION_LEVELS)
    names = list(level_models(0))
    fold_accuracy: dict[str, list[float]] = {name: [] for name in names}
    pooled: dict[str, list[dict]] = {name: [] for name in names}
    for seed in range(shuffles):
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        predicted = {name: np.empty_like(y) for name in names}
        for train, test in splitter.split(x, y):
            for name, model in level_models(seed).items():
                model.fit(x[train], y[train])
                predicted[name][test] = model.predict(x[test])
                fold_accuracy[name].append(float(np.mean(predicted[name][test] == y[test])))
        for name in names:
            pooled[name].append(score(list(levels[y]), list(levels[predicted[name]])))
    report = {}
    for name in names:
        shuffled = pooled[name]
        report[name] = {
            "level_accuracy": mean_std(fold_accuracy[name]),
            "urgent_recall": mean_std([s["level_recall"]["urgent"] or 0.0 for s in shuffled]),
            "recommended_precision": mean_std([s["recommended_precision"] for s in shuffled]),
            "recommended_recall": mean_std([s["recommended_recall"] for s in shuffled]),
            "out_of_fold_level_accuracy_per_shuffle": [s["level_accuracy"] for s in shuffled],
            "out_of_fold_confusion_first_shuffle": shuffled[0]["confusion_matrix"],
        }
    return report


def policy_figures(truth: Sequence[str], predicted: Sequence[str]) -> dict:
    """The shipped policy's figures in the models' terms."""
    figures = score(truth, predicted)
    return {
        "n": figures["n"],
        "level_accuracy": figures["level_accuracy"],
        "urgent_recall": figures["level_recall"]["urgent"],
        "recommended_precision": figures["recommended_precision"],
        "recommended_recall": figures["recommended_recall"],
        "confusion": figures["confusion_matrix"],
    }


def per_source(rows: Sequence[LabelledConversation], predicted: Sequence[str]) -> dict[str, dict]:
    """The shipped policy's level accuracy per part and source, with counts."""
    report: dict[str, dict] = {}
    for part in PARTS:
        report[part] = {}
        for source in (*SOURCES, "other"):
            pairs = [
                (row.level, level)
                for row, level in zip(rows, predicted)
                if row.heldout == (part == "heldout") and source_of(row.conversation_id) == source
            ]
            if not pairs and source == "other":
                continue
            correct = sum(t == p for t, p in pairs)
            report[part][source] = {
                "n": len(pairs),
                "correct": correct,
                "level_accuracy": round(correct / len(pairs), 4) if pairs else None,
            }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT, help="public data sets (STC-3)")
    parser.add_argument("--model", type=Path, help="bundle directory or name (default: the configured one)")
    parser.add_argument("--folds", type=int, default=5, help="stratified folds per shuffle")
    parser.add_argument("--shuffles", type=int, default=3, help="CV repetitions, seeds 0..shuffles-1")
    parser.add_argument("--output", type=Path, help="write the JSON result here too")
    args = parser.parse_args()
    started = time.perf_counter()

    try:
        rows = load_rows(args.data_root)
        analyzer = build_analyzer(args.model)
    except typer.Exit as exc:  # the CLI helpers' `fail`: the message is on stderr already
        sys.exit(exc.exit_code)
    results = analyzer.analyze_batch([row.transcript for row in rows])
    analysed = time.perf_counter()
    rule_names = [rule.name for rule in analyzer.policy.rules]
    names = feature_names(rule_names)
    matrix = np.array([features(result, rule_names) for result in results], dtype=np.float64)
    labels = np.array([LEVEL_INDEX[row.level] for row in rows])
    policy_levels = [result.conversation.escalation.level for result in results]

    # Only the tuning part reaches the models: the held-out rows are never fitted or chosen on.
    tuning = np.array([not row.heldout for row in rows])
    heldout_truth = [row.level for row in rows if row.heldout]
    heldout_policy = [level for row, level in zip(rows, policy_levels) if row.heldout]
    tuning_truth = [row.level for row in rows if not row.heldout]
    tuning_policy = [level for row, level in zip(rows, policy_levels) if not row.heldout]
    with threadpool_limits(limits=FIT_THREADS):
        models = cross_validate(matrix[tuning], labels[tuning], args.folds, args.shuffles)

    report = {
        "settings": {
            "data_root": str(args.data_root),
            "model": str(args.model) if args.model else None,
            "bundle": f"{analyzer.model_info.name} {analyzer.model_info.version}",
            "folds": args.folds,
            "shuffles": args.shuffles,
            "logistic_regression": {"C": LOGISTIC_C, "max_iter": LOGISTIC_MAX_ITER, "standardised": True},
            "gradient_boosting": BOOSTING_SETTINGS,
            "target_level_accuracy": TARGET_ACCURACY,
            "fit_threads": FIT_THREADS,
        },
        "n": {"all": len(rows), "tuning": len(tuning_truth), "heldout": len(heldout_truth)},
        "tuning_level_counts": dict(Counter(tuning_truth).most_common()),
        "tuning_majority_accuracy": round(Counter(tuning_truth).most_common(1)[0][1] / len(tuning_truth), 4),
        "features": names,
        "policy_tuning": policy_figures(tuning_truth, tuning_policy),
        "models_tuning_cv": models,
        "policy_heldout_reference_only": policy_figures(heldout_truth, heldout_policy),
        "policy_accuracy_per_source": per_source(rows, policy_levels),
        "seconds": {
            "load_and_analyse": round(analysed - started, 1),
            "total": round(time.perf_counter() - started, 1),
        },
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.output is not None:
        args.output.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
