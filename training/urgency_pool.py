"""The urgency labelling pool: customer messages drawn from the public sets, kept in the
repository as references only (`source:split:key`), never as text: the sets stay where
they are (`../shared/data`) and are read by path when the text is needed.

`draw_pool` chooses the messages (deterministic for a seed); `resolve_texts` reads their
texts back; `python -m training.urgency_pool draw|sheet` writes the pool file, or an
annotation sheet with texts to a folder outside the repository for the annotators."""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from training.agreement import Label, final_labels, read_labels
from training.datasets import Interaction, heldout_split

LABELS_DIR = Path("data") / "urgency" / "labels"
"""Where the labelling passes and adjudications live, relative to the source checkout."""

POOL_SIZES = {"xci": 1000, "banking77": 700, "stc3": 500, "tweeteval": 200, "meld": 100}
"""How many messages each public set gives the pool (2,500 in all)."""

# A tweet or a TV line reads like a message to a company when it names a company handle
# or talks about a product, an account, an order or a service.
_SUPPORT_WORDS = re.compile(
    r"\b(account|order|delivery|deliver|refund|charged?|bill|payment|card|bank|flight|ticket|service|customer|"
    r"support|internet|phone|app|broken|cancel|complain\w*|waiting|package|parcel|store|manager|help)\b",
    re.I,
)


@dataclass(frozen=True)
class PoolItem:
    """One message of the pool: where it is, and what kind of set it comes from."""

    ref: str
    """`source:split:key`, e.g. `xci:train:123` (the set's own id) or `stc3:train:<dialogue>:<turn>`."""
    source: str
    channel: str


def draw_pool(data_root: Path, seed: int = 2026) -> list[PoolItem]:
    """The pool, in a shuffled order (so annotators see the sets mixed)."""
    rng = random.Random(seed)
    items: list[PoolItem] = []
    items += _xci(data_root, rng, POOL_SIZES["xci"])
    items += _banking77(data_root, rng, POOL_SIZES["banking77"])
    items += _stc3(data_root, rng, POOL_SIZES["stc3"])
    items += _filtered_lines(data_root, rng, POOL_SIZES["tweeteval"], "tweeteval")
    items += _filtered_lines(data_root, rng, POOL_SIZES["meld"], "meld")
    rng.shuffle(items)
    return items


def resolve_texts(refs: list[str], data_root: Path) -> dict[str, str]:
    """The text of each reference, read from the public sets under `data_root`."""
    wanted = set(refs)
    texts = {ref: text for ref, text in _all_texts(data_root) if ref in wanted}
    _require_all(wanted, texts, data_root)
    return texts


def resolve_dialogues(refs: list[str], data_root: Path) -> dict[str, list[tuple[str, str]]]:
    """The turns, `(sender, text)` with sender `customer` or `helpdesk`, of each whole STC-3
    dialogue referenced as `stc3:train:<dialogue>` (a dialogue, where `resolve_texts` takes
    one customer turn, `stc3:train:<dialogue>:<turn>`)."""
    wanted = set(refs)
    dialogues = {
        ref: [(turn["sender"], _turn_text(turn)) for turn in dialogue["turns"]]
        for ref, dialogue in stc3_dialogues(data_root)
        if ref in wanted
    }
    _require_all(wanted, dialogues, data_root)
    return dialogues


def stc3_dialogues(data_root: Path) -> Iterator[tuple[str, dict]]:
    """Every STC-3 training dialogue as read, with its reference `stc3:train:<dialogue>`."""
    for dialogue in _jsonl(data_root / POOL_SOURCES["stc3"]):
        yield f"stc3:train:{dialogue['id']}", dialogue


def _require_all(wanted: set[str], found: dict, data_root: Path) -> None:
    missing = wanted - found.keys()
    if missing:
        raise KeyError(f"{len(missing)} references not found under {data_root}, e.g. {sorted(missing)[0]}")


POOL_SOURCES: dict[str, Path] = {
    "xci": Path("xci") / "train.csv",
    "banking77": Path("banking77") / "train.csv",
    "stc3": Path("stc3") / "train.jsonl",
    "tweeteval": Path("tweeteval") / "sentiment" / "train_text.txt",
    "meld": Path("meld") / "train_sent_emo.csv",
}
"""The public files the pool's texts are read from, under the data root."""


def missing_pool_sources(data_root: Path) -> list[Path]:
    """The pool's source files that `data_root` lacks (none: the pool can be read)."""
    return [data_root / path for path in POOL_SOURCES.values() if not (data_root / path).is_file()]


def final_pool_labels(labels_dir: Path) -> dict[str, Label]:
    """The pool's final labels: the two passes where they agree, the adjudication where not."""
    return final_labels(
        read_labels(labels_dir / "pass_a.jsonl"),
        read_labels(labels_dir / "pass_b.jsonl"),
        read_labels(labels_dir / "adjudicated.jsonl"),
    )


def final_written_labels(labels_dir: Path) -> dict[str, Label]:
    """The written messages' (`messages_c.jsonl`) final labels, from their own two blind passes."""
    return final_labels(
        read_labels(labels_dir / "written_pass_a.jsonl"),
        read_labels(labels_dir / "written_pass_b.jsonl"),
        read_labels(labels_dir / "written_adjudicated.jsonl"),
    )


def pool_interactions(data_root: Path, labels_dir: Path) -> list[Interaction]:
    """The labelled pool as training rows: texts read from the public sets, the final
    urgency label, and the held-out quarter by the usual id rule."""
    labels = final_pool_labels(labels_dir)
    texts = resolve_texts(list(labels), data_root)
    return [
        Interaction(id=ref, text=texts[ref], labels={"urgency": label.urgency}, split=heldout_split(ref))
        for ref, label in labels.items()
    ]


def with_final_urgency(rows: list[Interaction], final: dict[str, Label]) -> list[Interaction]:
    """`rows` with the urgency label of every row `final` knows replaced by the final one
    (the written messages carry their writer's label; the blind passes decide)."""
    return [
        replace(row, labels={**row.labels, "urgency": final[row.id].urgency})
        if row.id in final and "urgency" in row.labels
        else row
        for row in rows
    ]


def _all_texts(data_root: Path) -> Iterator[tuple[str, str]]:
    for source in POOL_SOURCES:
        yield from _source_texts(data_root, source)


def _source_texts(data_root: Path, source: str) -> Iterator[tuple[str, str]]:
    """(reference, text) of every customer message of one public set."""
    path = data_root / POOL_SOURCES[source]
    if source == "xci":
        for row in _csv(path):
            yield f"xci:train:{row['id']}", row["tweet"]
    elif source == "banking77":
        for index, row in enumerate(_csv(path)):
            yield f"banking77:train:{index}", row["text"]
    elif source == "stc3":
        for ref, dialogue in stc3_dialogues(data_root):
            for turn_index, turn in enumerate(dialogue["turns"]):
                if turn["sender"] == "customer":
                    yield f"{ref}:{turn_index}", _turn_text(turn)
    elif source == "tweeteval":
        for index, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            yield f"tweeteval:train:{index}", line
    else:
        for row in _csv(path):
            yield f"meld:train:{row['Sr No.']}", row["Utterance"]


def _turn_text(turn: dict) -> str:
    """One STC-3 turn's utterances as one text."""
    return " ".join(turn["utterances"])


def _xci(data_root: Path, rng: random.Random, size: int) -> list[PoolItem]:
    """Complaints over-sampled (700 of the 1,000) and spread over severities; the rest non-complaints."""
    rows = _csv(data_root / POOL_SOURCES["xci"])
    complaints = [r for r in rows if r["label"] == "1"]
    others = [r for r in rows if r["label"] == "0"]
    chosen = rng.sample(complaints, min(len(complaints), size * 7 // 10))
    chosen += rng.sample(others, size - len(chosen))
    return [PoolItem(f"xci:train:{r['id']}", "xci", "social") for r in chosen]


def _banking77(data_root: Path, rng: random.Random, size: int) -> list[PoolItem]:
    """The same number from each of the 77 intents (urgency differs most between intents)."""
    by_intent: dict[str, list[int]] = defaultdict(list)
    for index, row in enumerate(_csv(data_root / POOL_SOURCES["banking77"])):
        by_intent[row["category"]].append(index)
    per_intent, chosen = size // len(by_intent), []
    for intent in sorted(by_intent):
        chosen += rng.sample(by_intent[intent], per_intent)
    rest = sorted({i for indices in by_intent.values() for i in indices} - set(chosen))
    chosen += rng.sample(rest, size - len(chosen))
    return [PoolItem(f"banking77:train:{i}", "banking77", "chat") for i in chosen]


def _stc3(data_root: Path, rng: random.Random, size: int) -> list[PoolItem]:
    """Customer turns: every dialogue's first one first (the complaint), then later ones."""
    first, later = [], []
    for dialogue in _jsonl(data_root / POOL_SOURCES["stc3"]):
        customer = [i for i, turn in enumerate(dialogue["turns"]) if turn["sender"] == "customer"]
        if customer:
            first.append(f"stc3:train:{dialogue['id']}:{customer[0]}")
            later += [f"stc3:train:{dialogue['id']}:{i}" for i in customer[1:]]
    chosen = rng.sample(first, min(len(first), size * 4 // 5))
    chosen += rng.sample(later, size - len(chosen))
    return [PoolItem(ref, "stc3", "social") for ref in chosen]


def _filtered_lines(data_root: Path, rng: random.Random, size: int, source: str) -> list[PoolItem]:
    """Support-like lines only: ones that talk about a product, an account or a service."""
    texts = list(_source_texts(data_root, source))
    support_like = [ref for ref, text in texts if _SUPPORT_WORDS.search(text) and len(text.split()) >= 5]
    channel = "social" if source == "tweeteval" else "voice"
    return [PoolItem(ref, source, channel) for ref in rng.sample(support_like, size)]


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=("draw", "sheet"))
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--pool", type=Path, default=Path("data/urgency/pool.jsonl"))
    parser.add_argument("--out", type=Path, help="sheet: a folder outside the repository")
    parser.add_argument("--chunk", type=int, default=250, help="sheet: messages per file")
    args = parser.parse_args()
    if args.command == "draw":
        items = draw_pool(args.data_root)
        args.pool.write_text("".join(json.dumps(asdict(item)) + "\n" for item in items), encoding="utf-8")
        print(f"wrote {len(items)} references to {args.pool}")
        return
    refs = [json.loads(line)["ref"] for line in args.pool.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = resolve_texts(refs, args.data_root)
    args.out.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(refs), args.chunk):
        part = args.out / f"sheet_{start // args.chunk + 1:02d}.jsonl"
        part.write_text(
            "".join(
                json.dumps({"ref": ref, "text": texts[ref]}, ensure_ascii=False) + "\n"
                for ref in refs[start : start + args.chunk]
            ),
            encoding="utf-8",
        )
    print(f"wrote {len(refs)} messages in {(len(refs) + args.chunk - 1) // args.chunk} files to {args.out}")


if __name__ == "__main__":
    main()
