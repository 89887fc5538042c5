"""The Ray engine's stages without a cluster (fast): the chunk builder gives the driver's
chunks however its input is split into batches, and a Ray-written folder's committed parts
are the unbroken run from part 0."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pytest

from nlp.archive import RowReader
from service.batch.checkpoint import Checkpoint, checkpoint_path
from service.batch.parts import committed_parts, cut_back, read_part_info, write_chunk_part
from service.batch.records import RowError, Shape
from service.batch.runner import ScoreJob, run_score
from service.batch.source import ArchiveSource, ChunkPlan, chunks_from_rows
from service.batch.synthetic import message_rows, synthetic_transcripts, write_rows
from service.settings import Settings

pytest.importorskip("ray")


def scored_record() -> dict:
    """A scored conversation record with no messages, as a chunk part holds it."""
    record = {"conversation_id": "c", "source_rows": [1, 1], "channel": "chat", "model": {"name": "m", "version": "1"}}
    record |= {"messages": [], "warnings": []}
    record["conversation"] = {
        "messages": 0,
        "customer_messages": 0,
        "sentiment_trend": {"label": "flat"},
        "escalation": {"level": "none", "recommended": False},
    }
    return record


@pytest.fixture
def settings() -> Settings:
    return Settings(_env_file=None, batch_chunk_messages=2)


def _signature(chunks) -> list[tuple]:
    return [
        (c.index, c.last_row, [x.transcript.conversation_id for x in c.conversations], [e.row for e in c.errors])
        for c in chunks
    ]


@pytest.mark.parametrize("block_lines", [1, 5, 1000])
def test_chunk_builder_matches_the_driver_whatever_the_batches(tmp_path, settings, block_lines):
    from service.batch.ray_pipeline import ChunkBuilder

    rows = list(message_rows(synthetic_transcripts(6)))
    rows.insert(9, {**rows[8], "role": "wizard"})
    write_rows(iter(rows), tmp_path / "m.jsonl")
    with (tmp_path / "m.jsonl").open("a") as handle:
        handle.write("{torn\n\n")
    plan = ChunkPlan(Shape.auto, start_row=4, start_index=3)  # as a resumed run
    expected = _signature(chunks_from_rows(iter(RowReader(tmp_path / "m.jsonl")), settings, plan))
    builder = ChunkBuilder(settings.model_dump_json(), plan.to_json(), "jsonl")
    lines = (tmp_path / "m.jsonl").read_text().splitlines(keepends=True)
    out = []
    for start in range(0, len(lines), block_lines):
        numbers = list(range(start + 1, min(start + block_lines, len(lines)) + 1))
        batch = pa.table({"line": numbers, "text": lines[start : start + block_lines], "end": [False] * len(numbers)})
        out += builder(batch).to_pylist()
    out += builder(pa.table({"line": [0], "text": [""], "end": [True]})).to_pylist()
    got = [
        (
            r["index"],
            r["last_row"],
            [c["transcript"]["conversation_id"] for c in json.loads(r["conversations"])],
            [e["row"] for e in json.loads(r["errors"])],
        )
        for r in out
    ]
    assert got == expected and len(expected) > 2 and expected[0][0] == 3


def test_the_committed_parts_are_the_unbroken_run_from_part_0(tmp_path):
    record = scored_record()
    for index in (0, 1, 3):
        write_chunk_part(tmp_path, index, 10 * (index + 1), [record] * index, [RowError(index + 1, "bad")])
    (tmp_path / "part-000002.parquet").write_bytes(b"PAR1 torn")  # what a crash mid-write leaves
    (tmp_path / "part-000004.parquet.tmp").write_bytes(b"PAR1")
    assert read_part_info(tmp_path / "part-000002.parquet") is None
    assert [(p.index, p.last_row, p.conversations) for p in committed_parts(tmp_path)] == [(0, 10, 0), (1, 20, 1)]
    committed = cut_back(tmp_path)
    assert [p.errors for p in committed] == [[{"row": 1, "conversation_id": None, "reason": "bad"}]] + [
        [{"row": 2, "conversation_id": None, "reason": "bad"}]
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part-000000.parquet", "part-000001.parquet"]


def test_writers_of_one_chunk_at_once_never_share_a_temporary_and_the_part_stays_whole(tmp_path):
    # A worker of a killed run may still write a chunk while the resumed run writes it too.
    def write_repeatedly(conversations: int) -> None:
        for _ in range(10):
            write_chunk_part(tmp_path, 0, 10, [scored_record()] * conversations, [])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write_repeatedly, [1, 2, 3, 4]))  # re-raises a writer's error
    assert [p.name for p in tmp_path.iterdir()] == ["part-000000.parquet"]
    assert [(p.index, p.last_row) for p in committed_parts(tmp_path)] == [(0, 10)]


class _PartsWriterBesideAKilledOne:
    """A parts engine that writes one empty part per chunk, while a write task of a killed
    earlier run leaves its temporary behind (the folder is never renamed into)."""

    name = "parts"

    def writes_parts(self) -> bool:
        return True

    def write_parts(self, source: ArchiveSource, folder) -> None:
        for chunk in source.chunks():
            write_chunk_part(folder, chunk.index, chunk.last_row, [], chunk.errors)
            (folder / f"part-{chunk.index:06d}.parquet.killed-writer.tmp").write_bytes(b"PAR1 half")

    def score(self, chunks):
        raise AssertionError("a parts engine writes the parts itself")

    def close(self) -> None:
        pass


def test_a_parts_run_ends_with_no_temporary_of_a_killed_writer_left(tmp_path, settings):
    write_rows(message_rows(synthetic_transcripts(4)), tmp_path / "archive.jsonl")
    output = tmp_path / "scored.parquet"
    job = ScoreJob(input=tmp_path / "archive.jsonl", output=output, progress=False)
    summary = run_score(job, settings, _PartsWriterBesideAKilledOne)
    parts = committed_parts(output)
    assert len(parts) > 1 and summary.rows == parts[-1].last_row
    assert sorted(p.name for p in output.iterdir()) == [f"part-{i:06d}.parquet" for i in range(len(parts))]
    assert Checkpoint.load(checkpoint_path(output)).complete
