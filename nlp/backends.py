"""Choosing the encoder backend: the PyTorch reference, or ONNX Runtime (fp32 or int8).

A backend that cannot start fails start-up with `EncoderLoadError` naming the backend and
the cause. It never falls back silently: the operator asked for that backend's speed,
memory and (for int8) outputs, and a quiet switch would hide all three."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:  # torch and the runtimes load with the encoder, not with the settings
    from nlp.encoder import SentenceEncoder

EncoderBackend = Literal["torch", "onnx", "onnx-int8"]
ENCODER_BACKENDS: tuple[str, ...] = get_args(EncoderBackend)


def load_encoder(
    backend: EncoderBackend = "torch",
    model_path: str | Path | None = None,
    *,
    max_seq_length: int = 256,
    batch_size: int = 64,
    torch_threads: int | None = None,
    onnx_threads: int | None = None,
    cache_dir: Path | None = None,
) -> SentenceEncoder:
    """The encoder for `backend`. ONNX graphs are exported into `cache_dir` when missing."""
    import torch

    from nlp.encoder import Encoder, EncoderLoadError

    if backend == "torch":
        return Encoder(model_path, max_seq_length=max_seq_length, batch_size=batch_size, num_threads=torch_threads)
    if backend not in ENCODER_BACKENDS:
        raise EncoderLoadError(f"unknown encoder backend {backend!r}; choose one of {', '.join(ENCODER_BACKENDS)}")
    if cache_dir is None:
        raise EncoderLoadError(f"encoder backend {backend!r} needs a cache directory for its ONNX graph")
    if torch_threads:  # the heads still run on torch
        torch.set_num_threads(torch_threads)
    try:
        from nlp.onnx_encoder import OnnxEncoder
    except ImportError as exc:
        raise EncoderLoadError(f"encoder backend {backend!r} needs onnxruntime and onnx: {exc}") from exc
    return OnnxEncoder(model_path, variant="int8" if backend == "onnx-int8" else "fp32", cache_dir=cache_dir,
                       max_seq_length=max_seq_length, batch_size=batch_size, num_threads=onnx_threads)
