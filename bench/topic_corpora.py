"""The labelled corpora the topic bench scores on, and the unlabelled scale corpus.

Tuning corpora (the fit's size rule in nlp/topics/config.py was chosen on these):
BANKING77 train at full size (10,003 queries, 77 intents) and seeded subsamples of 1,000
and 3,000 queries, and the project's `train` part of X-CI (tweets to brands, 11
`domain` labels). Check corpora, never tuned on: the `heldout` part of X-CI and
BANKING77 subsamples of 2,000 and 6,000 queries (sizes the rule was not fitted at,
other seeds)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TUNE_SEEDS = (0, 1, 2)
CHECK_SEEDS = (10, 11, 12)
TUNE_SIZES = (1000, 3000)
CHECK_SIZES = (2000, 6000)


@dataclass(frozen=True)
class Corpus:
    """Texts with their reference labels; `group` names the row of the bench table (the
    seeded subsamples of one size share a group and are averaged)."""

    name: str
    group: str
    texts: list[str]
    truth: list[str]
    tuned: bool


def load_banking77(data_root: Path) -> tuple[list[str], list[str]]:
    """BANKING77 train: query texts and their intent."""
    with (data_root / "banking77" / "train.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [r["text"] for r in rows], [r["category"] for r in rows]


def load_xci_domains(data_root: Path, part: str) -> tuple[list[str], list[str]]:
    """X-CI tweets of the project's `part` ('train' or 'heldout', as training/datasets.py
    splits the published file) with their `domain`."""
    from training.datasets import heldout_split

    texts, domains = [], []
    with (data_root / "xci" / "train.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if heldout_split(f"xci:{row['id']}") == part:
                texts.append(row["tweet"])
                domains.append(row["domain"])
    return texts, domains


def subsample(texts: list[str], truth: list[str], size: int, seed: int) -> tuple[list[str], list[str]]:
    """`size` rows drawn without replacement (seeded)."""
    rows = np.sort(np.random.default_rng(seed).choice(len(texts), size, replace=False))
    return [texts[i] for i in rows], [truth[i] for i in rows]


def labelled_corpora(data_root: Path, *, check: bool = True) -> list[Corpus]:
    """The tuning corpora, then (with `check`) the corpora never tuned on."""
    texts, intents = load_banking77(data_root)
    corpora = [Corpus("banking77", "banking77 10,003", texts, intents, True)]
    plan = [(size, seed, True) for size in TUNE_SIZES for seed in TUNE_SEEDS]
    if check:
        plan += [(size, seed, False) for size in CHECK_SIZES for seed in CHECK_SEEDS]
    for size, seed, tuned in plan:
        sample, sample_truth = subsample(texts, intents, size, seed)
        group = f"banking77 {size:,}" + ("" if tuned else " (check)")
        corpora.append(Corpus(f"banking77-{size}-s{seed}", group, sample, sample_truth, tuned))
    parts = ("train", "heldout") if check else ("train",)
    for part in parts:
        tweets, domains = load_xci_domains(data_root, part)
        group = f"xci {part} {len(tweets):,}" + ("" if part == "train" else " (check)")
        corpora.append(Corpus(f"xci-{part}", group, tweets, domains, part == "train"))
    return corpora


def scale_corpus(data_root: Path, size: int) -> list[str]:
    """`size` distinct customer-like messages from the train splits of the public sets:
    TweetEval sentiment, GoEmotions, BANKING77, X-CI (project train part) and MELD, in
    that order, deduplicated (exact text, blank texts dropped)."""
    from training.datasets import load_goemotions, load_meld_sentiment, load_tweeteval_sentiment

    texts = load_tweeteval_sentiment(data_root, "train").texts
    texts += load_goemotions(data_root, "train").texts
    texts += load_banking77(data_root)[0]
    texts += load_xci_domains(data_root, "train")[0]
    texts += load_meld_sentiment(data_root, "train").texts
    distinct = list(dict.fromkeys(t.strip() for t in texts if t.strip()))
    if len(distinct) < size:
        raise SystemExit(f"only {len(distinct)} distinct texts in the train splits, fewer than {size}")
    return distinct[:size]
