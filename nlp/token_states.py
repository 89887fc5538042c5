"""Token vectors of many texts in one ragged array: what a head that attends over a
message's tokens reads (the emotions head's label-wise attention, `nlp.heads`).

Rows are stored back to back (`vectors`) with `offsets` into them, so short texts cost no
padding while they wait; `padded` builds the (batch, longest, dim) tensor and its mask for
one batch at a time. Training keeps GoEmotions' 43,000 texts this way in float16 (about
0.7 GB, against 2 GB padded to 64 word pieces)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


@dataclass(frozen=True)
class TokenStates:
    """The contextual token vectors of n texts (special tokens included, padding not)."""

    vectors: np.ndarray
    """(total tokens, dim): every text's vectors, in row order."""
    offsets: np.ndarray
    """(n + 1,) row i is vectors[offsets[i]:offsets[i + 1]]."""

    @classmethod
    def from_rows(cls, rows: Sequence[np.ndarray], dtype: type[np.floating] = np.float32) -> TokenStates:
        """Join per-text (tokens, dim) arrays (`EncodedBatch.tokens`)."""
        if not rows:
            raise ValueError("no rows to join")
        lengths = np.array([len(row) for row in rows], dtype=np.int64)
        if (lengths == 0).any():
            raise ValueError("every text has at least its special tokens: got a row of none")
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        return cls(np.concatenate(rows).astype(dtype, copy=False), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def row(self, i: int) -> np.ndarray:
        """Text i's (tokens, dim) vectors."""
        return self.vectors[self.offsets[i] : self.offsets[i + 1]]

    def padded(self, index: Sequence[int] | np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens, mask) of the rows in `index` (default: all): float32 (b, longest, dim)
        zero-padded, and a bool (b, longest) mask of the real tokens."""
        rows = np.arange(len(self)) if index is None else np.asarray(index, dtype=np.int64)
        lengths = self.offsets[rows + 1] - self.offsets[rows]
        tokens = np.zeros((len(rows), int(lengths.max(initial=1)), self.dim), dtype=np.float32)
        mask = np.zeros(tokens.shape[:2], dtype=bool)
        for position, (row, length) in enumerate(zip(rows, lengths)):
            tokens[position, :length] = self.row(row)
            mask[position, :length] = True
        return torch.from_numpy(tokens), torch.from_numpy(mask)

    def save(self, path: Path) -> None:
        """Write as one `.npz` (written beside, then renamed: a reader never sees half a file)."""
        partial = path.with_name(path.name + ".partial.npz")
        np.savez(partial, vectors=self.vectors, offsets=self.offsets)
        partial.replace(path)

    @classmethod
    def load(cls, path: Path) -> TokenStates:
        with np.load(path) as data:
            return cls(data["vectors"], data["offsets"])
