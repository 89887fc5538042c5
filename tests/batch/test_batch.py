"""Archive scoring (`convintel score`) and the trend report (`convintel report`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from nlp.analyzer import Analyzer
from nlp.archive import FileFormat, RowReader
from nlp.message_ids import assign_message_ids
from nlp.schemas import Transcript
from service.batch.checkpoint import Checkpoint, checkpoint_path
from service.batch.engines import LocalEngine
from service.batch.records import InputConversation, RowError, Shape, read_conversations
from service.batch.report import build_figures, render_html
from service.batch.runner import ScoreJob, ScoreJobError, run_score
from service.batch.scoring import read_scored
from service.batch.synthetic import message_rows, synthetic_transcripts, write_rows
from service.cli import app
from service.settings import Settings
from tests.conftest import ROOT

runner = CliRunner()
ARCHIVE = ROOT / "fixtures" / "archive"


@pytest.fixture
def batch_settings() -> Settings:
    # Small chunks: several commits even on a small archive.
    return Settings(_env_file=None, batch_chunk_messages=24, models_dir=ROOT / "models")


def _score(source: Path, output: Path, settings: Settings, analyzer: Analyzer, **job) -> object:
    return run_score(
        ScoreJob(input=source, output=output, progress=False, **job), settings, lambda: LocalEngine(analyzer)
    )


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_same_records(left: list[dict], right: list[dict], tolerance: float = 2e-4) -> None:
    """Row for row: same ids, labels, tags and structure; numbers within `tolerance`
    (different encoder batch shapes or thread counts can move the 4th decimal)."""
    assert [r["conversation_id"] for r in left] == [r["conversation_id"] for r in right]

    def same(a, b, where):
        if isinstance(a, float) or isinstance(b, float):
            assert abs(a - b) <= tolerance, where
        elif isinstance(a, dict):
            assert a.keys() == b.keys(), where
            for key in a:
                same(a[key], b[key], f"{where}.{key}")
        elif isinstance(a, list):
            assert len(a) == len(b), where
            for i, (x, y) in enumerate(zip(a, b)):
                same(x, y, f"{where}[{i}]")
        else:
            assert a == b, where

    for a, b in zip(left, right):
        same(a, b, a["conversation_id"])


# --- reading ----------------------------------------------------------------------------


def test_grouped_message_rows_become_transcripts_and_bad_rows_are_reported(tmp_path, batch_settings):
    source = tmp_path / "messages.csv"
    source.write_text(
        "conversation_id,message_id,role,text,timestamp,channel\n"
        "a,m1,customer,My card was charged twice,2026-03-01T10:00:00Z,chat\n"
        "a,m2,agent,Sorry! Checking now.,2026-03-01T10:01:00Z,chat\n"
        "a,m3,robot,I am not a role,2026-03-01T10:02:00Z,chat\n"  # bad role: row 4
        "b,m1,customer,   ,2026-03-02T10:00:00Z,email\n"  # blank text: row 5
        "b,m2,customer,Hello? Anyone?,2026-03-02T11:00:00Z,email\n"
        ",m1,customer,No conversation id,2026-03-02T11:00:00Z,email\n"  # row 7
        "a,m4,customer,I came back later,2026-03-03T10:00:00Z,chat\n"  # a is not contiguous: row 8
        "c,m1,customer,only,one,too,many,fields\n"  # row 9
        'c,m2,customer,"Fine, thanks",not-a-time,chat\n'  # bad timestamp: row 10
    )
    items = list(read_conversations(iter(RowReader(source, FileFormat.csv)), batch_settings))
    conversations = [i for i in items if isinstance(i, InputConversation)]
    errors = [e for e in items if isinstance(e, RowError)]
    assert [(c.transcript.conversation_id, len(c.transcript.messages)) for c in conversations] == [("a", 2), ("b", 1)]
    assert conversations[0].transcript.channel.value == "chat" and conversations[1].transcript.channel.value == "email"
    assert [e.row for e in errors] == [4, 5, 7, 8, 9, 10, 10]
    assert "role" in errors[0].reason and "text" in errors[1].reason
    assert "conversation_id" in errors[2].reason and "not contiguous" in errors[3].reason
    assert "fields" in errors[4].reason and "timestamp" in errors[5].reason
    # c had no valid row left: reported once more as a whole, not scored
    assert errors[6].conversation_id == "c" and "no valid message rows" in errors[6].reason
    # chunks end after a conversation; the resume rule (skip items ending at or before the
    # committed row) needs everything before such a point to end before everything after it
    for cut, item in enumerate(items[:-1], start=1):
        if isinstance(item, InputConversation):
            assert max(i.last_row for i in items[:cut]) < min(i.last_row for i in items[cut:])


def test_transcript_rows_auto_detected_in_every_format(tmp_path, batch_settings):
    bodies = list(synthetic_transcripts(5))
    for name in ("t.jsonl", "t.csv", "t.parquet"):
        write_rows(iter(bodies), tmp_path / name)
        items = list(
            read_conversations(iter(RowReader(tmp_path / name, FileFormat(name.split(".")[1]))), batch_settings)
        )
        assert [i.transcript for i in items] == [Transcript.model_validate(b) for b in bodies], name
    write_rows(message_rows(iter(bodies)), tmp_path / "m.parquet")
    grouped = list(
        read_conversations(iter(RowReader(tmp_path / "m.parquet", FileFormat.parquet)), batch_settings, Shape.messages)
    )
    assert [g.transcript.messages for g in grouped] == [Transcript.model_validate(b).messages for b in bodies]


# --- scoring ----------------------------------------------------------------------------


def test_bad_rows_land_in_the_errors_file_and_the_run_goes_on(tmp_path, batch_settings, full_analyzer):
    good = list(synthetic_transcripts(6))
    lines = [
        json.dumps(good[0]),
        "{not json",
        json.dumps(good[1]),
        json.dumps({"messages": []}),
        json.dumps(good[2]),
        json.dumps({**good[3], "messages": [{"role": "customer", "text": "x" * 30_000}]}),
        json.dumps(good[4]),
        "[1, 2]",
        json.dumps(good[1]),
        json.dumps(good[5]),
    ]
    source = tmp_path / "archive.jsonl"
    source.write_text("\n".join(lines) + "\n")
    summary = _score(source, tmp_path / "scored.jsonl", batch_settings, full_analyzer)
    scored = _lines(tmp_path / "scored.jsonl")
    assert [r["conversation_id"] for r in scored] == [good[i]["conversation_id"] for i in (0, 1, 2, 4, 5)]
    assert [r["source_rows"][0] for r in scored] == [1, 3, 5, 7, 10]
    errors = _lines(tmp_path / "scored.jsonl.errors.jsonl")
    assert [e["row"] for e in errors] == [2, 4, 6, 8, 9]
    reasons = [e["reason"] for e in errors]
    assert "invalid JSON" in reasons[0] and "messages" in reasons[1] and "20000" in reasons[2]
    assert "JSON object" in reasons[3] and "already read at row 3" in reasons[4]
    assert (summary.conversations, summary.errors) == (5, 5)
    # every message of a scored conversation has its analysis, under its own id
    for record, body in zip(scored, [good[i] for i in (0, 1, 2, 4, 5)]):
        assert [m["id"] for m in record["messages"]] == [m["id"] for m in body["messages"]]


def test_batch_analyses_equal_the_per_transcript_api(tmp_path, batch_settings, full_analyzer):
    bodies = list(synthetic_transcripts(8))
    write_rows(iter(bodies), tmp_path / "a.jsonl")
    _score(tmp_path / "a.jsonl", tmp_path / "s.jsonl", batch_settings, full_analyzer)
    transcripts = [Transcript.model_validate(b) for b in bodies]
    single = [full_analyzer.analyze(t).model_dump(mode="json") for t in transcripts]
    # the per-message path parses every turn (it stores redacted text); the batch path only customer turns
    for record, transcript in zip(single, transcripts):
        ids = assign_message_ids([m.id for m in transcript.messages])
        record["messages"] = [
            a.model_dump(mode="json") for a in full_analyzer.analyze_messages(transcript.messages, ids)
        ]
    scored = _lines(tmp_path / "s.jsonl")
    assert_same_records(
        [{k: s[k] for k in ("conversation_id", "messages", "conversation")} for s in scored],
        [{k: s[k] for k in ("conversation_id", "messages", "conversation")} for s in single],
    )
    assert any(m["cues"] for s in scored for m in s["messages"])  # cues still found on the batch path


def test_csv_and_parquet_outputs_hold_the_same_records(tmp_path, batch_settings, full_analyzer):
    write_rows(message_rows(synthetic_transcripts(10)), tmp_path / "m.csv")
    write_rows(message_rows(synthetic_transcripts(10)), tmp_path / "m.parquet")
    _score(tmp_path / "m.csv", tmp_path / "s.jsonl", batch_settings, full_analyzer)
    _score(tmp_path / "m.csv", tmp_path / "s.csv", batch_settings, full_analyzer)
    _score(tmp_path / "m.parquet", tmp_path / "s.parquet", batch_settings, full_analyzer)
    reference = list(read_scored(tmp_path / "s.jsonl"))
    assert len(reference) == 10
    assert list(read_scored(tmp_path / "s.csv")) == reference
    assert len(list((tmp_path / "s.parquet").glob("part-*.parquet"))) > 1
    from_parquet = list(read_scored(tmp_path / "s.parquet"))
    # rows are file lines in CSV (a quoted text may span lines) and 1-based row numbers in Parquet
    spans = [r.pop("source_rows") for r in from_parquet]
    assert spans[0][0] == 1 and all(b[0] == a[1] + 1 for a, b in zip(spans, spans[1:]))
    assert spans[-1][1] == sum(len(r["messages"]) for r in reference)
    for record in reference:
        record.pop("source_rows")
    assert from_parquet == reference


@pytest.mark.parametrize("shape", ["transcripts", "messages"])
def test_every_command_reads_the_archive_fixture_in_every_format(tmp_path, batch_settings, full_analyzer, shape):
    """`convintel score` (then `report`) and the reader of `convintel topics fit` take the
    same archive as .jsonl, .json, .csv and .parquet, and find the same conversations in each."""
    from training.topic_fit import customer_texts

    transcripts = [
        json.loads((ROOT / "fixtures" / "transcripts" / name).read_text())
        for name in ("double_charge.json", "fraud_in_progress.json", "happy_resolution.json")
    ]
    customer = [m["text"] for t in transcripts for m in t["messages"] if m["role"] == "customer"]
    scored: dict[str, list[dict]] = {}
    for fmt in ("jsonl", "json", "csv", "parquet"):
        source = ARCHIVE / f"{shape}.{fmt}"
        summary = _score(source, tmp_path / f"{fmt}.jsonl", batch_settings, full_analyzer)
        assert (summary.conversations, summary.errors) == (3, 0), fmt
        scored[fmt] = [
            {k: v for k, v in r.items() if k != "source_rows"} for r in read_scored(tmp_path / f"{fmt}.jsonl")
        ]
        corpus = customer_texts(source)
        assert corpus.texts == customer and corpus.skipped == 0, fmt
    assert [r["conversation_id"] for r in scored["jsonl"]] == [t["conversation_id"] for t in transcripts]
    for fmt in ("json", "csv", "parquet"):
        assert_same_records(scored[fmt], scored["jsonl"])
    # scored output read back from every format gives the same report figures
    (tmp_path / "scored.json").write_text(json.dumps(_lines(tmp_path / "jsonl.jsonl")))
    _score(ARCHIVE / f"{shape}.jsonl", tmp_path / "scored.csv", batch_settings, full_analyzer)
    _score(ARCHIVE / f"{shape}.jsonl", tmp_path / "scored.parquet", batch_settings, full_analyzer)
    figures = [build_figures(read_scored(tmp_path / name)) for name in ("scored.json", "scored.csv", "scored.parquet")]
    assert figures[0]["conversations"] == 3 and figures[1] == figures[0] and figures[2] == figures[0]


def test_json_is_read_but_not_written(tmp_path, batch_settings, full_analyzer):
    with pytest.raises(ScoreJobError, match="scored output is .jsonl, .csv or .parquet"):
        _score(ARCHIVE / "transcripts.json", tmp_path / "out.json", batch_settings, full_analyzer)


@pytest.mark.parametrize("output", ["out.txt", "out"])
def test_an_output_of_another_type_is_refused_naming_the_types(tmp_path, batch_settings, full_analyzer, output):
    with pytest.raises(ScoreJobError, match=r"scored output is .jsonl, .csv or .parquet, not (\.txt|\(no suffix\))"):
        _score(ARCHIVE / "transcripts.json", tmp_path / output, batch_settings, full_analyzer)


def test_a_missing_input_is_refused_before_anything_is_written(tmp_path, batch_settings, full_analyzer):
    with pytest.raises(ScoreJobError, match="nope.jsonl does not exist"):
        _score(tmp_path / "nope.jsonl", tmp_path / "s.jsonl", batch_settings, full_analyzer)
    assert list(tmp_path.iterdir()) == []


def test_output_and_errors_folders_are_created(tmp_path, batch_settings, full_analyzer):
    output, errors = tmp_path / "new" / "sub" / "s.jsonl", tmp_path / "errs" / "bad.jsonl"
    summary = _score(ARCHIVE / "transcripts.jsonl", output, batch_settings, full_analyzer, errors=errors)
    assert summary.conversations == len(_lines(output)) > 0 and errors.is_file()


def test_existing_output_needs_resume_or_overwrite(tmp_path, batch_settings, full_analyzer):
    write_rows(synthetic_transcripts(2), tmp_path / "a.jsonl")
    _score(tmp_path / "a.jsonl", tmp_path / "s.jsonl", batch_settings, full_analyzer)
    with pytest.raises(ScoreJobError, match="--resume"):
        _score(tmp_path / "a.jsonl", tmp_path / "s.jsonl", batch_settings, full_analyzer)
    again = _score(tmp_path / "a.jsonl", tmp_path / "s.jsonl", batch_settings, full_analyzer, resume=True)
    assert again.already_complete and len(_lines(tmp_path / "s.jsonl")) == 2


class _CrashAfter:
    """An engine that dies after `n` chunks, like a process killed between commits."""

    def __init__(self, analyzer: Analyzer, n: int) -> None:
        self.inner, self.n, self.name = LocalEngine(analyzer), n, "crashing"

    def score(self, chunks):
        for count, scored in enumerate(self.inner.score(chunks)):
            if count == self.n:
                raise KeyboardInterrupt
            yield scored

    def close(self):
        pass


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_resume_cuts_uncommitted_writes(tmp_path, batch_settings, full_analyzer, suffix):
    write_rows(synthetic_transcripts(16), tmp_path / "a.jsonl")
    output = tmp_path / f"s{suffix}"
    with pytest.raises(KeyboardInterrupt):
        run_score(
            ScoreJob(input=tmp_path / "a.jsonl", output=output, progress=False),
            batch_settings,
            lambda: _CrashAfter(full_analyzer, 2),
        )
    committed = Checkpoint.load(checkpoint_path(output))
    assert 0 < committed.conversations < 16 and not committed.complete
    # half-written data after the last commit, as a crash mid-write leaves it
    if suffix == ".parquet":
        (output / "part-000099.parquet").write_bytes(b"PAR1 torn")
        (output / "part-000002.parquet.tmp").write_bytes(b"PAR1 torn")
    else:
        with output.open("ab") as handle:
            handle.write(b'{"conversation_id": "torn", "sour')
    with (tmp_path / f"s{suffix}.errors.jsonl").open("ab") as handle:
        handle.write(b'{"row": 99')
    summary = _score(tmp_path / "a.jsonl", output, batch_settings, full_analyzer, resume=True)
    assert summary.resumed_at_row == committed.rows
    ids = [r["conversation_id"] for r in read_scored(output)]
    assert ids == [f"conv-{i:07d}" for i in range(16)]
    assert (tmp_path / f"s{suffix}.errors.jsonl").read_text() == ""


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_resume_after_sigkill_gives_exactly_one_row_per_conversation(tmp_path, batch_settings, full_analyzer, workers):
    count = 40
    write_rows(message_rows(synthetic_transcripts(count)), tmp_path / "archive.csv")
    output = tmp_path / "scored.jsonl"
    env = {**os.environ, "CONVINTEL_BATCH_CHUNK_MESSAGES": "12"}
    command = [
        sys.executable,
        "-m",
        "service.cli",
        "score",
        str(tmp_path / "archive.csv"),
        "-o",
        str(output),
        "--no-progress",
        "--workers",
        str(workers),
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    checkpoint_file = checkpoint_path(output)
    deadline = time.monotonic() + 600
    try:
        # Kill it once a few chunks are committed, while it is still scoring.
        while time.monotonic() < deadline and process.poll() is None:
            if checkpoint_file.exists():
                try:
                    state = json.loads(checkpoint_file.read_text())
                except json.JSONDecodeError:
                    state = {}
                if state.get("chunks", 0) >= 3:
                    break
            time.sleep(0.05)
        assert process.poll() is None, process.stderr.read().decode()
        children = psutil.Process(process.pid).children(recursive=True)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
        process.stderr.close()
    # Worker processes do not outlive a killed driver (they would hold their models' memory).
    assert len(children) >= workers - 1
    _, alive = psutil.wait_procs(children, timeout=15)
    assert not alive, [p.cmdline() for p in alive]
    killed_at = Checkpoint.load(checkpoint_file)
    assert not killed_at.complete and 0 < killed_at.conversations < count

    resumed = subprocess.run([*command, "--resume"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed after input row {killed_at.rows}" in resumed.stdout
    records = _lines(output)
    assert [r["conversation_id"] for r in records] == [f"conv-{i:07d}" for i in range(count)]
    # and the same records as an uninterrupted run
    clean = tmp_path / "clean.jsonl"
    _score(
        tmp_path / "archive.csv", clean, batch_settings.model_copy(update={"batch_chunk_messages": 12}), full_analyzer
    )
    assert_same_records(records, _lines(clean))


def test_score_command(tmp_path):
    write_rows(synthetic_transcripts(3), tmp_path / "a.jsonl")
    result = runner.invoke(app, ["score", str(tmp_path / "a.jsonl"), "-o", str(tmp_path / "s.csv"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "scored 3 conversations" in result.stdout and "0 bad rows" in result.stdout
    again = runner.invoke(app, ["score", str(tmp_path / "a.jsonl"), "-o", str(tmp_path / "s.csv"), "--no-progress"])
    assert again.exit_code == 2 and "--resume" in again.output
    bad = runner.invoke(app, ["score", str(tmp_path / "a.txt"), "-o", str(tmp_path / "x.jsonl")])
    assert bad.exit_code == 2 and "unknown format" in bad.output


# --- report -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scored_archive(tmp_path_factory, full_analyzer) -> Path:
    folder = tmp_path_factory.mktemp("scored")
    write_rows(synthetic_transcripts(30), folder / "a.jsonl")
    _score(folder / "a.jsonl", folder / "s.jsonl", Settings(_env_file=None), full_analyzer)
    return folder / "s.jsonl"


def test_report_renders_with_charts_and_kpis(tmp_path, scored_archive):
    result = runner.invoke(
        app,
        [
            "report",
            str(scored_archive),
            "-o",
            str(tmp_path / "r.html"),
            "--json",
            str(tmp_path / "r.json"),
            "--period",
            "week",
        ],
    )
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r.html").read_text()
    figures = json.loads((tmp_path / "r.json").read_text())
    records = _lines(scored_archive)
    # self-contained: inline SVG charts, no scripts, nothing fetched
    assert page.count("<svg") >= 4 and "<script" not in page and "src=" not in page and "<link" not in page
    for title in (
        "Mean customer sentiment",
        "Share of conversations escalated",
        "Customer messages showing each emotion",
        "Conversations by highest urgency",
    ):
        assert f"<title>{title}" in page
    assert "<polyline" in page and "<rect" in page
    assert "carry no topics" in page and figures["topics"] is None
    escalated = sum(r["conversation"]["escalation"]["level"] in ("escalate", "urgent") for r in records)
    assert figures["kpis"]["escalation_rate"] == round(escalated / len(records), 4)
    negative = sum((r["conversation"]["sentiment"] or {}).get("label") == "negative" for r in records)
    assert figures["kpis"]["negative_share"] == round(negative / len(records), 4)
    assert figures["kpis"]["first_response_seconds"]["n"] > 0
    assert sum(figures["escalation_over_time"]["conversations"]) + figures["undated_conversations"] == len(records)
    assert set(figures["sentiment_over_time"]["by_channel"]) <= {r["channel"] for r in records}
    issues = figures["recurring_issues"]
    assert issues and issues == sorted(issues, key=lambda i: -i["conversations"])
    assert any(e["quote"] for i in issues for e in i["examples"]) and "<q>" in page


def test_report_shows_topics_when_rows_carry_them(tmp_path, scored_archive):
    records = _lines(scored_archive)
    for index, record in enumerate(records):
        label = "billing" if index % 3 else "outage"
        record["conversation"]["topics"] = [{"id": index % 3 and 1 or 2, "label": label, "confidence": 0.8}]
    figures = build_figures(records, period="month")
    topics = figures["topics"]
    assert topics["periods"] == figures["escalation_over_time"]["periods"]
    dated = [r for r in records if r["started_at"]]
    assert sum(topics["volumes"]["billing"]) == sum(1 for i, r in enumerate(records) if i % 3 and r["started_at"])
    assert sum(sum(v) for v in topics["volumes"].values()) == len(dated)
    assert {t["topic"] for t in topics["trends"]} == {"billing", "outage"}
    page = render_html(figures, "Trends")
    assert "Conversations per topic" in page and "billing" in page
    assert any(i["kind"] == "topic" for i in figures["recurring_issues"])


def test_report_json_to_stdout_and_bad_input(tmp_path, scored_archive):
    result = runner.invoke(app, ["report", str(scored_archive), "--json", "-"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["conversations"] == 30
    (tmp_path / "x.jsonl").write_text('{"hello": 1}\n')
    bad = runner.invoke(app, ["report", str(tmp_path / "x.jsonl"), "-o", str(tmp_path / "r.html")])
    assert bad.exit_code == 2 and "not a scored archive" in bad.output


# --- worker processes and Ray ----------------------------------------------------------


def test_worker_processes_agree_with_the_local_engine_row_for_row(tmp_path, batch_settings, full_analyzer):
    from service.batch.engines import WorkerPoolEngine

    rows = list(message_rows(synthetic_transcripts(24)))
    rows.insert(8, {**rows[7], "message_id": "bad-1", "role": "wizard"})  # a bad row inside a conversation
    write_rows(rows, tmp_path / "archive.jsonl")
    summary = run_score(
        ScoreJob(input=tmp_path / "archive.jsonl", output=tmp_path / "workers.jsonl", progress=False),
        batch_settings,
        lambda: WorkerPoolEngine(batch_settings, workers=2),
    )
    _score(tmp_path / "archive.jsonl", tmp_path / "local.jsonl", batch_settings, full_analyzer)
    from_workers, local = _lines(tmp_path / "workers.jsonl"), _lines(tmp_path / "local.jsonl")
    assert summary.conversations == len(local) == 24 and summary.errors == 1
    assert Checkpoint.load(checkpoint_path(tmp_path / "workers.jsonl")).chunks > 4  # more chunks than in flight
    assert_same_records(from_workers, local)
    assert (tmp_path / "workers.jsonl.errors.jsonl").read_text() == (tmp_path / "local.jsonl.errors.jsonl").read_text()


def test_worker_engine_refuses_a_bad_bundle_before_starting_workers(tmp_path, batch_settings):
    from nlp.bundle import BundleError
    from service.batch.engines import WorkerPoolEngine

    with pytest.raises(BundleError, match="nothing-here does not exist"):
        WorkerPoolEngine(batch_settings.model_copy(update={"model": str(tmp_path / "nothing-here")}), workers=2)


def test_a_worker_ends_when_its_driver_is_gone():
    # A parent pid that is not this child's parent: the watch sees "parent gone" and exits 1.
    code = (
        "from service.batch.engines import _exit_with_parent; import time; _exit_with_parent(-1, 0.05); time.sleep(60)"
    )
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=60)
    assert result.returncode == 1 and time.monotonic() - started < 30
