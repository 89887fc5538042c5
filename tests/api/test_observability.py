"""Request ids, structured request logs (no message text by default) and Prometheus
metrics, against the real app and model."""

from __future__ import annotations

import json
import logging
import logging.config
import re

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from nlp.bundle import load_bundle
from service.api.app import create_app
from service.api.request_id import accept_request_id
from service.logs import ACCESS_LOGGER, JsonFormatter, log_config
from service.settings import Settings
from tests.conftest import BUNDLE, load_fixture

SECRET_TEXT = "my card 4111 1111 1111 1111 was charged twice, write to jane.doe@example.com"
GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")


def customer(text: str) -> dict:
    return {"role": "customer", "text": text}


def access_records(caplog: pytest.LogCaptureFixture) -> list[dict]:
    return [r.fields for r in caplog.records if r.name == ACCESS_LOGGER]


# --- request ids -----------------------------------------------------------------------


def test_a_safe_request_id_is_echoed(client: TestClient):
    response = client.post(
        "/v1/analyze", json=load_fixture("double_charge.json"), headers={"X-Request-ID": "helpdesk-42.a:b"}
    )
    assert response.status_code == 200 and response.headers["x-request-id"] == "helpdesk-42.a:b"


@pytest.mark.parametrize("given", [None, "", "x" * 129, "has space", 'quote"d', "-leading-dash", "a;b", "<script>"])
def test_an_unsafe_or_missing_request_id_is_replaced(client: TestClient, given):
    headers = {"X-Request-ID": given} if given is not None else {}
    response = client.get("/healthz", headers=headers)
    assert GENERATED_ID.match(response.headers["x-request-id"])


@pytest.mark.parametrize("given", ["new\nline", "tab\there", "\u00e9t\u00e9", "x\r\nSet-Cookie: a=b"])
def test_ids_with_line_breaks_or_non_ascii_are_refused(given: str):
    # The HTTP client refuses to send these, so the check is on the function the middleware uses.
    assert accept_request_id(given) != given and GENERATED_ID.match(accept_request_id(given))


def test_generated_ids_differ(client: TestClient):
    ids = {client.get("/healthz").headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


@pytest.mark.parametrize(
    "method,path,kwargs,status",
    [
        ("POST", "/v1/analyze", {"json": {"messages": []}}, 422),
        ("POST", "/v1/analyze", {"content": b"{oops", "headers": {"content-type": "application/json"}}, 400),
        ("POST", "/v1/analyze", {"content": b"hi", "headers": {"content-type": "text/plain"}}, 415),
        ("POST", "/v1/analyze", {"json": {"messages": [customer("x" * 20_001)]}}, 413),
        ("POST", "/v1/analyze", {"content": b"x" * 3_000_000, "headers": {"content-type": "application/json"}}, 413),
        ("GET", "/v1/conversations/nobody", {}, 404),
        ("GET", "/v1/analyze", {}, 405),
        ("GET", "/nowhere", {}, 404),
    ],
)
def test_every_error_carries_the_request_id(client: TestClient, method, path, kwargs, status):
    headers = {**kwargs.pop("headers", {}), "X-Request-ID": "err-check-1"}
    response = client.request(method, path, headers=headers, **kwargs)
    assert response.status_code == status
    assert response.headers["x-request-id"] == "err-check-1"
    assert response.json()["error"]["request_id"] == "err-check-1"


def test_a_500_carries_the_request_id_and_logs_no_text(settings: Settings, analyzer, caplog):
    caplog.set_level(logging.INFO)
    app = create_app(settings, analyzer)
    with TestClient(app, raise_server_exceptions=False) as client:
        app.state.store.close()  # a real fault: the database is gone under the service
        response = client.post(
            "/v1/conversations/c1/messages", json=customer(SECRET_TEXT), headers={"X-Request-ID": "boom-1"}
        )
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "boom-1"
    assert response.json()["error"] == {
        "status": 500,
        "code": "internal_error",
        "request_id": "boom-1",
        "message": "internal error; the request was not processed",
        "details": [],
    }
    assert {"request_id": "boom-1", "status": 500}.items() <= access_records(caplog)[-1].items()
    formatted = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert "DatabaseClosed" in formatted  # the bug is visible...
    assert "4111" not in formatted and "jane.doe" not in formatted  # ...the customer's text is not


# --- logs ------------------------------------------------------------------------------


def test_one_json_line_per_request_without_message_text(client: TestClient, caplog):
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    client.post("/v1/conversations/conv-7/messages", json=customer(SECRET_TEXT), headers={"X-Request-ID": "log-1"})
    client.post("/v1/analyze", json={"messages": [customer(SECRET_TEXT)] * 2, "metadata": "not an object"})
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == ACCESS_LOGGER]
    assert len(lines) == 2
    first = lines[0]
    assert first["request_id"] == "log-1" and first["status"] == 200 and first["method"] == "POST"
    assert first["route"] == "/v1/conversations/{conversation_id}/messages"  # the template, not conv-7
    assert (
        first["model_version"] == load_bundle(BUNDLE).version
        and first["latency_ms"] > 0
        and first["message"] == "request"
    )
    assert lines[1]["status"] == 422
    everything = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert "4111" not in everything and "charged twice" not in everything and "jane.doe" not in everything
    assert "texts_redacted" not in everything


def test_debug_setting_logs_texts_redacted(settings: Settings, analyzer, caplog):
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    debug = settings.model_copy(update={"log_redacted_text": True})
    with TestClient(create_app(debug, analyzer)) as client:
        client.post("/v1/analyze", json={"messages": [customer(SECRET_TEXT), customer("thanks, Bob!")]})
    logged = access_records(caplog)[-1]["texts_redacted"]
    assert len(logged) == 2 and "charged twice" in logged[0]
    assert "4111" not in logged[0] and "jane.doe@example.com" not in logged[0]
    assert "[email]" in logged[0] and "[card]" in logged[0]


def test_exceptions_are_logged_with_type_and_stack_but_not_message():
    try:
        raise ValueError(f"could not parse {SECRET_TEXT}")
    except ValueError:
        record = logging.getLogger("convintel").makeRecord(
            "convintel", logging.ERROR, __file__, 1, "failed", (), exc_info=__import__("sys").exc_info()
        )
    line = json.loads(JsonFormatter().format(record))
    assert line["error_type"] == "builtins.ValueError" and "test_observability.py" in line["stack"]
    assert "4111" not in json.dumps(line)


@pytest.fixture
def restore_logging():
    names = ("convintel", "service", "nlp", "uvicorn", "uvicorn.error", ACCESS_LOGGER)
    saved = {
        n: (list(logging.getLogger(n).handlers), logging.getLogger(n).level, logging.getLogger(n).propagate)
        for n in names
    }
    yield
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:], logger.level, logger.propagate = handlers, level, propagate


def test_log_config_writes_json_lines(restore_logging, capsys):
    for json_logs in (True, False):
        logging.config.dictConfig(log_config(Settings(_env_file=None, log_json=json_logs, log_level="warning")))
        assert logging.getLogger(ACCESS_LOGGER).getEffectiveLevel() == logging.WARNING
        logging.getLogger(ACCESS_LOGGER).warning("request", extra={"fields": {"request_id": "cfg-1"}})
    json_line, text_line = capsys.readouterr().err.strip().splitlines()
    assert json.loads(json_line)["request_id"] == "cfg-1"
    assert "WARNING convintel.access request" in text_line and '"request_id": "cfg-1"' in text_line


# --- metrics ---------------------------------------------------------------------------


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_endpoint_counts_by_route_template_and_model_work(client: TestClient):
    route = "/v1/conversations/{conversation_id}"
    before_404 = sample("convintel_http_request_duration_seconds_count", method="GET", route=route, status="404")
    before_escalate = sample("convintel_escalations_total", level="escalate", path="analyze")
    before_encodes = sample("convintel_model_inference_seconds_count")
    before_batch = sample("convintel_encode_batch_size_sum")

    assert client.get("/v1/conversations/unknown-1").status_code == 404
    assert client.get("/v1/conversations/unknown-2").status_code == 404
    result = client.post("/v1/analyze", json=load_fixture("double_charge.json")).json()
    assert result["conversation"]["escalation"]["level"] == "escalate"

    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'route="/v1/conversations/{conversation_id}"' in text and "unknown-1" not in text
    assert (
        sample("convintel_http_request_duration_seconds_count", method="GET", route=route, status="404")
        == before_404 + 2
    )
    assert sample("convintel_escalations_total", level="escalate", path="analyze") == before_escalate + 1
    assert sample("convintel_model_inference_seconds_count") == before_encodes + 1
    assert sample("convintel_encode_batch_size_sum") == before_batch + 4  # the transcript's four messages
    for name in (
        "convintel_http_requests_in_flight",
        "convintel_encode_queue_depth",
        f'convintel_model_info{{name="convintel-base",version="{load_bundle(BUNDLE).version}"}} 1.0',
    ):
        assert name in text


def test_escalation_changes_on_the_message_path_are_counted(client: TestClient):
    levels = ("none", "monitor", "escalate", "urgent")
    before = {level: sample("convintel_escalations_total", level=level, path="message") for level in levels}
    changes = []
    for i, text in enumerate(
        [
            "Hello, a quick question about my plan.",
            "This is the third time I write. I will sue you and call my lawyer today!",
        ]
    ):
        body = client.post("/v1/conversations/esc-1/messages", json={**customer(text), "id": f"m{i}"}).json()
        if body["conversation"]["escalation"]["changed"]:
            changes.append(body["conversation"]["escalation"]["level"])
    assert changes, "the legal threat changes the level"
    after = {level: sample("convintel_escalations_total", level=level, path="message") for level in levels}
    assert sum(after.values()) - sum(before.values()) == len(changes)
    assert after[changes[-1]] > before[changes[-1]]


def test_unknown_paths_share_one_label(client: TestClient):
    client.get("/random/abc123")
    client.get("/random/def456")
    text = client.get("/metrics").text
    assert 'route="unmatched"' in text and "abc123" not in text


def test_model_info_survives_multiprocess_mode(tmp_path):
    """`serve --workers N` scrapes through prometheus-client's multiprocess collector,
    which drops Info metrics: the model info is a gauge, so it is still there."""
    import subprocess
    import sys

    script = (
        "from types import SimpleNamespace\n"
        "from service import metrics\n"
        "model_info = SimpleNamespace(name='convintel-base', version='9.9')\n"
        "analyzer = SimpleNamespace(encoder=object(), model_info=model_info)\n"
        "metrics.instrument_analyzer(analyzer)\n"
        "print(metrics.metrics_endpoint(None).body.decode())\n"
    )
    env = {**__import__("os").environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True, cwd=BUNDLE.parents[2]
    ).stdout
    assert 'convintel_model_info{name="convintel-base",version="9.9"} 1.0' in out
