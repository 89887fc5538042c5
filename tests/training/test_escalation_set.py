"""The whole escalation set: STC-3 references resolved from a data root, labels from the
blind passes merged (agreement or adjudication), unlabelled conversations skipped and
counted; the passes' agreement; the blind sheet; `convintel evaluate-escalation` on it.

Fixtures: `fixtures/escalation/set` is a checkout's `data/escalation` in small
(one labelled conversation, two written ones, three STC-3 references and two passes),
`fixtures/escalation/data_root` a public-data root holding three invented STC-3 dialogues."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli import app
from tests.conftest import FIXTURES
from training.agreement import LabelFileError
from training.escalation_eval import EscalationDataError, is_heldout
from training.escalation_labels import (
    disagreements,
    escalation_agreement,
    final_escalation_labels,
    read_escalation_labels,
)
from training.escalation_set import draw_stc3, read_escalation_set, sheet_rows

SET = FIXTURES / "escalation" / "set"
DATA_ROOT = FIXTURES / "escalation" / "data_root"
LABELS = SET / "labels"


def stc3_fixture() -> dict[str, dict]:
    lines = (DATA_ROOT / "stc3" / "train.jsonl").read_text().splitlines()
    return {f"stc3:train:{d['id']}": d for d in map(json.loads, lines)}


def test_the_set_merges_final_labels_and_resolves_stc3_references():
    whole = read_escalation_set(SET, DATA_ROOT)
    by_id = {row.conversation_id: row for row in whole.rows}
    # fx-esc-1 carries its own label; fx-w-1 and fx2: both passes agree; fx1: adjudicated.
    assert {cid: (row.level, row.route, row.recommended) for cid, row in by_id.items()} == {
        "fx-esc-1": ("none", "none", False),
        "fx-w-1": ("escalate", "billing", True),
        "stc3:train:fx1": ("urgent", "security", True),
        "stc3:train:fx2": ("none", "none", False),
    }
    # fx-w-2 is an open disagreement, fx3 was never labelled.
    assert (whole.unlabelled, whole.unresolved) == (2, 0)
    dialogue = stc3_fixture()["stc3:train:fx1"]
    transcript = by_id["stc3:train:fx1"].transcript
    assert transcript.channel.value == "social"
    assert [(m.role.value, m.text) for m in transcript.messages] == [
        ("customer" if turn["sender"] == "customer" else "agent", " ".join(turn["utterances"]))
        for turn in dialogue["turns"]
    ]
    assert all(row.heldout == is_heldout(cid) for cid, row in by_id.items())


def test_without_stc3_at_the_data_root_labelled_references_are_counted(tmp_path: Path):
    whole = read_escalation_set(SET, tmp_path)
    assert sorted(row.conversation_id for row in whole.rows) == ["fx-esc-1", "fx-w-1"]
    assert (whole.unlabelled, whole.unresolved) == (2, 2)


def test_a_label_for_an_id_outside_the_set_is_refused(tmp_path: Path):
    shutil.copytree(SET, tmp_path / "set")
    labels = tmp_path / "set" / "labels" / "adjudicated.jsonl"
    labels.write_text(labels.read_text().replace("stc3:train:fx1", "stc3:train:nope"))
    with pytest.raises(EscalationDataError, match="1 labelled ids are not in the set, e.g. stc3:train:nope"):
        read_escalation_set(tmp_path / "set", DATA_ROOT)


def test_agreement_of_the_two_passes_matches_hand_computed_kappas():
    first, second = (read_escalation_labels(LABELS / name) for name in ("pass_a.jsonl", "pass_b.jsonl"))
    report = escalation_agreement(first, second)
    # Levels a: E N U N, b: E M E N. Agreement 2/4; chance (2*1 + 1*2) / 16 = 0.25; kappa 0.25 / 0.75.
    assert report["conversations"] == 4
    assert report["level"]["agreement"] == 0.5
    assert report["level"]["kappa"] == pytest.approx(1 / 3, abs=1e-3)
    assert report["recommended"] == {"agreement": 1.0, "kappa": 1.0}
    assert report["route"]["agreement"] == 1.0 and report["route"]["both_recommended"] == 2
    assert [row["conversation_id"] for row in disagreements(first, second)] == ["fx-w-2", "stc3:train:fx1"]
    # Reasons are free text: the passes' different reasons for fx-w-1 are no disagreement.
    assert sorted(final_escalation_labels(LABELS)) == ["fx-w-1", "stc3:train:fx1", "stc3:train:fx2"]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"level": "panic", "route_to": "none"}, "level 'panic'"),
        ({"level": "monitor", "route_to": "billing"}, "does not fit level 'monitor'"),
        ({"level": "urgent", "route_to": "none"}, "does not fit level 'urgent'"),
        ({"level": "escalate", "route_to": "billing", "recommended": False}, "contradicts level"),
    ],
)
def test_label_lines_that_break_the_guideline_are_refused(tmp_path: Path, record: dict, message: str):
    path = tmp_path / "pass.jsonl"
    path.write_text(json.dumps({"conversation_id": "c1", **record}) + "\n")
    with pytest.raises(LabelFileError, match=rf"pass.jsonl:1: .*{message}"):
        read_escalation_labels(path)


def test_the_sheet_is_blind_and_complete():
    rows = sheet_rows(SET, DATA_ROOT)
    assert sorted(row["conversation_id"] for row in rows) == [
        "fx-w-1",
        "fx-w-2",
        "stc3:train:fx1",
        "stc3:train:fx2",
        "stc3:train:fx3",
    ]
    assert all(set(row) == {"conversation_id", "channel", "industry", "messages"} for row in rows)
    fx3 = next(row for row in rows if row["conversation_id"] == "stc3:train:fx3")
    assert fx3["messages"][1] == {
        "id": "m2",
        "role": "agent",
        "text": stc3_fixture()["stc3:train:fx3"]["turns"][1]["utterances"][0],
    }


def test_the_stc3_draw_takes_every_stratum_deterministically(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("training.escalation_set.STC3_STRATA", {"unhappy": 1, "mixed": 1, "satisfied": 1})
    drawn = draw_stc3(DATA_ROOT)
    assert sorted(drawn) == ["stc3:train:fx1", "stc3:train:fx2", "stc3:train:fx3"]
    assert draw_stc3(DATA_ROOT) == drawn


def test_cli_without_data_scores_the_whole_set_and_counts_the_skipped(tmp_path: Path):
    result = CliRunner().invoke(
        app, ["evaluate-escalation", "--set-dir", str(SET), "--data-root", str(DATA_ROOT), "--output", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "skipped 2 conversation(s) with no final label yet" in result.output
    report = json.loads((tmp_path / "escalation_metrics.json").read_text())
    assert report["all"]["n"] == 4
    assert report["all"]["routes"]["n"] == 2  # fx-w-1 (billing) and fx1 (security)
    # fx1, the one urgent label, is held out: its part reports the recall with its count,
    # the tuning part has no urgent label to count.
    assert (
        report["heldout"]["level_recall"]["urgent"] is not None and report["tuning"]["level_recall"]["urgent"] is None
    )
    page = (tmp_path / "escalation_report.md").read_text()
    urgent = report["heldout"]["level_recall"]["urgent"]
    assert "| heldout | 2 |" in page and f"| {urgent:.3f} (" in page and "| n/a |" in page


def test_policy_backtest_without_data_scores_the_same_whole_set(tmp_path: Path):
    """The backtest reads the set as evaluate-escalation does: STC-3 references resolved,
    unlabelled conversations skipped and counted."""
    policy = FIXTURES / "escalation" / "backtest_candidate.yaml"
    result = CliRunner().invoke(
        app,
        ["policy", "backtest", str(policy), "--set-dir", str(SET), "--data-root", str(DATA_ROOT), "-o", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    assert "skipped 2 conversation(s) with no final label yet" in result.output
    report = json.loads((tmp_path / "backtest.json").read_text())
    assert report["data"] == f"{SET} (whole set)"
    assert report["conversations"] == 4
    assert {row["conversation_id"] for row in report["advice"]} >= {"stc3:train:fx1", "fx-w-1"}


def test_policy_backtest_names_a_missing_stc3_root(tmp_path: Path):
    policy = FIXTURES / "escalation" / "backtest_candidate.yaml"
    result = CliRunner().invoke(
        app,
        [
            *("policy", "backtest", str(policy), "--set-dir", str(SET)),
            *("--data-root", str(tmp_path / "nowhere"), "-o", str(tmp_path / "out")),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "labelled STC-3 conversation(s)" in result.output and "lacks stc3/" in result.output
    assert json.loads((tmp_path / "out" / "backtest.json").read_text())["conversations"] < 4
