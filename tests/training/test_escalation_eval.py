"""Escalation evaluation: the scoring against hand-computed figures, the labelled-data
reader's errors and the `convintel evaluate-escalation` command."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from service.cli import app
from tests.conftest import FIXTURES
from training.escalation_eval import EscalationDataError, read_labelled, route_score, score

LABELLED = FIXTURES / "escalation" / "labelled.jsonl"


def test_score_matches_hand_computed_figures():
    truth = ["none", "monitor", "escalate", "urgent", "escalate", "none"]
    predicted = ["monitor", "monitor", "urgent", "escalate", "none", "escalate"]
    figures = score(truth, predicted)
    # recommended = escalate|urgent: tp = 2 (rows 3, 4), fp = 1 (row 6), fn = 1 (row 5)
    assert figures["recommended_precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert figures["recommended_recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert figures["level_accuracy"] == pytest.approx(1 / 6, abs=1e-4)
    # within one level: rows 1-4 yes; row 5 (escalate vs none) no; row 6 (none vs escalate) no
    assert figures["level_within_one"] == pytest.approx(4 / 6, abs=1e-4)
    confusion = figures["confusion_matrix"]["rows_truth_cols_predicted"]
    assert sum(map(sum, confusion)) == 6 and confusion[0][1] == 1 and confusion[2][0] == 1
    # per level: none 0 of 2 (rows 1, 6), monitor 1 of 1, escalate 0 of 2 (rows 3, 5), urgent 0 of 1
    assert figures["level_recall"] == {"none": 0.0, "monitor": 1.0, "escalate": 0.0, "urgent": 0.0}
    assert score(["none"], ["none"])["level_recall"] == {"none": 1.0, "monitor": None, "escalate": None, "urgent": None}


def test_reader_names_file_line_and_field(tmp_path):
    rows = read_labelled(LABELLED)
    assert [r.level for r in rows] == ["none", "urgent", "escalate", "monitor"]
    assert [r.route for r in rows] == ["none", "security", "supervisor", "none"]
    bad = tmp_path / "bad.jsonl"
    good_line = LABELLED.read_text().splitlines()[0]
    record = json.loads(good_line)
    record["messages"][0]["role"] = "robot"
    bad.write_text(good_line + "\n" + json.dumps(record) + "\n")
    with pytest.raises(EscalationDataError, match=r"bad.jsonl:2: messages.0.role"):
        read_labelled(bad)
    record = json.loads(good_line)
    record["label"]["level"] = "panic"
    bad.write_text(json.dumps(record) + "\n")
    with pytest.raises(EscalationDataError, match=r"bad.jsonl:1: label.level 'panic'"):
        read_labelled(bad)
    record = json.loads(good_line)
    record["label"]["route_to"] = ["billing"]
    bad.write_text(json.dumps(record) + "\n")
    with pytest.raises(EscalationDataError, match=r"bad.jsonl:1: label.route_to must be a route name"):
        read_labelled(bad)


def test_route_accuracy_counts_labels_that_name_a_route():
    truth = ["none", "billing", "security", None, "billing"]
    predicted = ["senior_agent", "billing", "none", "security", "retention"]
    # Rows 2, 3 and 5 name a route; only row 2 is right. Row 4's label names none at all.
    assert route_score(truth, predicted) == {
        "n": 3,
        "accuracy": 0.3333,
        "labelled": {"billing": 2, "none": 1, "security": 1},
        "predicted": {"billing": 1, "none": 1, "retention": 1, "security": 1, "senior_agent": 1},
    }
    assert route_score(["none", None], ["none", "billing"])["accuracy"] is None


def test_cli_writes_metrics_consistent_with_its_mistakes(tmp_path):
    result = CliRunner().invoke(app, ["evaluate-escalation", "--data", str(LABELLED), "--output", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "escalation_metrics.json").read_text())
    assert report["all"]["n"] == 4 == report["tuning"]["n"] + report["heldout"]["n"]
    wrong = len(report["mistakes"])
    assert report["all"]["level_accuracy"] == pytest.approx((4 - wrong) / 4, abs=1e-4)
    assert "| heldout |" in (tmp_path / "escalation_report.md").read_text()
    assert report["all"]["routes"]["n"] == 2  # fx-esc-2 (security) and fx-esc-3 (supervisor)
    # The live-fraud conversation must be escalated: the advice is useless if it is not.
    assert "fx-esc-2" not in {m["conversation_id"] for m in report["mistakes"] if m["predicted"] in ("none", "monitor")}


def test_cli_bad_data_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    result = CliRunner().invoke(app, ["evaluate-escalation", "--data", str(bad), "--output", str(tmp_path)])
    assert result.exit_code == 2 and "bad.jsonl:1: not valid JSON" in result.output
