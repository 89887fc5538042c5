"""Agreement between labelling passes (training/agreement.py) and the final labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.agreement import Label, LabelFileError, agreement, disagreements, final_labels, read_labels


def write(path: Path, rows: list[tuple[str, str, list[str]]]) -> Path:
    path.write_text("".join(json.dumps({"ref": r, "urgency": u, "cues": c}) + "\n" for r, u, c in rows))
    return path


def test_kappa_matches_a_hand_computed_value(tmp_path: Path):
    # 10 messages; the passes agree on 8. Marginals: first low 5, high 5; second low 5, high 5.
    # p_o = 0.8, p_e = 0.5 * 0.5 + 0.5 * 0.5 = 0.5, kappa = (0.8 - 0.5) / 0.5 = 0.6
    first = [(f"r{i}", "low" if i < 5 else "high", []) for i in range(10)]
    second = [(f"r{i}", "low" if i in (0, 1, 2, 3, 5) else "high", []) for i in range(10)]
    report = agreement(read_labels(write(tmp_path / "a", first)), read_labels(write(tmp_path / "b", second)))
    assert report["messages"] == 10
    assert report["urgency"]["agreement"] == 0.8
    assert report["urgency"]["kappa"] == pytest.approx(0.6)
    assert report["urgency"]["confusion"] == {"high/high": 4, "high/low": 1, "low/high": 1, "low/low": 4}
    assert report["cues"]["legal"]["kappa"] is None  # nobody marked it: undefined, not perfect


def test_final_labels_take_agreement_or_adjudication(tmp_path: Path):
    a = read_labels(write(tmp_path / "a", [("x", "low", []), ("y", "high", ["cancellation"])]))
    b = read_labels(write(tmp_path / "b", [("x", "low", []), ("y", "critical", ["cancellation"])]))
    assert disagreements(a, b) == ["y"]
    with pytest.raises(LabelFileError, match="not adjudicated"):
        final_labels(a, b, {})
    final = final_labels(a, b, {"y": Label("high", frozenset({"cancellation"}))})
    assert final == {"x": Label("low", frozenset()), "y": Label("high", frozenset({"cancellation"}))}


def test_values_outside_the_guideline_are_refused(tmp_path: Path):
    with pytest.raises(LabelFileError, match="not in the guideline"):
        read_labels(write(tmp_path / "a", [("x", "severe", [])]))
    with pytest.raises(LabelFileError, match="not in the guideline"):
        read_labels(write(tmp_path / "b", [("x", "low", ["fraud"])]))
