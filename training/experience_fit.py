"""Fit the experience score's weights to customer satisfaction on STC-3.

    python -m training.experience_fit --data-root ../shared/data [--policy nlp/default_policy.yaml] [--write]

STC-3 (`stc3/train.jsonl`, see ../shared/data/README.md) has, per customer-helpdesk
dialogue, 19 annotators' customer-satisfaction judgements `S` (-2..2). The target is
their mean. Each dialogue becomes a transcript (sender customer -> customer, helpdesk ->
agent; a turn's utterances joined with spaces; empty turns dropped), is analysed once
with the configured bundle (`service.runtime.load_analyzer`), and gives the features of
`nlp.experience` (computed with the policy's thresholds).

Dialogues are split by id with the project's held-out rule
(`training.datasets.heldout_split`, 1 in 4 held out). A ridge regression is fitted on the
training part only: features standardised on that part, a fixed penalty (`--alpha`,
default 1.0, chosen before looking at any result; the intercept is not penalised), then
mapped back to weights per raw feature unit. Nothing is tuned on the held-out part.
The report gives Spearman's rho between each score (as served: integer, 0-100) and the
target, for today's hand-set formula and the fitted one, on both parts, with a paired
bootstrap interval of the held-out difference. `--write` replaces the policy file's
`experience:` section (and its comment) with the fitted weights, leaving the rest of the
file as it was."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import yaml
from scipy.stats import spearmanr

from nlp.experience import (
    FEATURES,
    ExperienceModel,
    ExperienceScale,
    ExperienceWeights,
    experience,
    experience_features,
)
from nlp.insights import resolution
from nlp.policy import DEFAULT_POLICY_FILE, Policy, PolicyError, Thresholds, load_policy
from nlp.schemas import Message, MessageAnalysis, Resolution, Role, Transcript
from nlp.signals import ConversationSignals, Turn, compute_signals
from training.datasets import DEFAULT_DATA_ROOT, heldout_split

STC3_FILE = Path("stc3") / "train.jsonl"
DEFAULT_ALPHA = 1.0
BOOTSTRAP_ROUNDS = 1000
ROLES = {"customer": Role.customer, "helpdesk": Role.agent}
SECTION_KEY = "experience"
WEIGHT_DECIMALS = 4


class Stc3Error(ValueError):
    """A dialogue that cannot be read; the message names file, line and field."""


@dataclass
class Dialogue:
    id: str
    satisfaction: float  # mean S over the annotators, -2..2
    transcript: Transcript


@dataclass
class Analysed:
    """A dialogue's target, split and what the experience score reads."""

    id: str
    satisfaction: float
    split: str
    signals: ConversationSignals
    resolution: Resolution

    @property
    def features(self) -> dict[str, float]:
        return experience_features(self.signals, self.resolution)


class BatchAnalyzer(Protocol):
    def analyze_batch(self, transcripts: Sequence[Transcript]) -> Sequence[Any]: ...


def read_stc3(path: Path) -> list[Dialogue]:
    """STC-3 dialogues as transcripts with their mean satisfaction."""
    dialogues = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
            ident = str(record["id"])
            judgements = [float(a["quality"]["S"]) for a in record["annotations"]]
            turns = record["turns"]
        except json.JSONDecodeError as exc:
            raise Stc3Error(f"{where}: not valid JSON ({exc.msg})") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise Stc3Error(f"{where}: missing or bad field {exc}") from None
        if not judgements:
            raise Stc3Error(f"{where}: no annotations")
        messages = []
        for index, turn in enumerate(turns):
            role = ROLES.get(turn.get("sender"))
            if role is None:
                raise Stc3Error(f"{where}: turns.{index}.sender {turn.get('sender')!r} is not customer or helpdesk")
            text = " ".join(u.strip() for u in turn.get("utterances", []) if u.strip())
            if text:
                messages.append(Message(id=f"t{index}", role=role, text=text))
        if not messages:
            raise Stc3Error(f"{where}: every turn is empty")
        dialogues.append(
            Dialogue(ident, float(np.mean(judgements)), Transcript(conversation_id=None, messages=messages))
        )
    return dialogues


def conversation_signals(
    analyses: Sequence[MessageAnalysis], transcript: Transcript, thresholds: Thresholds
) -> ConversationSignals:
    turns = [
        Turn(id=a.id, role=m.role, text=m.text, timestamp=m.timestamp) for a, m in zip(analyses, transcript.messages)
    ]
    return compute_signals(analyses, turns, thresholds)


def analyse_dialogues(
    analyzer: BatchAnalyzer,
    dialogues: Sequence[Dialogue],
    thresholds: Thresholds,
    batch_size: int = 64,
    progress: Callable[[int, int], object] | None = None,
) -> list[Analysed]:
    """Each dialogue analysed once; signals computed with `thresholds`."""
    rows: list[Analysed] = []
    for start in range(0, len(dialogues), batch_size):
        chunk = dialogues[start : start + batch_size]
        results = analyzer.analyze_batch([d.transcript for d in chunk])
        for dialogue, result in zip(chunk, results):
            signals = conversation_signals(result.messages, dialogue.transcript, thresholds)
            rows.append(
                Analysed(dialogue.id, dialogue.satisfaction, heldout_split(dialogue.id), signals, resolution(signals))
            )
        if progress:
            progress(len(rows), len(dialogues))
    return rows


def feature_matrix(rows: Sequence[Analysed]) -> np.ndarray:
    return np.array([[row.features[name] for name in FEATURES] for row in rows], dtype=np.float64)


def fit_ridge(
    x: np.ndarray, y: np.ndarray, alpha: float = DEFAULT_ALPHA, names: Sequence[str] = FEATURES
) -> tuple[float, dict[str, float]]:
    """(intercept, weight per raw feature unit) of a ridge regression on standardised
    columns (intercept unpenalised). A constant column gets weight 0."""
    mean, std = x.mean(axis=0), x.std(axis=0)
    varies = std > 1e-12
    z = (x[:, varies] - mean[varies]) / std[varies]
    coef = np.linalg.solve(z.T @ z + alpha * np.eye(z.shape[1]), z.T @ (y - y.mean()))
    weights = np.zeros(x.shape[1])
    weights[varies] = coef / std[varies]
    intercept = float(y.mean() - mean @ weights)
    return intercept, {name: float(w) for name, w in zip(names, weights)}


def fit_model(
    rows: Sequence[Analysed], alpha: float = DEFAULT_ALPHA, scale: ExperienceScale | None = None
) -> ExperienceModel:
    """The fitted experience section, from the rows of the training part."""
    intercept, weights = fit_ridge(feature_matrix(rows), np.array([r.satisfaction for r in rows]), alpha)
    return ExperienceModel(
        intercept=round(intercept, WEIGHT_DECIMALS),
        weights=ExperienceWeights(**{name: round(w, WEIGHT_DECIMALS) + 0.0 for name, w in weights.items()}),
        scale=scale or ExperienceScale(),
    )


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho; 0 when either side is constant."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    rho = spearmanr(a, b).statistic
    return float(rho) if np.isfinite(rho) else 0.0


def paired_bootstrap(
    first: np.ndarray, second: np.ndarray, target: np.ndarray, rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0
) -> tuple[float, float]:
    """95% interval of spearman(second) - spearman(first) over resampled dialogues."""
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(rounds):
        pick = rng.integers(0, len(target), len(target))
        diffs.append(spearman(second[pick], target[pick]) - spearman(first[pick], target[pick]))
    low, high = np.percentile(diffs, [2.5, 97.5])
    return float(low), float(high)


def evaluate(rows: Sequence[Analysed], model: ExperienceModel) -> dict:
    """Spearman of the hand-set and fitted scores (as served) with mean S, per part."""
    handset = np.array([experience(r.signals, r.resolution, None)[0] for r in rows], dtype=np.float64)
    fitted = np.array([experience(r.signals, r.resolution, model)[0] for r in rows], dtype=np.float64)
    target = np.array([r.satisfaction for r in rows])
    report: dict[str, Any] = {}
    for part in ("train", "heldout"):
        keep = np.array([r.split == part for r in rows])
        report[part] = {
            "dialogues": int(keep.sum()),
            "spearman_handset": round(spearman(handset[keep], target[keep]), 4),
            "spearman_fitted": round(spearman(fitted[keep], target[keep]), 4),
        }
    keep = np.array([r.split == "heldout" for r in rows])
    if keep.sum() > 2:
        low, high = paired_bootstrap(handset[keep], fitted[keep], target[keep])
        report["heldout"]["difference_95ci"] = [round(low, 4), round(high, 4)]
    train = [r for r in rows if r.split == "train"]
    train_x, train_y = feature_matrix(train), np.array([r.satisfaction for r in train])
    report["features"] = {
        name: {
            "weight": getattr(model.weights, name),
            "train_mean": round(float(train_x[:, i].mean()), 4),
            "train_spearman": round(spearman(train_x[:, i], train_y), 4),
        }
        for i, name in enumerate(FEATURES)
    }
    report["target_train_mean"] = round(float(train_y.mean()), 4)
    return report


def render_table(report: dict, model: ExperienceModel) -> str:
    train, held = report["train"], report["heldout"]
    lines = [
        "Spearman's rho with mean customer satisfaction (STC-3 train.jsonl, split by training.datasets.heldout_split)",
        "",
        f"| score | train ({train['dialogues']}) | held-out ({held['dialogues']}) |",
        "|---|---|---|",
        f"| hand-set formula | {train['spearman_handset']:.3f} | {held['spearman_handset']:.3f} |",
        f"| fitted (ridge) | {train['spearman_fitted']:.3f} | {held['spearman_fitted']:.3f} |",
    ]
    if "difference_95ci" in held:
        low, high = held["difference_95ci"]
        lines += [
            "",
            f"held-out difference (fitted - hand-set), paired bootstrap 95% interval: [{low:+.3f}, {high:+.3f}]",
        ]
    points = model.scale.points
    lines += [
        "",
        f"intercept {model.intercept:+.4f} (satisfaction units; score = 100 * (s - {model.scale.low:g}) / "
        f"{model.scale.high - model.scale.low:g})",
        "",
        "| feature | weight (S units) | score points per unit | train mean | train rho alone |",
        "|---|---|---|---|---|",
    ]
    for name, row in report["features"].items():
        lines.append(
            f"| {name} | {row['weight']:+.4f} | {row['weight'] * points:+.2f} | {row['train_mean']:.3f} | "
            f"{row['train_spearman']:+.3f} |"
        )
    return "\n".join(lines)


def section_text(model: ExperienceModel, comment: Sequence[str]) -> str:
    """The policy's `experience:` section, with `comment` lines above it."""
    lines = [f"# {line}".rstrip() for line in comment]
    lines.append(f"{SECTION_KEY}:")
    lines.append(f"  intercept: {model.intercept}")
    lines.append("  weights:")
    lines += [f"    {name}: {getattr(model.weights, name)}" for name in FEATURES]
    lines.append(f"  scale: {{low: {model.scale.low}, high: {model.scale.high}}}")
    return "\n".join(lines) + "\n"


def replace_section(text: str, section: str) -> str:
    """`text` (a policy file) with its `experience:` section, and the comment lines right
    above it, replaced by `section`; appended at the end when there is none."""
    lines = text.splitlines(keepends=True)
    at = next((i for i, line in enumerate(lines) if line.startswith(f"{SECTION_KEY}:")), None)
    if at is None:
        return text.rstrip("\n") + "\n\n" + section
    start = at
    while start > 0 and lines[start - 1].startswith("#"):
        start -= 1
    end = at + 1
    while end < len(lines) and not (lines[end][:1].isalpha() or lines[end][:1] == "_"):
        end += 1
    if end < len(lines):  # comment lines above the next key belong to it
        while end > at + 1 and (lines[end - 1].startswith("#") or not lines[end - 1].strip()):
            end -= 1
    rest = "".join(lines[end:]).lstrip("\n")
    return "".join(lines[:start]) + section + ("\n" + rest if rest else "")


def write_section(path: Path, model: ExperienceModel, comment: Sequence[str]) -> None:
    """Replace the policy file's `experience:` section; the result must validate, and
    everything else must read as before."""
    before = path.read_text(encoding="utf-8")
    after = replace_section(before, section_text(model, comment))
    old, new = yaml.safe_load(before), yaml.safe_load(after)
    old.pop(SECTION_KEY, None)
    written = Policy.model_validate(new)
    new.pop(SECTION_KEY, None)
    if old != new or written.experience != model:
        raise PolicyError(f"policy file {path}: rewriting the experience section would change other settings")
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(after, encoding="utf-8")
    os.replace(temporary, path)


def fit_comment(report: dict, alpha: float, data: str) -> list[str]:
    held, train = report["heldout"], report["train"]
    return [
        "Experience score (nlp/experience.py, docs/escalation.md#experience-score): predicted",
        "customer satisfaction; weights in satisfaction units (STC-3's S, -2..2) per feature unit.",
        f"Fitted by `python -m training.experience_fit --data-root {data} --write`: ridge (alpha {alpha:g},",
        f"standardised features) on the {train['dialogues']} training dialogues of STC-3 train.jsonl",
        "(target: mean S of 19 annotators; split by training.datasets.heldout_split).",
        f"Held-out Spearman ({held['dialogues']} dialogues): fitted {held['spearman_fitted']:.3f}, "
        f"hand-set formula {held['spearman_handset']:.3f}.",
        "longest_wait_minutes is 0 throughout STC-3 (no timestamps), so its weight is 0, not fitted.",
        "Remove this section to score with the hand-set formula instead.",
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fit the experience score's weights to STC-3 satisfaction.")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT, help="folder holding stc3/train.jsonl")
    parser.add_argument(
        "--policy", type=Path, default=DEFAULT_POLICY_FILE, help="policy: its thresholds; --write updates it"
    )
    parser.add_argument("--write", action="store_true", help="write the fitted weights into the policy file")
    parser.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help="ridge penalty on standardised features")
    parser.add_argument("--json", type=Path, help="write the report here too")
    args = parser.parse_args(argv)

    from service.runtime import load_analyzer  # the service's loader: the configured bundle
    from service.settings import get_settings

    try:
        policy = load_policy(args.policy)
        dialogues = read_stc3(args.data_root / STC3_FILE)
    except (PolicyError, Stc3Error) as exc:
        sys.exit(f"error: {exc}")
    except OSError as exc:
        sys.exit(f"error: cannot read {exc.filename}: {exc.strerror}")
    analyzer = load_analyzer(get_settings())
    rows = analyse_dialogues(
        analyzer,
        dialogues,
        policy.thresholds,
        progress=lambda done, total: print(f"analysed {done}/{total} dialogues", file=sys.stderr, flush=True),
    )
    model = fit_model(
        [r for r in rows if r.split == "train"], args.alpha, policy.experience.scale if policy.experience else None
    )
    report = evaluate(rows, model)
    report["alpha"] = args.alpha
    report["section"] = model.model_dump()
    print(render_table(report, model))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.write:
        write_section(args.policy, model, fit_comment(report, args.alpha, str(args.data_root)))
        print(f"wrote the experience section of {args.policy}")


if __name__ == "__main__":
    main()
