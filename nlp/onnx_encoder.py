"""The encoder on ONNX Runtime: the bundled MiniLM exported once from the PyTorch
reference (`torch.onnx.export`), fused for BERT by onnxruntime's transformer optimiser,
and optionally int8-quantised (dynamic, per channel). The graph ends in the same two
pooled views as `Encoder.forward`, so the heads read the same features.

Exports are cached by a key over the encoder's files, the fine-tuned bundle's adapter (if
any: it is merged into the weights before the export) and the torch / onnxruntime
versions, so a changed model, adapter or runtime never reads a stale graph."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import onnxruntime as ort
import torch
from torch import nn
from transformers import AutoTokenizer

from nlp.encoder import (
    EncodedBatch,
    Encoder,
    EncoderLoadError,
    PooledBatch,
    encode_in_batches,
    max_pool,
    packaged_model_path,
    tokenizer_offsets,
)

if TYPE_CHECKING:
    from nlp.bundle import BundleAdapter

log = logging.getLogger("convintel.encoder")

OnnxVariant = Literal["fp32", "int8"]
EXPORT_FORMAT = 3  # bump when the export recipe changes: old cache entries are then ignored
INT8_RECIPE = 2  # bump when the quantisation recipe changes: only int8 graphs are redone
# The last layers stay fp32 in int8 graphs: their errors reach the pooled features unfiltered.
# With layers 4 and 5 in fp32, int8 keeps every dev figure within 0.01 macro-F1 of torch
# (GoEmotions-28: -0.0076); with layer 5 only, -0.0104; with none, -0.0138.
INT8_FP32_LAYERS = (4, 5)
ONNX_OPSET = 17
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAMES = ("sentence_embedding", "max_pooled", "token_embeddings")
# Files whose bytes decide the exported graph (the tokenizer is not part of the graph).
_KEY_FILES = ("config.json", "modules.json", "model.safetensors", "1_Pooling/config.json")


class _PooledGraph(nn.Module):
    """What gets exported: token ids -> (normalised mean pooling, max pooling)."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.model = encoder.module

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.model({"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids})
        tokens = out["token_embeddings"]
        return out["sentence_embedding"], max_pool(tokens, attention_mask), tokens


@dataclass(frozen=True)
class ExportInfo:
    """Provenance written beside a cached graph (`<name>.json`)."""

    variant: OnnxVariant
    key: str
    encoder_path: str
    torch: str
    onnxruntime: str
    export_seconds: float


def cache_key(model_path: Path, variant: OnnxVariant, adapter: BundleAdapter | None = None) -> str:
    """Hash of the encoder's weight and config files, the adapter merged into them, the
    runtimes and the recipe."""
    recipe = f"{EXPORT_FORMAT}.{INT8_RECIPE}" if variant == "int8" else str(EXPORT_FORMAT)
    digest = hashlib.sha256(f"{recipe}|{variant}|{torch.__version__}|{ort.__version__}".encode())
    if adapter is not None:
        digest.update(f"|adapter {adapter.manifest.method} {adapter.manifest.sha256}".encode())
    for name in _KEY_FILES:
        path = model_path / name
        if path.is_file():
            digest.update(name.encode())
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()[:16]


def cached_graph_path(
    model_path: Path, cache_dir: Path, variant: OnnxVariant, adapter: BundleAdapter | None = None
) -> Path:
    return cache_dir / f"minilm-{variant}-{cache_key(model_path, variant, adapter)}.onnx"


def export_graph(encoder: Encoder, destination: Path) -> ExportInfo:
    """Export `encoder` to an fp32 graph at `destination`, fused for BERT."""
    started = time.perf_counter()
    from onnxruntime.transformers.optimizer import optimize_model

    transformer: Any = encoder.module[0]  # sentence-transformers types modules as torch Modules
    config = transformer.auto_model.config
    with _atomic_output(destination) as (tmp, output):
        raw = tmp / "raw.onnx"
        sample = encoder.module.preprocess(["an example message to trace", "short"])
        inputs = tuple(sample[name] for name in INPUT_NAMES)
        axes = {name: {0: "batch", 1: "tokens"} for name in (*INPUT_NAMES, "token_embeddings")} | {
            name: {0: "batch"} for name in OUTPUT_NAMES[:2]
        }
        with torch.inference_mode(), warnings.catch_warnings():
            # Tracing notes constant shapes checks in transformers' code: expected, not news.
            warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
            warnings.simplefilter("ignore", category=DeprecationWarning)
            # The TorchScript exporter: the dynamo one needs onnxscript, an extra dependency.
            torch.onnx.export(
                _PooledGraph(encoder).eval(),
                inputs,
                str(raw),
                input_names=list(INPUT_NAMES),
                output_names=list(OUTPUT_NAMES),
                dynamic_axes=axes,
                opset_version=ONNX_OPSET,
                dynamo=False,
            )
        # Fused attention, skip-layernorm and GELU: faster, and quantisation then covers them.
        optimized = optimize_model(
            str(raw),
            model_type="bert",
            num_heads=config.num_attention_heads,
            hidden_size=config.hidden_size,
            opt_level=1,
        )
        optimized.save_model_to_file(str(output))
    return _write_info(destination, "fp32", encoder.path, started)


def quantize_graph(source: Path, destination: Path, model_path: Path) -> ExportInfo:
    """Dynamic int8 quantisation of the fp32 graph at `source` into `destination`."""
    started = time.perf_counter()
    import onnx
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source), load_external_data=False)
    # The feed-forward MatMuls stay fp32: their inputs (post-LayerNorm and post-GELU
    # activations) have outlier channels that one dynamic uint8 scale per tensor flattens.
    # Quantising them too was ~20% faster but moved head decisions on ~4x more messages,
    # and cost 0.018 macro-F1 on GoEmotions dev (bench/backends_accuracy.py).
    feed_forward = [
        node.name
        for node in graph.graph.node
        if node.op_type == "MatMul"
        and ("intermediate/dense" in node.name or "/output/dense" in node.name)
        and "attention/" not in node.name
    ]
    # Fused attention nodes are named Attention_<layer>; their output projections by layer path.
    last_layers = [
        node.name
        for node in graph.graph.node
        for layer in INT8_FP32_LAYERS
        if node.name == f"Attention_{layer}" or f"/layer.{layer}/" in node.name
    ]
    with _atomic_output(destination) as (_, output):
        # Per-channel int8 weights: per-tensor scales lose too much (sentence cosine to
        # the reference falls to ~0.93 on the worst messages; per channel stays ~0.99).
        quantize_dynamic(
            str(source),
            str(output),
            weight_type=QuantType.QInt8,
            per_channel=True,
            nodes_to_exclude=sorted(set(feed_forward + last_layers)),
            extra_options={"DefaultTensorType": TensorProto.FLOAT},
        )
    return _write_info(destination, "int8", model_path, started)


@contextmanager
def _atomic_output(destination: Path) -> Iterator[tuple[Path, Path]]:
    """A scratch folder and a file in it that replaces `destination` on success only, so
    concurrent workers racing on one cache never read half a graph."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=destination.parent, prefix=".export-") as tmp:
        output = Path(tmp) / "graph.onnx"
        yield Path(tmp), output
        os.replace(output, destination)


def _write_info(destination: Path, variant: OnnxVariant, model_path: Path, started: float) -> ExportInfo:
    info = ExportInfo(
        variant=variant,
        key=destination.stem.rsplit("-", 1)[-1],
        encoder_path=str(model_path),
        torch=torch.__version__,
        onnxruntime=ort.__version__,
        export_seconds=round(time.perf_counter() - started, 2),
    )
    destination.with_suffix(".json").write_text(json.dumps(asdict(info), indent=2) + "\n", encoding="utf-8")
    return info


def ensure_graph(
    model_path: Path,
    cache_dir: Path,
    variant: OnnxVariant,
    *,
    max_seq_length: int,
    num_threads: int | None = None,
    adapter: BundleAdapter | None = None,
) -> Path:
    """The cached ONNX graph for this encoder (with a fine-tuned bundle's `adapter` merged
    in) and variant, exported first if missing (the int8 graph is quantised from the
    cached fp32 one)."""
    destination = cached_graph_path(model_path, cache_dir, variant, adapter)
    if destination.is_file():
        return destination
    cache_dir.mkdir(parents=True, exist_ok=True)  # fail before minutes of export, not after
    if variant == "int8":
        source = ensure_graph(
            model_path, cache_dir, "fp32", max_seq_length=max_seq_length, num_threads=num_threads, adapter=adapter
        )
        log.info("quantising %s to int8 into %s", source.name, destination)
        info = quantize_graph(source, destination, model_path)
    else:
        log.info("exporting the encoder to ONNX into %s; this happens once per model and runtime", destination)
        reference = Encoder(model_path, max_seq_length=max_seq_length, num_threads=num_threads, adapter=adapter)
        info = export_graph(reference, destination)
    log.info("wrote %s in %.1f s", destination.name, info.export_seconds)
    return destination


def session_options(num_threads: int | None) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if num_threads:
        options.intra_op_num_threads = num_threads
    # No busy-waiting between runs: on a small machine the spinning threads would take
    # the cores spaCy, the heads and the HTTP layer need between encoder passes.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class OnnxEncoder:
    """Encoder on ONNX Runtime, a drop-in for `Encoder` in serving (no fine-tuning)."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        variant: OnnxVariant = "fp32",
        cache_dir: Path,
        max_seq_length: int = 256,
        batch_size: int = 64,
        num_threads: int | None = None,
        adapter: BundleAdapter | None = None,
    ) -> None:
        """Load (exporting first if needed) the graph of the encoder at `model_path`, with
        a fine-tuned bundle's `adapter` merged in before the export."""
        path = Path(model_path) if model_path else packaged_model_path()
        if not (path / "config.json").is_file() or not (path / "modules.json").is_file():
            raise EncoderLoadError(f"no sentence-transformers model at {path}")
        try:
            self.graph_path = ensure_graph(
                path, Path(cache_dir), variant, max_seq_length=max_seq_length, num_threads=num_threads, adapter=adapter
            )
            self._session = ort.InferenceSession(
                str(self.graph_path), session_options(num_threads), providers=["CPUExecutionProvider"]
            )
            self._tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        except EncoderLoadError:
            raise
        except Exception as exc:  # noqa: BLE001 - export, runtime or tokenizer: all load failures
            raise EncoderLoadError(f"ONNX {variant} encoder from {path} (cache {cache_dir}) failed: {exc}") from exc
        self.path = path
        self.variant = variant
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.dim: int = int(self._session.get_outputs()[0].shape[-1])
        self.feature_dim = 2 * self.dim

    def encode(self, texts: Sequence[str], keep_tokens: Sequence[bool] | None = None) -> EncodedBatch:
        """Same contract as `Encoder.encode`: normalised, length-sorted batches, input order."""
        return encode_in_batches(
            texts,
            self._pooled_batch,
            dim=self.dim,
            batch_size=self.batch_size,
            max_seq_length=self.max_seq_length,
            keep_tokens=keep_tokens,
        )

    def _pooled_batch(self, texts: Sequence[str], with_tokens: bool = False) -> PooledBatch:
        # The same tokenizer call sentence-transformers makes (pad to longest, truncate).
        tokens = self._tokenizer(
            list(texts), padding=True, truncation="longest_first", max_length=self.max_seq_length, return_tensors="np"
        )
        feeds = {name: tokens[name].astype(np.int64, copy=False) for name in INPUT_NAMES}
        outputs = self._session.run(list(OUTPUT_NAMES if with_tokens else OUTPUT_NAMES[:2]), feeds)
        counts = feeds["attention_mask"].sum(axis=1)
        return PooledBatch(outputs[0], outputs[1], counts, outputs[2] if with_tokens else None)

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Same contract as `Encoder.token_offsets`."""
        return tokenizer_offsets(self._tokenizer, text, self.max_seq_length)
