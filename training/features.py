"""Encoder features for training sets, cached on disk by text: the frozen-encoder recipe
encodes each distinct text once per encoder, however the recipes combine the sets.

The cache is a folder per encoder fingerprint holding blocks (`.npz`: 64-bit text hashes
and their feature rows); a run encodes only texts no block has yet and adds one block.

A head that attends over token vectors (`HeadTrainingConfig.token_attention`) also needs
each text's token vectors: `encode_token_sets` keeps them per set, in float16, under
`tokens/` in the same folder (GoEmotions train: about 0.7 GB). They come out of the same
encoder pass as the features, so `encode_sets` encodes such a set once and fills both."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from nlp.encoder import Encoder, packaged_model_version
from nlp.token_states import TokenStates


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

    def _save_block(self, keys: np.ndarray, features: np.ndarray) -> None:
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(keys.tobytes()).hexdigest()[:16]
        tmp = self.folder / f"{name}.tmp.npz"
        np.savez(tmp, keys=keys, features=features)
        tmp.replace(self.folder / f"{name}.npz")  # atomic: an interrupted run leaves no half block


def encode_sets(
    encoder: Encoder,
    sets: Sequence,
    cache_dir: Path | None,
    *,
    label: str = "",
    token_sets: Collection[str] = (),
) -> tuple[dict[str, np.ndarray], dict[str, TokenStates]]:
    """Features for each LabelledSet by name, and token vectors for the sets named in
    `token_sets`. Shared texts are encoded once, and a set that needs token vectors is
    encoded once for both."""
    cache = FeatureCache(cache_dir, encoder)
    tokens = encode_token_sets(
        encoder, [s for s in sets if s.name in token_sets], cache_dir, label=label, features=cache
    )
    union = list(dict.fromkeys(text for s in sets for text in s.texts))
    features = cache.features(union, label=label)
    row = {text: i for i, text in enumerate(union)}
    return {s.name: features[[row[text] for text in s.texts]] for s in sets}, tokens


def encode_token_sets(
    encoder: Encoder,
    sets: Sequence,
    cache_dir: Path | None,
    *,
    label: str = "",
    chunk: int = 2048,
    features: FeatureCache | None = None,
) -> dict[str, TokenStates]:
    """Token vectors (float16) of each LabelledSet's texts by name, from the encoder's own
    pass at its window; cached per set under `cache_dir/<encoder fingerprint>/tokens/`,
    keyed by the set's texts, so a changed set is encoded again. The pooled features of
    that pass go to `features`, when given, so they need no pass of their own."""
    folder = cache_dir / encoder_fingerprint(encoder) / "tokens" if cache_dir else None
    states = {}
    for labelled in sets:
        digest = hashlib.sha256(np.array([text_key(t) for t in labelled.texts], dtype=np.uint64).tobytes())
        path = folder / f"{digest.hexdigest()[:16]}.npz" if folder else None
        if path is not None and path.is_file():
            states[labelled.name] = TokenStates.load(path)
            continue
        rows: list[np.ndarray] = []
        texts = list(labelled.texts)
        if not texts:
            states[labelled.name] = TokenStates(np.zeros((0, encoder.dim), np.float16), np.zeros(1, np.int64))
            continue
        for start in tqdm(
            range(0, len(texts), chunk),
            desc=f"token vectors {label} {labelled.name}".strip(),
            unit="chunk",
            leave=False,
        ):
            part = texts[start : start + chunk]
            encoded = encoder.encode(part, keep_tokens=[True] * len(part))
            if encoded.tokens is None:
                raise ValueError("the encoder returned no token vectors")
            rows.extend(row.astype(np.float16) for row in encoded.tokens if row is not None)
            if features is not None:
                features.add(part, encoded.features)
        states[labelled.name] = TokenStates.from_rows(rows, dtype=np.float16)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            states[labelled.name].save(path)
    return states
