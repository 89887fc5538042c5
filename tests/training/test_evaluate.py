"""`convintel evaluate`: metrics.json, the HTML report, input formats and bad rows.

Every run reads the shipped bundle and the project's fixtures (never ../shared/data); the
encoder is loaded once per process (training.evaluate.load_encoder), so this takes seconds."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nlp.bundle import load_bundle
from service.cli import app
from tests.conftest import BUNDLE, FIXTURES
from training.datasets import read_csv_interactions
from training.evaluate import evaluate_bundle, vader_labels
from training.report import render_report, render_summary

runner = CliRunner()
INTERACTIONS = FIXTURES / "labelled" / "interactions.jsonl"
ROWS = [json.loads(line) for line in INTERACTIONS.read_text().splitlines() if line.strip()]


def run_evaluate(*args: str):
    return runner.invoke(app, ["evaluate", "--model", str(BUNDLE), *args])


@pytest.fixture(scope="module")
def fixture_run(tmp_path_factory) -> tuple[dict, str, str]:
    out = tmp_path_factory.mktemp("eval")
    result = run_evaluate("--data", str(INTERACTIONS), "-o", str(out))
    assert result.exit_code == 0, result.output
    return json.loads((out / "metrics.json").read_text()), (out / "report.html").read_text(), result.output


def by_task(metrics: dict) -> dict[str, dict]:
    return {e["task"]: e for e in metrics["evaluations"]}


def test_cli_writes_metrics_for_every_labelled_task(fixture_run):
    metrics, _, output = fixture_run
    assert metrics["model"] == {"name": "convintel-base", "version": load_bundle(BUNDLE).version, "path": str(BUNDLE)}
    evaluations = by_task(metrics)
    assert set(evaluations) == {"sentiment", "urgency"}
    for task, evaluation in evaluations.items():
        assert evaluation["n"] == sum(task in row for row in ROWS) == 24
        assert evaluation["metrics"]["n"] == 24 and evaluation["split"] == "all"
        assert {"macro_f1", "macro_recall", "accuracy", "per_class", "confusion_matrix", "ece"} <= set(
            evaluation["metrics"]
        )
        assert sum(map(sum, evaluation["metrics"]["confusion_matrix"])) == 24
    vader = evaluations["sentiment"]["baselines"]["vader"]
    assert vader["n"] == 24 and vader["ece"] is None and set(vader["per_class"]) == {"negative", "neutral", "positive"}
    assert evaluations["urgency"]["baselines"] == {}
    assert "VADER" in output and "macro-F1" in output


def test_vader_baseline_matches_its_labels(fixture_run):
    metrics, _, _ = fixture_run
    predicted = vader_labels([row["text"] for row in ROWS])
    truth = [row["sentiment"] for row in ROWS]
    accuracy = sum(p == t for p, t in zip(predicted, truth)) / len(truth)
    assert by_task(metrics)["sentiment"]["baselines"]["vader"]["accuracy"] == pytest.approx(accuracy)
    assert vader_labels(["I love it, thank you!", "This is terrible and broken.", "The box is blue."]) == [
        "positive",
        "negative",
        "neutral",
    ]


def test_report_has_svg_confusion_matrices_and_the_vader_row(fixture_run):
    metrics, html, _ = fixture_run
    assert (
        html.startswith("<!doctype html>")
        and "<script" not in html
        and "http" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )
    # sentiment: model and VADER; urgency: model only
    assert html.count("<svg") == 3
    assert "<td>VADER</td>" in html and "macro-recall" in html
    urgency_svg = re.findall(r"<svg.*?</svg>", html, re.S)[2]
    for label in ("low", "medium", "high", "critical"):
        assert f">{label}</text>" in urgency_svg
    counts = [int(c) for c in re.findall(r'font-weight="bold">(\d+)</text>', urgency_svg)]
    assert counts == [c for row in by_task(metrics)["urgency"]["metrics"]["confusion_matrix"] for c in row]


def test_invalid_label_fails_naming_file_line_and_field(tmp_path):
    bad = tmp_path / "bad.jsonl"
    lines = INTERACTIONS.read_text().splitlines()
    lines.insert(4, json.dumps({"id": "bad-1", "text": "meh", "sentiment": "furious"}))
    bad.write_text("\n".join(lines) + "\n")

    failed = run_evaluate("--data", str(bad), "-o", str(tmp_path / "out"))
    assert failed.exit_code == 2
    assert f"{bad}:5" in failed.output and "'sentiment'" in failed.output and "furious" in failed.output
    assert not (tmp_path / "out").exists()

    skipped = run_evaluate("--data", str(bad), "-o", str(tmp_path / "out"), "--skip-invalid")
    assert skipped.exit_code == 0, skipped.output
    assert "skipped 1 invalid row" in skipped.output
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["skipped_rows"]["count"] == 1 and f"{bad}:5" in metrics["skipped_rows"]["rows"][0]
    assert {e["n"] for e in metrics["evaluations"]} == {24}


def write_csv(path: Path, rows: list[dict], columns=("id", "text", "sentiment", "urgency")) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def test_csv_input_works(tmp_path):
    rows = [dict(row) for row in ROWS]
    rows[0]["urgency"] = ""  # an empty cell is no label
    path = tmp_path / "labelled.csv"
    write_csv(path, rows)
    result = run_evaluate("--data", str(path), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    evaluations = by_task(json.loads((tmp_path / "out" / "metrics.json").read_text()))
    assert evaluations["sentiment"]["n"] == 24 and evaluations["urgency"]["n"] == 23
    assert evaluations["sentiment"]["data"] == str(path)


def test_csv_errors_name_file_line_and_field(tmp_path):
    rows = [dict(row) for row in ROWS[:3]]
    rows[1]["urgency"] = "asap"
    path = tmp_path / "bad.csv"
    write_csv(path, rows)
    result = run_evaluate("--data", str(path), "-o", str(tmp_path / "out"))
    assert result.exit_code == 2 and f"{path}:3" in result.output and "'urgency'" in result.output
    parsed, problems = read_csv_interactions(path, skip_invalid=True)
    assert len(parsed) == 2 and len(problems) == 1
    no_text = tmp_path / "no_text.csv"
    write_csv(no_text, ROWS[:2], columns=("id", "sentiment"))
    result = run_evaluate("--data", str(no_text))
    assert result.exit_code == 2 and f"{no_text}:1" in result.output and "'text'" in result.output


def test_split_and_task_select_rows(tmp_path):
    result = run_evaluate(
        "--data", str(INTERACTIONS), "--split", "heldout", "--task", "urgency", "-o", str(tmp_path / "out")
    )
    assert result.exit_code == 0, result.output
    evaluations = json.loads((tmp_path / "out" / "metrics.json").read_text())["evaluations"]
    assert [(e["task"], e["split"], e["n"]) for e in evaluations] == [
        ("urgency", "heldout", sum(row["split"] == "heldout" for row in ROWS))
    ]
    missing = run_evaluate("--data", str(INTERACTIONS), "--task", "emotions")
    assert missing.exit_code == 2 and "no emotions labels" in missing.output


def test_shared_sets_resolve_against_the_data_root(tmp_path):
    # fixtures/ has a GoEmotions-shaped folder, so `shared:` works here without ../shared/data
    result = evaluate_bundle(
        BUNDLE, ["shared:goemotions/original:dev", str(INTERACTIONS)], data_root=FIXTURES, task=None, split="heldout"
    )
    emotions = result.evaluations[0]
    assert (emotions.task, emotions.kind, emotions.n) == ("emotions", "multilabel", 8)
    assert set(emotions.derived) == {"ekman", "group", "support"} and "micro_f1" in emotions.metrics
    # the customer-service emotions the API reports, label by label, read through nlp.vocabulary' mapping
    from nlp.vocabulary import SUPPORT_EMOTIONS

    support = emotions.derived["support"]["per_class"]
    assert list(support) == list(SUPPORT_EMOTIONS)
    assert all({"precision", "recall", "f1", "support"} <= set(figures) for figures in support.values())
    assert [e.task for e in result.evaluations] == ["emotions", "sentiment", "urgency"]
    html, summary = render_report(result), render_summary(result)
    assert "ekman (derived)" in html and "ekman (derived)" in summary
    assert "Per label, support (derived)" in html
    assert html.count("<svg") == 3  # no confusion matrix for the multi-label set
    unknown = run_evaluate("--data", "shared:goemotions/nope:dev", "--data-root", str(FIXTURES))
    assert unknown.exit_code == 2 and "unknown shared set" in unknown.output
    absent = run_evaluate("--data", "shared:tweeteval/sentiment:val", "--data-root", str(tmp_path))
    assert absent.exit_code == 2 and "not found" in absent.output


def test_a_missing_bundle_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["evaluate", "--model", str(tmp_path / "nope"), "--data", str(INTERACTIONS)])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_complaint_is_scored_on_xci_held_out_with_its_severity_figures(tmp_path):
    result = evaluate_bundle(BUNDLE, ["shared:xci/complaint"], data_root=FIXTURES)
    (complaint,) = result.evaluations
    assert (complaint.task, complaint.split, complaint.set_name) == ("complaint", "heldout", "xci/complaint:heldout")
    assert complaint.labels == ["no", "yes"] and set(complaint.metrics["per_class"]) == {"no", "yes"}
    assert {"severity_spearman", "severity_spearman_complaints"} <= set(complaint.metrics)
    # A file's complaint labels, for a bundle without the head: left out, and said so.
    stripped = tmp_path / "no-complaint"
    shutil.copytree(BUNDLE, stripped)
    manifest = json.loads((stripped / "manifest.json").read_text())
    manifest["tasks"].pop("complaint", None)
    (stripped / "manifest.json").write_text(json.dumps(manifest))
    labelled = tmp_path / "mixed.jsonl"
    labelled.write_text(
        "\n".join(json.dumps({**row, "complaint": "yes" if row["sentiment"] == "negative" else "no"}) for row in ROWS)
    )
    mixed = evaluate_bundle(stripped, [str(labelled)])
    assert [e.task for e in mixed.evaluations] == ["sentiment", "urgency"]
    assert any("complaint labels not scored" in note for note in mixed.notes)
    with_head = evaluate_bundle(BUNDLE, [str(labelled)])
    assert [e.task for e in with_head.evaluations] == ["sentiment", "urgency", "complaint"]
