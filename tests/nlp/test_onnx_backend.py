"""The ONNX Runtime encoder backend against the PyTorch reference, on the shipped bundle's
(fine-tuned) encoder: its adapter is merged before the export.

Tolerances (stated in the README):
- fp32 ONNX: every pooled value within 1e-4 of PyTorch, head probabilities within 1e-4;
- int8 ONNX: sentence-embedding cosine to PyTorch >= 0.95 per message (>= 0.98 on
  average); its accuracy is gated on the dev sets by bench/backends_accuracy.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from nlp.analyzer import Analyzer
from nlp.backends import EncoderConfig, load_encoder
from nlp.bundle import load_bundle
from nlp.encoder import Encoder, EncoderLoadError, packaged_model_path
from nlp.onnx_encoder import OnnxEncoder, cached_graph_path
from nlp.token_states import TokenStates
from service.api.app import create_app
from service.settings import Settings
from tests.conftest import BUNDLE, FIXTURES


def _fixture_texts() -> list[str]:
    texts = []
    for path in sorted((FIXTURES / "transcripts").glob("*.json")):
        try:
            messages = json.loads(path.read_text())["messages"]
        except (KeyError, TypeError, json.JSONDecodeError):
            continue  # some fixtures are deliberately malformed
        texts += [m["text"] for m in messages if isinstance(m, dict) and isinstance(m.get("text"), str)]
    return [t for t in texts if t.strip()] + ["long " * 1000, "😡😡", "ok"]


TEXTS = _fixture_texts()
ADAPTER = load_bundle(BUNDLE).adapter  # the shipped bundle's fine-tuned encoder


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory) -> Path:
    """One export per test session: fp32 first, then int8 quantised from it."""
    cache = tmp_path_factory.mktemp("onnx-cache")
    for variant in ("fp32", "int8"):
        OnnxEncoder(variant=variant, cache_dir=cache, adapter=ADAPTER)
    return cache


@pytest.fixture(scope="session")
def onnx_fp32(onnx_cache) -> OnnxEncoder:
    return OnnxEncoder(variant="fp32", cache_dir=onnx_cache, adapter=ADAPTER)


@pytest.fixture(scope="session")
def onnx_int8(onnx_cache) -> OnnxEncoder:
    return OnnxEncoder(variant="int8", cache_dir=onnx_cache, adapter=ADAPTER)


def test_fixtures_cover_several_messages():
    assert len(TEXTS) >= 10


def test_fp32_matches_pytorch(analyzer, onnx_fp32):
    every = [True] * len(TEXTS)  # token vectors too: the emotions head attends over them
    reference = analyzer.encoder.encode(TEXTS, every)
    got = onnx_fp32.encode(TEXTS, every)
    np.testing.assert_allclose(got.embeddings, reference.embeddings, atol=1e-4)
    np.testing.assert_allclose(got.features, reference.features, atol=1e-4)
    np.testing.assert_array_equal(got.truncated, reference.truncated)
    assert got.truncated.any()  # the long text is flagged by both
    got_tokens, reference_tokens = TokenStates.from_rows(got.tokens), TokenStates.from_rows(reference.tokens)
    np.testing.assert_allclose(got_tokens.vectors, reference_tokens.vectors, atol=1e-4)
    for head in analyzer.bundle.heads.values():
        np.testing.assert_allclose(
            head.predict_proba(got.features, got_tokens),
            head.predict_proba(reference.features, reference_tokens),
            atol=1e-4,
        )


def test_int8_stays_close_to_pytorch(analyzer, onnx_int8):
    reference = analyzer.encoder.encode(TEXTS)
    got = onnx_int8.encode(TEXTS)
    cosine = (got.embeddings * reference.embeddings).sum(axis=1)
    assert cosine.min() >= 0.95 and cosine.mean() >= 0.98
    np.testing.assert_allclose(np.linalg.norm(got.embeddings, axis=1), 1.0, atol=1e-4)
    np.testing.assert_array_equal(got.truncated, reference.truncated)
    assert not np.allclose(got.features, reference.features, atol=1e-4)  # really quantised


def test_graphs_are_cached_by_variant(onnx_cache, onnx_fp32, onnx_int8):
    assert onnx_fp32.graph_path == cached_graph_path(packaged_model_path(), onnx_cache, "fp32", ADAPTER)
    assert onnx_int8.graph_path != onnx_fp32.graph_path
    assert onnx_int8.graph_path.stat().st_size < onnx_fp32.graph_path.stat().st_size * 0.6
    info = json.loads(onnx_int8.graph_path.with_suffix(".json").read_text())
    assert info["variant"] == "int8"
    # A second load reads the cache: nothing new is written.
    before = sorted(p.name for p in onnx_cache.iterdir())
    OnnxEncoder(variant="fp32", cache_dir=onnx_cache, adapter=ADAPTER)
    assert sorted(p.name for p in onnx_cache.iterdir()) == before


def test_the_finetuned_bundle_exports_its_own_graph(onnx_fp32):
    """The shipped bundle is fine-tuned: its graph is cached under its own key, and it
    computes the fine-tuned encoder, not the packaged base weights."""
    assert ADAPTER is not None, "the shipped bundle carries a fine-tuned encoder"
    assert cached_graph_path(packaged_model_path(), Path("c"), "fp32", ADAPTER) != cached_graph_path(
        packaged_model_path(), Path("c"), "fp32"
    )
    base = Encoder().encode(TEXTS[:5]).features
    assert not np.allclose(onnx_fp32.encode(TEXTS[:5]).features, base, atol=1e-3)


def test_int8_keeps_feed_forward_and_last_layers_in_fp32(onnx_int8):
    import onnx

    from nlp.onnx_encoder import INT8_FP32_LAYERS

    nodes = onnx.load(str(onnx_int8.graph_path), load_external_data=False).graph.node
    quantised = {n.op_type for n in nodes} & {"QAttention", "MatMulInteger", "DynamicQuantizeMatMul"}
    assert quantised, "nothing was quantised"
    fp32_attention = sorted(n.name for n in nodes if n.op_type == "Attention")
    assert fp32_attention == [f"Attention_{layer}" for layer in INT8_FP32_LAYERS]
    fp32_matmuls = [n.name for n in nodes if n.op_type == "MatMul"]
    assert all(any(f"/layer.{layer}/attention/output" in name for name in fp32_matmuls) for layer in INT8_FP32_LAYERS)
    assert sum("intermediate/dense" in name for name in fp32_matmuls) == 6  # every feed-forward layer


def test_analyzer_on_onnx_gives_the_reference_analysis(analyzer, onnx_fp32):
    onnx_analyzer = Analyzer(onnx_fp32, analyzer.bundle, analyzer.policy)
    transcript = json.loads((FIXTURES / "transcripts" / "double_charge.json").read_text())
    from nlp.schemas import Transcript

    parsed = Transcript.model_validate(transcript)
    expected, got = analyzer.analyze(parsed), onnx_analyzer.analyze(parsed)
    for a, b in zip(expected.messages, got.messages):
        assert a.sentiment.label == b.sentiment.label
        assert (a.urgency and a.urgency.label) == (b.urgency and b.urgency.label)
        assert a.sentiment.score == pytest.approx(b.sentiment.score, abs=1e-3)
    assert expected.conversation.escalation.level == got.conversation.escalation.level


def test_a_broken_cached_graph_fails_start_up_clearly(tmp_path, onnx_cache):
    graph = cached_graph_path(packaged_model_path(), tmp_path, "fp32", ADAPTER)
    graph.write_bytes(b"not an onnx graph")
    with pytest.raises(EncoderLoadError, match="ONNX fp32 encoder .* failed"):
        OnnxEncoder(variant="fp32", cache_dir=tmp_path, adapter=ADAPTER)


def test_an_unusable_cache_dir_fails_start_up_clearly(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache folder should be")
    with pytest.raises(EncoderLoadError, match="cache"):
        load_encoder(EncoderConfig("onnx", cache_dir=blocker / "encoders"))


def test_unknown_backend_is_rejected():
    with pytest.raises(EncoderLoadError, match="unknown encoder backend"):
        load_encoder(EncoderConfig("tensorrt", cache_dir=Path("unused")))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Settings(_env_file=None, encoder_backend="tensorrt")


def test_service_refuses_to_start_on_a_broken_backend(tmp_path):
    """No silent fallback to torch: start-up fails, naming the backend."""
    graph = cached_graph_path(packaged_model_path(), tmp_path / "cache", "int8", ADAPTER)
    graph.parent.mkdir()
    graph.write_bytes(b"garbage")
    settings = Settings(
        _env_file=None,
        db_path=tmp_path / "db.sqlite3",
        models_dir=BUNDLE.parent,
        encoder_backend="onnx-int8",
        encoder_cache_dir=tmp_path / "cache",
    )
    with pytest.raises(EncoderLoadError, match="ONNX int8 encoder"):
        with TestClient(create_app(settings)):
            pass


def test_service_serves_with_the_onnx_backend(tmp_path, onnx_cache):
    settings = Settings(
        _env_file=None,
        db_path=tmp_path / "db.sqlite3",
        models_dir=BUNDLE.parent,
        encoder_backend="onnx-int8",
        encoder_cache_dir=onnx_cache,
        detect_cues=False,
        redact_pii=False,
    )
    with TestClient(create_app(settings)) as client:
        response = client.post(
            "/v1/conversations/onnx-1/messages", json={"role": "customer", "text": "I was charged twice, fix it now!"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["message"]["sentiment"]["label"] == "negative"
        assert isinstance(client.app.state.analyzer.encoder.wrapped, OnnxEncoder)  # inside the metrics timer


def test_serve_refuses_a_broken_backend_with_one_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from service import settings as settings_module
    from service.cli import app

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CONVINTEL_ENCODER_BACKEND", "onnx")
    monkeypatch.setenv("CONVINTEL_ENCODER_CACHE_DIR", str(blocker / "cache"))
    settings_module.get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["serve"])
    finally:
        settings_module.get_settings.cache_clear()
    assert result.exit_code == 2
    assert "cannot start: ONNX fp32 export" in result.output
    assert "Traceback" not in result.output


def test_fp32_graph_gives_the_rows_own_token_vectors(onnx_fp32):
    from tests.nlp.test_encoder import check_token_vectors

    check_token_vectors(onnx_fp32)
