"""The urgency pool: references resolved to texts by path, final labels, held-out rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.agreement import Label
from training.datasets import Interaction, heldout_split
from training.urgency_pool import (
    missing_pool_sources,
    pool_interactions,
    resolve_dialogues,
    resolve_texts,
    with_final_urgency,
)


def fake_data_root(root: Path) -> Path:
    """One row of each public set the pool reads, in each set's own layout."""
    (root / "xci").mkdir(parents=True)
    (root / "xci" / "train.csv").write_text("id,tweet,label\n7,@bank my card was used abroad just now,1\n")
    (root / "banking77").mkdir()
    (root / "banking77" / "train.csv").write_text("text,category\nhow do I top up?,top_up\nI lost my card,lost\n")
    (root / "stc3").mkdir()
    dialogue = {
        "id": "d1",
        "turns": [
            {"sender": "customer", "utterances": ["No power", "since noon."]},
            {"sender": "helpdesk", "utterances": ["Sorry!"]},
        ],
    }
    (root / "stc3" / "train.jsonl").write_text(json.dumps(dialogue) + "\n")
    (root / "tweeteval" / "sentiment").mkdir(parents=True)
    (root / "tweeteval" / "sentiment" / "train_text.txt").write_text("first tweet\nsecond tweet\n")
    (root / "meld").mkdir()
    (root / "meld" / "train_sent_emo.csv").write_text("Sr No.,Utterance\n1,Hello there\n")
    return root


def test_references_resolve_to_the_sets_texts(tmp_path: Path):
    root = fake_data_root(tmp_path / "data")
    assert missing_pool_sources(root) == []
    refs = ["xci:train:7", "banking77:train:1", "stc3:train:d1:0", "tweeteval:train:1", "meld:train:1"]
    assert resolve_texts(refs, root) == {
        "xci:train:7": "@bank my card was used abroad just now",
        "banking77:train:1": "I lost my card",
        "stc3:train:d1:0": "No power since noon.",
        "tweeteval:train:1": "second tweet",
        "meld:train:1": "Hello there",
    }
    with pytest.raises(KeyError, match="1 references not found"):
        resolve_texts(["xci:train:8"], root)
    assert missing_pool_sources(tmp_path / "elsewhere")


def test_whole_dialogue_references_resolve_to_their_turns(tmp_path: Path):
    root = fake_data_root(tmp_path / "data")
    assert resolve_dialogues(["stc3:train:d1"], root) == {
        "stc3:train:d1": [("customer", "No power since noon."), ("helpdesk", "Sorry!")]
    }
    with pytest.raises(KeyError, match="1 references not found"):
        resolve_dialogues(["stc3:train:d2"], root)


def test_the_pool_trains_on_final_labels_with_the_usual_heldout_rule(tmp_path: Path):
    root = fake_data_root(tmp_path / "data")
    labels = tmp_path / "labels"
    labels.mkdir()

    def write(name: str, rows: list[tuple[str, str]]) -> None:
        (labels / name).write_text("".join(json.dumps({"ref": r, "urgency": u, "cues": []}) + "\n" for r, u in rows))

    write("pass_a.jsonl", [("xci:train:7", "critical"), ("banking77:train:0", "low")])
    write("pass_b.jsonl", [("xci:train:7", "high"), ("banking77:train:0", "low")])
    write("adjudicated.jsonl", [("xci:train:7", "critical")])
    rows = {row.id: row for row in pool_interactions(root, labels)}
    assert rows["xci:train:7"].labels == {"urgency": "critical"}  # the adjudication decided
    assert rows["banking77:train:0"].text == "how do I top up?"
    assert all(row.split == heldout_split(ref) for ref, row in rows.items())


def test_written_messages_take_the_final_label():
    rows = [
        Interaction("uc-1", "text", {"urgency": "high", "sentiment": "negative"}, "train"),
        Interaction("uc-2", "text", {"sentiment": "neutral"}, "train"),
    ]
    final = {"uc-1": Label("critical", frozenset()), "uc-2": Label("low", frozenset())}
    updated = with_final_urgency(rows, final)
    assert updated[0].labels == {"urgency": "critical", "sentiment": "negative"}
    assert updated[1].labels == {"sentiment": "neutral"}  # no urgency label to replace
