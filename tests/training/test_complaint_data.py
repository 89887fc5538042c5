"""Complaint data: X-CI's loader and its held-out part, the recipe entry, complaint labels in
labelled-interaction files, and the figures the manifest records (F1 of "yes", Spearman
against severity). Reads fixtures/xci (written for the tests in X-CI's layout)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from nlp.vocabulary import COMPLAINT_LABELS
from tests.conftest import FIXTURES
from training.datasets import (
    TASK_LABELS,
    DataError,
    heldout_split,
    interactions_for_task,
    load_xci_complaint,
    read_interactions,
)
from training.metrics import severity_figures, spearman
from training.recipes import complaint_recipe, default_recipe, with_user_data
from training.train import headline_metrics

XCI_ROWS = list(csv.DictReader(open(FIXTURES / "xci" / "train.csv", encoding="utf-8")))


def test_xci_parts_follow_the_held_out_rule_and_cover_the_file():
    train, heldout = load_xci_complaint(FIXTURES, "train"), load_xci_complaint(FIXTURES, "heldout")
    assert len(train) + len(heldout) == len(XCI_ROWS)
    assert not set(train.texts) & set(heldout.texts)
    expected = [r["tweet"] for r in XCI_ROWS if heldout_split(f"xci:{r['id']}") == "heldout"]
    assert heldout.texts == expected
    assert train.label_names == list(COMPLAINT_LABELS) == ["no", "yes"] and train.kind == "multiclass"
    by_text = {r["tweet"]: r for r in XCI_ROWS}
    for data in (train, heldout):
        assert [int(by_text[t]["label"]) for t in data.texts] == data.labels.tolist()
        assert [int(by_text[t]["Severity"]) for t in data.texts] == data.aux["severity"].tolist()
    with pytest.raises(ValueError, match="withheld"):
        load_xci_complaint(FIXTURES, "test")


def test_a_bad_xci_row_names_file_and_line(tmp_path):
    (tmp_path / "xci").mkdir()
    lines = (FIXTURES / "xci" / "train.csv").read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace(",0,retail,", ",2,retail,")
    (tmp_path / "xci" / "train.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"train.csv:2: label 2"):
        load_xci_complaint(tmp_path, "train")


def test_complaint_recipe_tunes_on_train_and_only_reports_heldout():
    data = complaint_recipe(FIXTURES)
    heldout = load_xci_complaint(FIXTURES, "heldout")
    assert data.train.name == "xci/complaint:train-fit" and data.dev.name == "xci/complaint:train-stop"
    assert len(data.train) + len(data.dev) == len(load_xci_complaint(FIXTURES, "train"))
    assert [r.name for r in data.reports] == ["xci/complaint:heldout"]
    assert not set(heldout.texts) & (set(data.train.texts) | set(data.dev.texts))
    assert "severity" in data.reports[0].aux and len(data.reports[0].aux["severity"]) == len(heldout)
    # Complaint alone reads X-CI only: no own files, no other public set needed.
    assert set(default_recipe(FIXTURES, own_files=[], tasks=["complaint"])) == {"complaint"}


def test_labelled_files_can_carry_complaint_labels(tmp_path):
    path = tmp_path / "mine.jsonl"
    rows = [
        {"id": "a", "text": "You charged me twice again!", "complaint": "yes", "split": "train"},
        {"id": "b", "text": "What are your opening hours?", "complaint": "no", "split": "train"},
        {"id": "c", "text": "Still no refund, awful.", "complaint": "yes"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert TASK_LABELS["complaint"] == COMPLAINT_LABELS
    parsed, problems = read_interactions([path])
    assert not problems
    complaint = interactions_for_task(parsed, "complaint", "train", "mine")
    assert complaint.labels.tolist() == [1, 0] and complaint.label_names == ["no", "yes"]
    # Joined to the recipe's X-CI data: the user's rows train, X-CI's held-out part still reports.
    recipe = with_user_data({"complaint": complaint_recipe(FIXTURES)}, parsed, "mine")
    assert "You charged me twice again!" in recipe["complaint"].train.texts
    assert recipe["complaint"].reports[0].name == "xci/complaint:heldout"
    path.write_text(json.dumps({"text": "meh", "complaint": "maybe"}) + "\n")
    with pytest.raises(DataError, match=r"mine.jsonl:1: field 'complaint': 'maybe' is not one of \['no', 'yes'\]"):
        read_interactions([path])


def test_severity_figures_rank_over_all_rows_and_over_complaints():
    severity = np.array([0, 0, 0, 1, 2, 3, 4])
    p_yes = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.8, 0.9])
    figures = severity_figures(p_yes, severity)
    assert figures["severity_spearman_complaints"] == pytest.approx(1.0)
    assert 0.9 < figures["severity_spearman"] < 1.0  # ties among the zeros
    assert figures["severity_complaints_n"] == 4
    assert spearman(np.array([0.5, 0.5, 0.5]), np.array([1, 2, 3])) is None  # undefined, not nan


def test_manifest_figures_of_the_complaint_head():
    metrics = {
        "macro_f1": 0.8,
        "macro_recall": 0.81,
        "per_class": {
            "no": {"f1": 0.9, "precision": 0.9, "recall": 0.9},
            "yes": {"f1": 0.7, "precision": 0.6, "recall": 0.84},
        },
        "severity_spearman": 0.55,
        "severity_spearman_complaints": None,
    }
    assert headline_metrics("complaint", "xci/complaint:heldout", metrics) == {
        "xci_complaint_heldout.macro_f1": 0.8,
        "xci_complaint_heldout.macro_recall": 0.81,
        "xci_complaint_heldout.f1": 0.7,
        "xci_complaint_heldout.precision": 0.6,
        "xci_complaint_heldout.recall": 0.84,
        "xci_complaint_heldout.severity_spearman": 0.55,
    }
