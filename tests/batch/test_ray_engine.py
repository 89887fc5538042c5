"""`convintel score --engine ray`: one streaming dataset per run on a 2-CPU local Ray, read
on the cluster (JSONL, Parquet) or fed by the driver (CSV), written by the driver or by Ray
write tasks (a Parquet folder), and resumed exactly once. Ray starts once for the module;
every test is slow (Ray and two model-loading actors on a small machine)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from nlp.analyzer import Analyzer
from service.batch.checkpoint import PARTS_WRITER, Checkpoint, checkpoint_path
from service.batch.engines import LocalEngine
from service.batch.parts import committed_parts
from service.batch.runner import ScoreJob, run_score
from service.batch.scoring import read_scored
from service.batch.synthetic import message_rows, synthetic_transcripts, write_rows
from service.cli import app
from service.settings import Settings, get_settings
from tests.batch.test_batch import assert_same_records
from tests.conftest import ROOT

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow
CPUS = 2


@pytest.fixture(scope="module")
def load_log(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ray") / "loads.txt"


@pytest.fixture(scope="module", autouse=True)
def local_ray(load_log):
    """One local Ray for the module; its workers log every analyzer load (`ray_load_counter`)."""
    ray.init(
        num_cpus=CPUS,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        runtime_env={
            "worker_process_setup_hook": "tests.batch.ray_load_counter.count_loads",
            # Workers import the hook from this checkout: the editable install puts nlp/ and
            # service/ on their path, but not tests/.
            "env_vars": {
                "CONVINTEL_TEST_LOAD_LOG": str(load_log),
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            },
        },
    )
    yield
    ray.shutdown()


@pytest.fixture
def settings() -> Settings:
    return Settings(_env_file=None, batch_chunk_messages=24, models_dir=ROOT / "models", ray_num_cpus=CPUS)


def _local(source: Path, output: Path, settings: Settings, analyzer: Analyzer) -> None:
    run_score(ScoreJob(input=source, output=output, progress=False), settings, lambda: LocalEngine(analyzer))


def _ray(source: Path, output: Path, settings: Settings, **job):
    from service.batch.engines import RayEngine

    return run_score(
        ScoreJob(input=source, output=output, progress=False, **job), settings, lambda: RayEngine(settings)
    )


def _archive_with_bad_lines(path: Path, count: int) -> list[dict]:
    """Short transcript rows (3 messages: quick to score) with the lines a JSONL reader must
    not get wrong: invalid JSON, a blank line, a repeated conversation, and a text with
    U+2028 (a line break to str.splitlines, not to JSONL)."""
    bodies = [{**b, "messages": b["messages"][:3]} for b in synthetic_transcripts(count)]
    bodies[1]["messages"][0]["text"] += " \u2028 and \u0085 too"
    lines = [json.dumps(b, ensure_ascii=False) for b in bodies]
    lines[4:4] = ["{not json", "", json.dumps(bodies[2])]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return bodies


def test_cli_over_100_chunks_loads_each_actor_once_and_matches_local(tmp_path, monkeypatch, full_analyzer, load_log):
    """Read on the cluster (JSONL), one dataset, two actors: each loads the models once."""
    _archive_with_bad_lines(tmp_path / "archive.jsonl", 100)
    monkeypatch.setenv("CONVINTEL_BATCH_CHUNK_MESSAGES", "1")  # one conversation per chunk
    monkeypatch.setenv("CONVINTEL_MODELS_DIR", str(ROOT / "models"))
    get_settings.cache_clear()
    load_log.write_text("")
    try:
        result = CliRunner().invoke(
            app,
            [
                "score",
                str(tmp_path / "archive.jsonl"),
                "-o",
                str(tmp_path / "ray.jsonl"),
                "--engine",
                "ray",
                "--no-progress",
            ],
        )
        assert result.exit_code == 0, result.output
        settings = get_settings()
    finally:
        get_settings.cache_clear()
    assert Checkpoint.load(checkpoint_path(tmp_path / "ray.jsonl")).chunks >= 100
    loads = Counter(load_log.read_text().split())
    assert 1 <= len(loads) <= CPUS and set(loads.values()) == {1}, loads  # once per actor, per run
    _local(tmp_path / "archive.jsonl", tmp_path / "local.jsonl", settings, full_analyzer)
    ray_records, local = list(read_scored(tmp_path / "ray.jsonl")), list(read_scored(tmp_path / "local.jsonl"))
    assert len(local) == 100
    assert_same_records(ray_records, local)
    assert (tmp_path / "ray.jsonl.errors.jsonl").read_text() == (tmp_path / "local.jsonl.errors.jsonl").read_text()
    assert len((tmp_path / "local.jsonl.errors.jsonl").read_text().splitlines()) == 2


def test_parquet_read_on_the_cluster_into_a_folder_written_by_ray(tmp_path, settings, full_analyzer):
    rows = list(message_rows(synthetic_transcripts(20)))
    rows.insert(8, {**rows[7], "message_id": "bad-1", "role": "wizard"})  # a bad row inside a conversation
    # A folder of three parts (read by several read tasks), with conversations across parts.
    write_rows(iter(rows), tmp_path / "whole.parquet")
    table = pq.read_table(tmp_path / "whole.parquet")
    (tmp_path / "archive.parquet").mkdir()
    for number, start in enumerate(range(0, table.num_rows, 37)):
        pq.write_table(table.slice(start, 37), tmp_path / "archive.parquet" / f"{number:02d}.parquet")
    summary = _ray(tmp_path / "archive.parquet", tmp_path / "ray.parquet", settings)
    _local(tmp_path / "archive.parquet", tmp_path / "local.parquet", settings, full_analyzer)
    checkpoint = Checkpoint.load(checkpoint_path(tmp_path / "ray.parquet"))
    assert checkpoint.writer == PARTS_WRITER and checkpoint.complete
    parts = committed_parts(tmp_path / "ray.parquet")
    assert len(parts) == checkpoint.chunks > 3 and [p.index for p in parts] == list(range(len(parts)))
    assert (summary.conversations, summary.errors) == (20, 1)
    assert_same_records(list(read_scored(tmp_path / "ray.parquet")), list(read_scored(tmp_path / "local.parquet")))
    assert (tmp_path / "ray.parquet.errors.jsonl").read_text() == (tmp_path / "local.parquet.errors.jsonl").read_text()


def test_csv_is_read_by_the_driver_and_streamed_to_one_dataset(tmp_path, settings, full_analyzer):
    write_rows(message_rows(synthetic_transcripts(16)), tmp_path / "archive.csv")
    settings = settings.model_copy(update={"ray_window_chunks": 2})  # the driver's queue is smaller than the run
    summary = _ray(tmp_path / "archive.csv", tmp_path / "ray.jsonl", settings)
    _local(tmp_path / "archive.csv", tmp_path / "local.jsonl", settings, full_analyzer)
    assert summary.conversations == 16
    assert Checkpoint.load(checkpoint_path(tmp_path / "ray.jsonl")).chunks > 2
    assert_same_records(list(read_scored(tmp_path / "ray.jsonl")), list(read_scored(tmp_path / "local.jsonl")))


class _CrashAfter:
    """The Ray engine, killed (as far as the run can tell) after `n` committed chunks."""

    def __init__(self, settings: Settings, n: int) -> None:
        from service.batch.engines import RayEngine

        self.inner, self.n, self.name = RayEngine(settings), n, "ray"

    def reads_on_cluster(self, source):
        return self.inner.reads_on_cluster(source)

    def score_source(self, source):
        for count, scored in enumerate(self.inner.score_source(source)):
            if count == self.n:
                raise KeyboardInterrupt
            yield scored

    def score(self, chunks):
        raise AssertionError("the run hands the Ray engine its whole input")

    def close(self):
        self.inner.close()


def test_resume_with_the_driver_writing_is_exactly_once(tmp_path, settings):
    _archive_with_bad_lines(tmp_path / "archive.jsonl", 16)
    settings = settings.model_copy(update={"batch_chunk_messages": 6})  # 2 conversations a chunk
    output = tmp_path / "ray.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run_score(
            ScoreJob(input=tmp_path / "archive.jsonl", output=output, progress=False),
            settings,
            lambda: _CrashAfter(settings, 2),
        )
    committed = Checkpoint.load(checkpoint_path(output))
    assert 0 < committed.conversations < 16 and not committed.complete
    with output.open("ab") as handle:  # torn write after the last commit
        handle.write(b'{"conversation_id": "torn", "sour')
    summary = _ray(tmp_path / "archive.jsonl", output, settings, resume=True)
    assert summary.resumed_at_row == committed.rows
    assert [r["conversation_id"] for r in read_scored(output)] == [f"conv-{i:07d}" for i in range(16)]
    errors = [json.loads(line)["row"] for line in (tmp_path / "ray.jsonl.errors.jsonl").read_text().splitlines()]
    assert errors == [5, 7]  # the invalid line and the repeated conversation, once each


def test_resume_after_sigkill_with_ray_writing_parts_is_exactly_once(tmp_path):
    count = 30
    write_rows(message_rows(synthetic_transcripts(count)), tmp_path / "archive.parquet")
    output = tmp_path / "scored.parquet"
    env = {
        **os.environ,
        "CONVINTEL_BATCH_CHUNK_MESSAGES": "6",
        "CONVINTEL_MODELS_DIR": str(ROOT / "models"),
        "CONVINTEL_RAY_NUM_CPUS": str(CPUS),
    }
    env.pop("RAY_ADDRESS", None)
    command = [sys.executable, "-m", "service.cli", "score", str(tmp_path / "archive.parquet"), "-o", str(output)]
    command += ["--engine", "ray", "--no-progress"]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + 600
    try:
        # Kill the whole run (driver and its local Ray) once some parts are written.
        while time.monotonic() < deadline and process.poll() is None:
            if output.is_dir() and len(list(output.glob("part-*.parquet"))) >= 3:
                break
            time.sleep(0.05)
        assert process.poll() is None, process.stderr.read().decode()
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    # Ray's workers are not in the driver's process group and may commit a part after the
    # kill: count the parts once that count has held for 2 s.
    written, stable_since = len(committed_parts(output)), time.monotonic()
    while time.monotonic() - stable_since < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
        now_written = len(committed_parts(output))
        if now_written != written:
            written, stable_since = now_written, time.monotonic()
    assert 0 < written and not Checkpoint.load(checkpoint_path(output)).complete
    (output / f"part-{written + 5:06d}.parquet").write_bytes(b"PAR1 torn")  # what a crash mid-write leaves
    (output / f"part-{written:06d}.parquet.tmp").write_bytes(b"PAR1 torn")
    resumed = subprocess.run(command + ["--resume"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed after input row {committed_parts(output)[written - 1].last_row}" in resumed.stdout
    ids = [r["conversation_id"] for r in read_scored(output)]
    assert ids == [f"conv-{i:07d}" for i in range(count)]
    assert not list(output.glob("*.tmp"))
