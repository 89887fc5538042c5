"""Every limit is a setting and is answered with a clear 413 or 503 naming what was over,
carrying the request id; never a 500. (The schema checks, 422, are in test_bad_input.)"""

from __future__ import annotations

import json
import threading
import time

import anyio
import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.api.limits import TimeBudgetMiddleware
from service.settings import Settings


def customer(text: str) -> dict:
    return {"role": "customer", "text": text}


@pytest.fixture
def limited(tmp_path, analyzer):
    settings = Settings(
        _env_file=None,
        db_path=tmp_path / "db.sqlite3",
        max_body_bytes=4096,
        max_messages=3,
        max_message_chars=40,
        max_batch_transcripts=2,
    )
    with TestClient(create_app(settings, analyzer)) as client:
        yield client


@pytest.mark.parametrize(
    "path,body,field",
    [
        ("/v1/analyze", {"messages": [customer("x" * 41)]}, "messages.0.text"),
        ("/v1/analyze", {"messages": [customer("hi")] * 4}, "messages"),
        ("/v1/analyze/batch", {"transcripts": [{"messages": [customer("hi")]}] * 3}, "transcripts"),
        (
            "/v1/analyze/batch",
            {"transcripts": [{"messages": [customer("hi")]}, {"messages": [customer("y" * 41)]}]},
            "transcripts.1.messages.0.text",
        ),
        ("/v1/conversations/c1/messages", customer("z" * 41), "text"),
    ],
)
def test_each_limit_is_413_naming_the_field(limited: TestClient, path: str, body: dict, field: str):
    response = limited.post(path, json=body, headers={"X-Request-ID": "limit-check"})
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "too_large" and error["request_id"] == "limit-check"
    assert response.headers["x-request-id"] == "limit-check"
    assert field in error["message"] or field in [d["field"] for d in error["details"]]


def test_body_over_the_limit_is_413_whether_declared_or_streamed(limited: TestClient):
    body = json.dumps({"messages": [customer("hi")] * 200}).encode()
    assert len(body) > 4096
    declared = limited.post("/v1/analyze", content=body, headers={"content-type": "application/json"})
    assert declared.status_code == 413 and "4096" in declared.json()["error"]["message"]

    def chunks():  # no content-length: the guard counts what it reads
        for start in range(0, len(body), 512):
            yield body[start : start + 512]

    streamed = limited.post("/v1/analyze", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413 and streamed.json()["error"]["request_id"]


def test_within_every_limit_is_200(limited: TestClient):
    assert limited.post("/v1/analyze", json={"messages": [customer("x" * 40)] * 3}).status_code == 200
    assert (
        limited.post("/v1/analyze/batch", json={"transcripts": [{"messages": [customer("hi")]}] * 2}).status_code == 200
    )


def test_a_request_past_its_time_budget_is_503(tmp_path, analyzer):
    settings = Settings(_env_file=None, db_path=tmp_path / "db.sqlite3", request_timeout_s=0.05)
    slow = {
        "messages": [customer(f"message number {i}: my parcel never arrived and nobody answers") for i in range(60)]
    }
    with TestClient(create_app(settings, analyzer)) as client:
        response = client.post("/v1/analyze", json=slow, headers={"X-Request-ID": "slow-1"})
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert error["code"] == "timeout" and "0.05 s" in error["message"] and error["request_id"] == "slow-1"
        assert response.headers["retry-after"] == "1" and response.headers["x-request-id"] == "slow-1"
        assert client.get("/healthz").status_code == 200  # the service is fine afterwards


def test_no_budget_means_no_503(tmp_path, analyzer):
    settings = Settings(_env_file=None, db_path=tmp_path / "db.sqlite3", request_timeout_s=0)
    with TestClient(create_app(settings, analyzer)) as client:
        assert client.post("/v1/analyze", json={"messages": [customer("hello")] * 20}).status_code == 200


def test_the_503_goes_out_on_time_while_the_work_finishes_in_its_thread():
    """At the ASGI level: the caller's answer does not wait for the worker thread, and the
    thread's late answer is dropped instead of being sent after the 503."""
    release = threading.Event()
    sent: list[tuple[float, dict]] = []

    async def slow_app(scope, receive, send):
        await anyio.to_thread.run_sync(release.wait, 5.0)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"late"})

    async def main():
        started = time.perf_counter()

        async def send(message):
            sent.append((time.perf_counter() - started, message))
            if message["type"] == "http.response.body":
                release.set()  # let the thread go once the caller has its answer

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "state": {}}
        await TimeBudgetMiddleware(slow_app, budget_s=0.2)(scope, receive, send)

    anyio.run(main)
    assert [m["type"] for _, m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0][1]["status"] == 503
    assert 0.15 <= sent[0][0] < 2.0
    assert b"late" not in sent[1][1]["body"]
