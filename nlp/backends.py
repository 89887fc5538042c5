"""Choosing the encoder backend: the PyTorch reference, or ONNX Runtime (fp32 or int8).

A backend that cannot start fails start-up with `EncoderLoadError` naming the backend and
the cause. It never falls back silently: the operator asked for that backend's speed,
memory and (for int8) outputs, and a quiet switch would hide all three."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:  # torch and the runtimes load with the encoder, not with the settings
    from nlp.bundle import BundleAdapter
    from nlp.encoder import SentenceEncoder

EncoderBackend = Literal["torch", "onnx", "onnx-int8"]
ENCODER_BACKENDS: tuple[str, ...] = get_args(EncoderBackend)


@dataclass(frozen=True)
class EncoderConfig:
    """How to run the encoder: which backend, from where, how many texts per pass and on
    how many threads. `model_path` None means the packaged all-MiniLM-L6-v2."""

    backend: EncoderBackend = "torch"
    model_path: Path | None = None
    batch_size: int = 64
    torch_threads: int | None = None
    onnx_threads: int | None = None
    cache_dir: Path | None = None
    """Where ONNX graphs are exported (the ONNX backends need one; torch does not)."""


def load_encoder(
    config: EncoderConfig = EncoderConfig(),
    *,
    max_seq_length: int = 256,
    adapter: BundleAdapter | None = None,
) -> SentenceEncoder:
    """The encoder `config` asks for. ONNX graphs are exported into its `cache_dir` when
    missing. A bundle's fine-tuning `adapter` is merged into the encoder's weights (for
    ONNX, before the export, so the graph is the fine-tuned encoder's)."""
    import torch

    from nlp.encoder import Encoder, EncoderLoadError

    backend, model_path, cache_dir = config.backend, config.model_path, config.cache_dir
    batch_size, torch_threads, onnx_threads = config.batch_size, config.torch_threads, config.onnx_threads
    if backend == "torch":
        return Encoder(
            model_path, max_seq_length=max_seq_length, batch_size=batch_size, num_threads=torch_threads, adapter=adapter
        )
    if backend not in ENCODER_BACKENDS:
        raise EncoderLoadError(f"unknown encoder backend {backend!r}; choose one of {', '.join(ENCODER_BACKENDS)}")
    if cache_dir is None:
        raise EncoderLoadError(f"encoder backend {backend!r} needs a cache directory for its ONNX graph")
    if torch_threads:  # the heads still run on torch
        torch.set_num_threads(torch_threads)
    OnnxEncoder = _onnx_encoder_module(backend).OnnxEncoder
    return OnnxEncoder(
        model_path,
        variant="int8" if backend == "onnx-int8" else "fp32",
        cache_dir=cache_dir,
        max_seq_length=max_seq_length,
        batch_size=batch_size,
        num_threads=onnx_threads,
        adapter=adapter,
    )


def prepare_encoder(
    config: EncoderConfig,
    *,
    max_seq_length: int = 256,
    adapter: BundleAdapter | None = None,
) -> Path | None:
    """Export the backend's ONNX graph into the config's `cache_dir` if it is missing
    (once, before server workers start); returns the graph's path, or None for torch.
    Raises EncoderLoadError with the cause."""
    from nlp.encoder import EncoderLoadError, packaged_model_path

    backend, model_path, cache_dir = config.backend, config.model_path, config.cache_dir

    if backend == "torch":
        return None
    if backend not in ENCODER_BACKENDS or cache_dir is None:
        raise EncoderLoadError(f"encoder backend {backend!r} needs a known name and a cache directory")
    ensure_graph = _onnx_encoder_module(backend).ensure_graph
    variant: Literal["fp32", "int8"] = "int8" if backend == "onnx-int8" else "fp32"
    path = Path(model_path) if model_path else packaged_model_path()
    try:
        return ensure_graph(path, cache_dir, variant, max_seq_length=max_seq_length, adapter=adapter)
    except Exception as exc:  # noqa: BLE001 - export or I/O: all make the backend unusable
        raise EncoderLoadError(f"ONNX {variant} export of {path} into {cache_dir} failed: {exc}") from exc


def _onnx_encoder_module(backend: str) -> ModuleType:
    """nlp.onnx_encoder, imported only when an ONNX backend is chosen (onnxruntime and onnx
    are the optional `onnx` extra). Raises EncoderLoadError naming the extra."""
    from nlp.encoder import EncoderLoadError
    from nlp.extras import install_hint

    try:
        return importlib.import_module("nlp.onnx_encoder")
    except ImportError as exc:
        raise EncoderLoadError(
            f"encoder backend {backend!r} needs onnxruntime and onnx (the 'onnx' extra): {install_hint('onnx')} ({exc})"
        ) from exc
