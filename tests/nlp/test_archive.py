"""The one archive reader (nlp/archive.py): the same rows from every file type, bad rows
reported without stopping, a JSON array streamed in blocks."""

from __future__ import annotations

import json

import pytest

import nlp.archive
from nlp.archive import ArchiveError, FileFormat, RowReader, detect_format
from tests.conftest import FIXTURES

ARCHIVE = FIXTURES / "archive"
FORMATS = ("jsonl", "json", "csv", "parquet")
TRANSCRIPTS = [
    json.loads((FIXTURES / "transcripts" / name).read_text())
    for name in ("double_charge.json", "fraud_in_progress.json", "happy_resolution.json")
]


def rows(path, **kwargs):
    return [r.fields for r in RowReader(path, **kwargs)]


def without_nulls(value):
    """Parquet gives every struct field, null where absent; the other formats leave it out."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_fixture_reads_as_the_same_transcripts_in_every_format(fmt):
    assert [without_nulls(r) for r in rows(ARCHIVE / f"transcripts.{fmt}")] == TRANSCRIPTS


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_fixture_reads_as_the_same_message_rows_in_every_format(fmt):
    expected = [
        {
            "conversation_id": t["conversation_id"],
            "role": m["role"],
            "text": m["text"],
            "channel": t["channel"],
            **({"message_id": m["id"]} if "id" in m else {}),
            **({"timestamp": m["timestamp"]} if "timestamp" in m else {}),
            **{k: t[k] for k in ("customer_id", "language") if k in t},
        }
        for t in TRANSCRIPTS
        for m in t["messages"]
    ]
    assert rows(ARCHIVE / f"messages.{fmt}") == expected


def test_row_numbers_and_places():
    assert [r.number for r in RowReader(ARCHIVE / "transcripts.jsonl")] == [1, 2, 3]
    csv_reader = RowReader(ARCHIVE / "messages.csv")
    assert [r.number for r in csv_reader][:2] == [2, 3]  # lines: the header is line 1
    assert csv_reader.where(2).endswith("messages.csv:2")
    assert [r.number for r in RowReader(ARCHIVE / "transcripts.json")] == [1, 2, 3]
    assert RowReader(ARCHIVE / "transcripts.parquet").where(2).endswith("transcripts.parquet row 2")


def test_a_json_array_streams_across_block_boundaries(tmp_path, monkeypatch):
    values = [
        {"n": 12345678901234567890, "text": "naïve café ✓ " * 3, "ok": True, "x": None, "f": -1.5e-3},
        *TRANSCRIPTS,
        {"empty": {}},
    ]
    path = tmp_path / "a.json"
    path.write_text(json.dumps(values, ensure_ascii=False, indent=1), encoding="utf-8")
    for block in (1, 2, 3, 7, 64, 1 << 20):  # values, numbers and multi-byte characters cut anywhere
        monkeypatch.setattr(nlp.archive, "_READ_BYTES", block)
        reader = RowReader(path)
        assert rows(path) == values, block
        assert list(reader) and reader.position == reader.total


@pytest.mark.parametrize(
    "text, expected",
    [
        ('[{"a": 1}, {"a": 2}]', [(1, {"a": 1}), (2, {"a": 2})]),
        ('{"results": []}', [(1, {"results": []})]),  # one object: one row
        ("[]", []),
        ("", []),
        ('[{"a": 1}, [1, 2], {"a": 3}]', [(1, {"a": 1}), (2, "JSON object"), (3, {"a": 3})]),
        ('[{"a": 1}, {"a": oops}, {"a": 3}]', [(1, {"a": 1}), (2, "rest of the file")]),
        ('[{"a": 1} {"a": 2}]', [(1, {"a": 1}), (2, "expected ','")]),
        ('[{"a": 1},', [(1, {"a": 1}), (2, "not closed")]),
        ('[{"a": 1}] trailing', [(1, {"a": 1}), (2, "after the closing")]),
        ('{"a": 1} {"a": 2}', [(1, {"a": 1}), (2, "after the first value")]),
    ],
)
def test_json_rows_and_errors(tmp_path, text, expected):
    path = tmp_path / "a.json"
    path.write_text(text)
    got = [(r.number, r.fields if r.fields is not None else r.error) for r in RowReader(path)]
    assert [(n, v) for n, v in got if isinstance(v, dict)] == [(n, v) for n, v in expected if isinstance(v, dict)]
    for (number, want), (got_number, got_value) in zip(expected, got):
        assert number == got_number and (want == got_value if isinstance(want, dict) else want in got_value)
    assert len(got) == len(expected)


def test_jsonl_bad_lines_are_rows_with_reasons_and_a_bom_is_ignored(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n\n{broken\n[1]\n{"a": "\xff"}\n')
    got = list(RowReader(path))
    assert [r.number for r in got] == [1, 3, 4, 5]
    assert got[0].fields == {"a": 1} and "invalid JSON" in got[1].error and "JSON object" in got[2].error
    assert got[3].fields == {"a": "\ufffd"}  # bad UTF-8 is replaced, not fatal


def test_nested_fields_given_as_json_text_are_decoded(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text(
        'messages,metadata,note\n"[{""role"": ""customer"", ""text"": ""hi""}]","{""k"": 1}","[1]"\n"not json",,\n'
    )
    first, second = rows(path)
    assert first == {"messages": [{"role": "customer", "text": "hi"}], "metadata": {"k": 1}, "note": "[1]"}
    assert second == {"messages": "not json"}  # left as text for the caller's validation; empty cells left out


def test_files_that_cannot_be_read_at_all(tmp_path):
    with pytest.raises(ArchiveError, match="unsupported file type '.txt' \\(unknown format\\)"):
        detect_format(tmp_path / "notes.txt")
    with pytest.raises(ArchiveError, match="does not exist"):
        RowReader(tmp_path / "none.jsonl")
    (tmp_path / "folder.jsonl").mkdir()
    with pytest.raises(ArchiveError, match="folder"):
        RowReader(tmp_path / "folder.jsonl")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArchiveError, match="no .parquet files"):
        RowReader(tmp_path / "empty", FileFormat.parquet)
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(ArchiveError, match="not a readable Parquet file"):
        RowReader(tmp_path / "bad.parquet")
    assert {
        detect_format(tmp_path / f"a.{s}") for s in ("jsonl", "ndjson", "json", "csv", "parquet", "pq", "JSON")
    } == set(FileFormat)


def test_an_unclosed_quote_in_the_csv_header_refuses_the_file_and_in_a_row_is_that_rows_error(tmp_path):
    # Without csv's strict mode the quote swallows the rest of the file: 0 rows, no error.
    (tmp_path / "header.csv").write_text('"conversation_id,role,text\nc1,customer,hello\n')
    with pytest.raises(ArchiveError, match="unreadable CSV header"):
        list(RowReader(tmp_path / "header.csv"))
    (tmp_path / "row.csv").write_text('conversation_id,role,text\nc1,customer,"hello\n')
    assert [(r.number, r.error is not None) for r in RowReader(tmp_path / "row.csv")] == [(2, True)]
