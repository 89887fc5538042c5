"""The OpenAPI spec is one a client generator likes: readable, unique operation ids;
request and answer examples that the service really accepts and gives; and one
`ErrorResponse` component behind every 4xx/5xx answer."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from service.api import alert_routes, ingest_routes, lifecycle_routes, routes, topic_routes
from service.api.app import create_app
from service.api.errors import ErrorResponse
from service.api.openapi_examples import PATH_EXAMPLES, REQUEST_EXAMPLES
from service.api.openapi_responses import RESPONSE_EXAMPLES
from service.settings import Settings

OPERATION_ID = re.compile(r"^[a-z][a-z0-9_]*$")
ERROR_REF = "#/components/schemas/ErrorResponse"
# The one 5xx that is not the error envelope: /readyz answers its health shape while loading.
NOT_ENVELOPES = {("get_readiness", "503")}
METHODS = {"get", "post", "put", "patch", "delete"}


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app(Settings(_env_file=None)).openapi()


@pytest.fixture(scope="module")
def keyed_spec() -> dict[str, Any]:
    """With API keys configured: the 401/403 answers are added to the operations."""
    return create_app(Settings(_env_file=None, api_keys="k" * 32)).openapi()


def test_operation_ids_are_readable_and_unique(spec):
    ids = [operation.get("operationId") for _, _, operation in operations(spec)]
    assert all(isinstance(i, str) and OPERATION_ID.match(i) for i in ids), ids
    assert len(ids) == len(set(ids))
    expected = {
        "analyze_transcript",
        "analyze_batch",
        "append_message",
        "get_conversation",
        "list_conversations",
        "delete_conversation",
        "erase_customer",
        "list_alerts",
        "retry_alert",
        "ingest_zendesk",
        "ingest_intercom",
        "ingest_freshdesk",
        "get_models",
        "list_topics",
        "rename_topic",
        "merge_topics",
        "split_topic",
        "delete_topic",
        "get_health",
        "get_readiness",
    }
    assert set(ids) == expected


def test_every_request_body_has_an_example(spec):
    for path, method, operation in operations(spec):
        if "requestBody" in operation:
            media = operation["requestBody"]["content"]["application/json"]
            assert "example" in media or "examples" in media, f"{method.upper()} {path}"


def test_every_path_parameter_has_an_example(spec):
    for path, method, operation in operations(spec):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                assert "example" in parameter, f"{method.upper()} {path} {parameter['name']}"


def _component(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    reference = schema.get("$ref", "")
    return spec["components"]["schemas"][reference.rsplit("/", 1)[-1]] if reference else schema


def test_every_2xx_json_answer_has_an_example(spec):
    for path, method, operation in operations(spec):
        for status, response in operation["responses"].items():
            media = response.get("content", {}).get("application/json")
            if not status.startswith("2") or media is None:
                continue
            schema = _component(spec, media.get("schema", {}))
            assert "example" in media or "examples" in media or "examples" in schema, f"{method.upper()} {path}"


@pytest.mark.parametrize("keyed", [False, True])
def test_every_error_answer_refers_to_the_one_error_component(spec, keyed_spec, keyed):
    current = keyed_spec if keyed else spec
    seen = set()
    for path, method, operation in operations(current):
        for status, response in operation["responses"].items():
            if status[0] not in "45" or (operation["operationId"], status) in NOT_ENVELOPES:
                continue
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": ERROR_REF}, f"{method.upper()} {path} {status}"
            seen.add(status)
    assert {"400", "413", "415", "422", "500", "503"} <= seen
    if keyed:
        assert {"401", "403"} <= seen
    assert "HTTPValidationError" not in current["components"]["schemas"]
    component = current["components"]["schemas"]["ErrorResponse"]
    assert component["examples"]
    for example in component["examples"]:
        ErrorResponse.model_validate(example)


def test_answer_examples_are_valid_answers():
    """Each 2xx example is an instance of its operation's response model."""
    routers = [alert_routes.router, ingest_routes.router, lifecycle_routes.router, routes.router, topic_routes.router]
    by_name = {route.name: route for router in routers for route in router.routes if isinstance(route, APIRoute)}
    for operation_id, example in RESPONSE_EXAMPLES.items():
        TypeAdapter(by_name[operation_id].response_model).validate_python(example)


def _url(path: str) -> str:
    for name, value in PATH_EXAMPLES.items():
        path = path.replace("{" + name + "}", value)
    return path


def test_request_examples_are_accepted(client: TestClient):
    """Posts the request example of every operation that has one, as Swagger's "Try it
    out" would (no helpdesk secrets are configured, so the ingest bodies need no
    signature), and expects a 2xx; then the operations without a body, path parameters
    filled from their examples, against the conversation the examples created."""
    spec = client.app.openapi()
    posted = set()
    # The topic edits need a topic model, which this app lacks: tests/api/test_topics_service.py
    # sends their examples to an app that has one.
    topic_edits = {"rename_topic", "merge_topics", "split_topic", "delete_topic"}
    for path, method, operation in operations(spec):
        media = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if media is None or operation["operationId"] in topic_edits:
            continue
        response = client.request(method.upper(), _url(path), json=media["example"])
        assert 200 <= response.status_code < 300, (path, response.status_code, response.text)
        assert "ignored" not in response.json(), (path, response.json())  # the example is recorded
        posted.add(operation["operationId"])
    assert posted == set(REQUEST_EXAMPLES) - topic_edits
    skip = {"retry_alert", "list_topics", *topic_edits}  # no failed alert, no topic model in this app
    # The deletions last: the reads need the conversation the examples stored.
    order = sorted(operations(spec), key=lambda o: o[1] == "delete" or o[2]["operationId"] == "erase_customer")
    for path, method, operation in order:
        if "requestBody" in operation or operation["operationId"] in skip:
            continue
        response = client.request(method.upper(), _url(path))
        assert 200 <= response.status_code < 300, (path, response.status_code, response.text)
