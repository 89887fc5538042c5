"""Risk-cue training data (training.cue_data), the `cues` task of labelled files, and the
per-family evaluation of patterns, head and both (training.cue_eval)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nlp.analyzer import Analyzer
from nlp.vocabulary import CUE_FAMILIES
from tests.nlp.test_cue_model import cue_analyzer
from training.cue_data import cue_interactions, cue_set_interactions
from training.cue_eval import evaluate_cues, family_figures
from training.datasets import DataError, Interaction, heldout_split, read_labelled_files

ROOT = Path(__file__).resolve().parents[2]


def test_every_double_labelled_message_carries_its_final_cues(tmp_path: Path):
    rows = cue_interactions(tmp_path, ROOT)  # an empty data root: no public pool
    cue_set = cue_set_interactions(ROOT)
    assert len(cue_set) == 700 and {r.id for r in cue_set} <= {r.id for r in rows}
    written = [r for r in rows if r.id.startswith("uc-")]
    assert len(written) == 300
    assert all(set(r.multilabels["cues"]) <= set(CUE_FAMILIES) and "urgency" in r.labels for r in rows)
    assert all(r.split == heldout_split(r.id) for r in rows)
    # The adjudication decides where the passes differ (cue-0665: neither pass's reading).
    final = {r.id: r for r in cue_set}
    adjudicated = json.loads(
        next(
            line
            for line in (ROOT / "data" / "cues" / "labels" / "adjudicated.jsonl").read_text().splitlines()
            if '"cue-0665"' in line
        )
    )
    assert final["cue-0665"].labels["urgency"] == adjudicated["urgency"]
    assert final["cue-0665"].multilabels["cues"] == tuple(sorted(adjudicated["cues"]))


def test_an_empty_cue_list_is_a_label_but_an_empty_emotion_list_is_not(tmp_path: Path):
    good = tmp_path / "cues.jsonl"
    good.write_text(json.dumps({"id": "a", "text": "hi", "cues": []}) + "\n")
    rows, _ = read_labelled_files([good], tasks=("cues",))
    assert rows[0].multilabels == {"cues": ()}
    bad = tmp_path / "emotions.jsonl"
    bad.write_text(json.dumps({"id": "a", "text": "hi", "emotions": []}) + "\n")
    with pytest.raises(DataError, match="non-empty list"):
        read_labelled_files([bad], tasks=("emotions",))


def test_family_figures_count_per_family():
    truth = np.zeros((4, len(CUE_FAMILIES)), dtype=bool)
    predicted = np.zeros_like(truth)
    legal = CUE_FAMILIES.index("legal")
    truth[[0, 1], legal] = True
    predicted[[1, 2], legal] = True
    figures = family_figures(truth, predicted)
    assert figures["legal"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2, "predicted": 2}
    assert figures["safety"]["support"] == 0 and figures["safety"]["f1"] == 0.0


def test_evaluation_separates_patterns_head_and_both(analyzer: Analyzer):
    always_security = cue_analyzer(analyzer, {"security": 0.0})
    rows = [
        Interaction("r1", "I want to cancel my account today.", {}, "heldout", {"cues": ("cancellation",)}),
        Interaction("r2", "someone abroad bought groceries with my card", {}, "heldout", {"cues": ("security",)}),
        Interaction("r3", "what time do you open on Sunday?", {}, "heldout", {"cues": ()}),
    ]
    report = evaluate_cues(always_security, rows)
    sources = report["sources"]
    assert report["n"] == 3 and report["messages_with_cues"] == 2
    assert sources["patterns"]["cancellation"]["recall"] == 1.0 and sources["patterns"]["security"]["recall"] == 0.0
    assert sources["head"]["security"] == pytest.approx(
        {"precision": 1 / 3, "recall": 1.0, "f1": 0.5, "support": 1, "predicted": 3}
    )
    assert sources["both"]["cancellation"]["recall"] == 1.0 and sources["both"]["security"]["recall"] == 1.0
