"""Encoder features for training sets, cached on disk by text: the frozen-encoder recipe
encodes each distinct text once per encoder, however the recipes combine the sets.

The cache is a folder per encoder fingerprint holding blocks (`.npz`: 64-bit text hashes
and their feature rows); a run encodes only texts no block has yet and adds one block.

A head that attends over token vectors (`HeadTrainingConfig.token_attention`) also needs
each text's token vectors: the cache keeps them per set, in float16, under `tokens/` in the
same folder (GoEmotions train: about 0.7 GB). They come out of the same encoder pass as
the features, so `encode_sets` encodes such a set once and fills both. Without a folder
the cache lives in memory, so the steps of one run that share it (the fine-tune's head
refits and its reports) still encode each text once."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from nlp.encoder import Encoder, packaged_model_version
from nlp.token_states import TokenStates
from training.datasets import LabelledSet


def text_key(text: str) -> int:
    """Stable 64-bit key of a text (blake2b; collisions are negligible at these sizes)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def encoder_fingerprint(encoder: Encoder) -> str:
    identity = f"{encoder.path}|{packaged_model_version()}|{encoder.max_seq_length}|mean_max"
    if encoder.adapter_id:  # a fine-tuned encoder gives other features
        identity += f"|adapter:{encoder.adapter_id}"
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


class FeatureCache:
    """Text -> head features, persisted in blocks under `root/<encoder fingerprint>/`."""

    def __init__(self, root: Path | None, encoder: Encoder) -> None:
        self.encoder = encoder
        self.folder = root / encoder_fingerprint(encoder) if root else None
        self._rows: dict[int, np.ndarray] = {}
        self._token_sets: dict[str, TokenStates] = {}
        if self.folder and self.folder.is_dir():
            for block in sorted(self.folder.glob("*.npz")):
                with np.load(block) as data:
                    self._rows.update(zip(data["keys"].tolist(), data["features"]))

    def features(self, texts: Sequence[str], *, label: str = "", chunk: int = 2048) -> np.ndarray:
        """Features for `texts` in order, encoding (and caching) only the missing ones."""
        keys = [text_key(t) for t in texts]
        missing: dict[int, str] = {}
        for key, text in zip(keys, texts):
            if key not in self._rows:
                missing.setdefault(key, text)
        if missing:
            new_keys, new_texts = list(missing), list(missing.values())
            # One block per chunk: an interrupted run keeps what it has encoded so far.
            for start in tqdm(
                range(0, len(new_texts), chunk), desc=f"encoding {label}".strip(), unit="chunk", leave=False
            ):
                keys_part = new_keys[start : start + chunk]
                encoded = self.encoder.encode(new_texts[start : start + chunk]).features
                self._rows.update(zip(keys_part, encoded))
                self._save_block(np.array(keys_part, dtype=np.uint64), encoded)
        if not texts:
            return np.zeros((0, self.encoder.feature_dim), dtype=np.float32)
        return np.stack([self._rows[key] for key in keys])

    def add(self, texts: Sequence[str], features: np.ndarray) -> None:
        """Keep (and persist) features encoded elsewhere, e.g. by a token-vector pass."""
        new: dict[int, np.ndarray] = {}
        for text, row in zip(texts, features):
            key = text_key(text)
            if key not in self._rows:
                new.setdefault(key, row)
        if new:
            self._rows.update(new)
            self._save_block(np.array(list(new), dtype=np.uint64), np.stack(list(new.values())))

    def token_states(self, labelled: LabelledSet, *, label: str = "", chunk: int = 2048) -> TokenStates:
        """Token vectors (float16) of a set's texts, from the encoder's own pass at its
        window; kept per set (keyed by its texts, so a changed set is encoded again) in
        memory and under `tokens/`. The pass's pooled features join the feature cache."""
        digest = hashlib.sha256(np.array([text_key(t) for t in labelled.texts], dtype=np.uint64).tobytes())
        key = digest.hexdigest()[:16]
        if key in self._token_sets:
            return self._token_sets[key]
        path = self.folder / "tokens" / f"{key}.npz" if self.folder else None
        if path is not None and path.is_file():
            states = TokenStates.load(path)
        else:
            states = self._encode_tokens(list(labelled.texts), f"token vectors {label} {labelled.name}".strip(), chunk)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                states.save(path)
        self._token_sets[key] = states
        return states

    def _encode_tokens(self, texts: list[str], description: str, chunk: int) -> TokenStates:
        if not texts:
            return TokenStates(np.zeros((0, self.encoder.dim), np.float16), np.zeros(1, np.int64))
        rows: list[np.ndarray] = []
        for start in tqdm(range(0, len(texts), chunk), desc=description, unit="chunk", leave=False):
            part = texts[start : start + chunk]
            encoded = self.encoder.encode(part, keep_tokens=[True] * len(part))
            if encoded.tokens is None:
                raise ValueError("the encoder returned no token vectors")
            rows.extend(row.astype(np.float16) for row in encoded.tokens if row is not None)
            self.add(part, encoded.features)
        return TokenStates.from_rows(rows, dtype=np.float16)

    def _save_block(self, keys: np.ndarray, features: np.ndarray) -> None:
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(keys.tobytes()).hexdigest()[:16]
        tmp = self.folder / f"{name}.tmp.npz"
        np.savez(tmp, keys=keys, features=features)
        tmp.replace(self.folder / f"{name}.npz")  # atomic: an interrupted run leaves no half block


def encode_sets(
    cache: FeatureCache,
    sets: Sequence[LabelledSet],
    *,
    label: str = "",
    token_sets: Collection[str] = (),
) -> tuple[dict[str, np.ndarray], dict[str, TokenStates]]:
    """Features for each LabelledSet by name, and token vectors for the sets named in
    `token_sets`, from `cache` (which encodes what it lacks). Shared texts are encoded once,
    and a set that needs token vectors is encoded once for both."""
    tokens = {s.name: cache.token_states(s, label=label) for s in sets if s.name in token_sets}
    union = list(dict.fromkeys(text for s in sets for text in s.texts))
    features = cache.features(union, label=label)
    row = {text: i for i, text in enumerate(union)}
    return {s.name: features[[row[text] for text in s.texts]] for s in sets}, tokens
