"""The experience fit on a small fixture of fake STC-3-shaped dialogues, with a stub
analyzer (the sentiment score is written in each fake text), so no model is loaded."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

import service.runtime
from nlp.experience import FEATURES, ExperienceModel, ExperienceWeights
from nlp.policy import DEFAULT_POLICY_FILE, load_policy
from nlp.schemas import MessageAnalysis, SentimentResult, Transcript, UrgencyResult
from training.experience_fit import (
    Stc3Error,
    analyse_dialogues,
    feature_matrix,
    fit_model,
    fit_ridge,
    main,
    read_stc3,
    replace_section,
    section_text,
)

POLICY = load_policy()


@dataclass
class StubResult:
    messages: list[MessageAnalysis]


class StubAnalyzer:
    """Reads the sentiment score from the text: 'score -0.4: words'."""

    def analyze_batch(self, transcripts: list[Transcript]) -> list[StubResult]:
        return [StubResult([self._analysis(m.id or "", m.role, m.text) for m in t.messages]) for t in transcripts]

    @staticmethod
    def _analysis(mid, role, text) -> MessageAnalysis:
        score = float(text.split(":")[0].split()[1])
        negative, positive = max(-score, 0.0), max(score, 0.0)
        return MessageAnalysis(
            id=mid,
            role=role,
            sentiment=SentimentResult(
                label="negative" if score < -0.2 else "positive" if score > 0.2 else "neutral",
                score=score,
                probabilities={"negative": negative, "neutral": 1 - negative - positive, "positive": positive},
            ),
            emotions=[],
            urgency=UrgencyResult(
                label="low", score=0.0, probabilities={"low": 1.0, "medium": 0.0, "high": 0.0, "critical": 0.0}
            ),
        )


def fake_dialogues(count: int = 12, seed: int = 3) -> list[dict]:
    """STC-3-shaped records: 1-4 customer turns with random scores, helpdesk replies,
    some ending on 'still not working'; S judgements are filled in by the caller."""
    rng = np.random.default_rng(seed)
    records = []
    for index in range(count):
        turns = []
        for _ in range(int(rng.integers(1, 5))):
            turns.append({"sender": "customer", "utterances": [f"score {rng.uniform(-1, 1):.2f}: my order", "is late"]})
            turns.append({"sender": "helpdesk", "utterances": ["score 0.0: we will check"]})
        if index % 3 == 0:
            turns.append({"sender": "customer", "utterances": [f"score {rng.uniform(-1, 0):.2f}: still not working"]})
        records.append({"id": f"fake-{index}", "annotations": [], "turns": turns})
    return records


def write_stc3(folder: Path, records: list[dict]) -> Path:
    path = folder / "stc3" / "train.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def with_judgements(records: list[dict], satisfaction: list[float]) -> list[dict]:
    """Each record with two annotators whose S values average to `satisfaction`."""
    return [
        {**r, "annotations": [{"quality": {"S": s - 0.5}}, {"quality": {"S": s + 0.5}}]}
        for r, s in zip(records, satisfaction)
    ]


def test_read_stc3_maps_roles_joins_utterances_and_averages_s(tmp_path):
    record = {
        "id": "d1",
        "annotations": [{"quality": {"S": -1, "A": 0}}, {"quality": {"S": 2}}],
        "turns": [
            {"sender": "customer", "utterances": ["score 0.1: first", " second "]},
            {"sender": "helpdesk", "utterances": ["  "]},
            {"sender": "customer", "utterances": ["score 0.2: third"]},
        ],
    }
    (dialogue,) = read_stc3(write_stc3(tmp_path, [record]))
    assert dialogue.id == "d1" and dialogue.satisfaction == pytest.approx(0.5)
    messages = dialogue.transcript.messages
    assert [(m.id, m.role.value, m.text) for m in messages] == [
        ("t0", "customer", "score 0.1: first second"),
        ("t2", "customer", "score 0.2: third"),
    ]


def test_read_stc3_names_a_bad_line(tmp_path):
    path = write_stc3(tmp_path, [{"id": "d1", "annotations": [{"quality": {"S": 0}}], "turns": [{"sender": "bot"}]}])
    with pytest.raises(Stc3Error, match=r"train.jsonl:1: turns.0.sender 'bot'"):
        read_stc3(path)


def test_ridge_recovers_weights_of_a_noisy_linear_target():
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.normal(size=400), rng.integers(0, 2, 400), np.zeros(400)])
    y = 0.3 + 0.8 * x[:, 0] - 0.5 * x[:, 1] + rng.normal(scale=0.1, size=400)
    intercept, weights = fit_ridge(x, y, alpha=1.0, names=["a", "b", "constant"])
    assert intercept == pytest.approx(0.3, abs=0.05)
    assert weights["a"] == pytest.approx(0.8, abs=0.05) and weights["b"] == pytest.approx(-0.5, abs=0.05)
    assert weights["constant"] == 0.0


def test_fit_on_fake_dialogues_recovers_a_synthetic_target(tmp_path):
    dialogues = read_stc3(write_stc3(tmp_path, with_judgements(fake_dialogues(), [0.0] * 12)))
    rows = analyse_dialogues(StubAnalyzer(), dialogues, POLICY.thresholds, batch_size=5)
    assert len(rows) == 12
    truth = {"last_sentiment": 1.2, "unresolved": -0.6, "customer_turns": -0.1}
    for row in rows:  # the synthetic target: a known linear formula of the features
        row.satisfaction = 0.4 + sum(w * row.features[name] for name, w in truth.items())
    model = fit_model(rows, alpha=0.01)
    weights = model.weights.model_dump()
    assert model.intercept == pytest.approx(0.4, abs=0.1)
    for name in FEATURES:
        assert weights[name] == pytest.approx(truth.get(name, 0.0), abs=0.1), name
    x = feature_matrix(rows)
    assert x[:, FEATURES.index("longest_wait_minutes")].max() == 0.0  # no timestamps: the feature is 0
    assert weights["longest_wait_minutes"] == 0.0


SECTION_POLICY = """\
version: 1
# the experience section
experience:
  intercept: 0.0
  weights: {}

# routes come after
routes: [none, billing]
"""


def test_replace_section_keeps_the_rest_of_the_file():
    model = ExperienceModel(intercept=0.1, weights=ExperienceWeights(last_sentiment=0.5))
    section = section_text(model, ["new comment"])
    replaced = replace_section(SECTION_POLICY, section)
    assert replaced == "version: 1\n" + section + "\n# routes come after\nroutes: [none, billing]\n"
    appended = replace_section("version: 1\n", section)
    assert appended == "version: 1\n\n" + section
    assert replace_section(appended, section) == appended


def test_command_fits_reports_and_writes_the_policy(tmp_path, monkeypatch, capsys):
    records = fake_dialogues(count=24, seed=5)
    dialogues = read_stc3(write_stc3(tmp_path / "scratch", with_judgements(records, [0.0] * len(records))))
    rows = analyse_dialogues(StubAnalyzer(), dialogues, POLICY.thresholds)
    satisfaction = [0.2 + 1.0 * r.features["last_sentiment"] - 0.5 * r.features["unresolved"] for r in rows]
    write_stc3(tmp_path / "data", with_judgements(records, satisfaction))
    policy = tmp_path / "policy.yaml"
    policy.write_text(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(service.runtime, "load_analyzer", lambda settings: StubAnalyzer())

    data, report_path = str(tmp_path / "data"), str(tmp_path / "r.json")
    main(["--data-root", data, "--policy", str(policy), "--alpha", "0.01", "--write", "--json", report_path])
    out = capsys.readouterr().out
    assert "| hand-set formula |" in out and "| fitted (ridge) |" in out and "wrote the experience section" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["heldout"]["dialogues"] + report["train"]["dialogues"] == 24
    assert report["train"]["spearman_fitted"] > 0.95
    written = load_policy(policy)
    assert written.experience is not None
    assert written.experience.weights.last_sentiment == pytest.approx(1.0, abs=0.1)
    assert written.rules == load_policy(DEFAULT_POLICY_FILE).rules
    text = policy.read_text()
    assert text.count("\nexperience:") == 1 and "python -m training.experience_fit" in text
    assert yaml.safe_load(text)["experience"] == written.experience.model_dump()
