"""Schemathesis against the service's own OpenAPI spec, in process, with the real model:
generated requests (valid and invalid) must never get a 5xx, and every answer must match
the spec (status code documented, content type, body schema, headers).

Examples per operation are kept low so the default suite stays fast; `make test-fuzz`
runs the same test with more (FUZZ_EXAMPLES)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from nlp.analyzer import Analyzer
from service.api.app import create_app
from service.settings import Settings

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))


def fuzz_settings(db_path: Path) -> Settings:
    return Settings(_env_file=None, db_path=db_path)


# The spec is read at collection from an app that has not loaded anything (the models load
# in its lifespan); the requests go to the `fuzz_app` fixture, which shares the session's
# loaded analyzer.
schema = schemathesis.openapi.from_dict(create_app(fuzz_settings(Path("unused.sqlite3"))).openapi())


def _breaks_rule_without_a_schema(response) -> bool:
    """A 422 for what JSON Schema cannot say: message ids unique within a transcript, or a
    listing cursor that is not one the service handed out (any base64url text fits the schema)."""
    if response.status_code != 422:
        return False
    details = response.json()["error"]["details"]
    return bool(details) and all(
        "is used by an earlier message" in d["message"] or d["field"] == "cursor" for d in details
    )


@pytest.fixture(scope="module")
def fuzz_app(analyzer: Analyzer, tmp_path_factory: pytest.TempPathFactory):
    return create_app(fuzz_settings(tmp_path_factory.mktemp("fuzz") / "conversations.sqlite3"), analyzer)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_fails_and_matches_its_spec(case, fuzz_app):
    response = case.call(app=fuzz_app)
    # Two documented rules have no JSON Schema spelling (message ids unique within a
    # transcript, an opaque cursor): a schema-valid request may break one and get its 422.
    # Only then is the "valid data must be accepted" check skipped; every other check still runs.
    excluded = [positive_data_acceptance] if _breaks_rule_without_a_schema(response) else []
    # The helpdesk webhooks read their payloads leniently, by design (docs/ingest.md): an
    # id as a number, "" for a placeholder with nothing to render, a role in any case. So
    # some bodies outside their documented schema are accepted, and only for them is the
    # "invalid data must be rejected" check skipped; schema-valid bodies must still be
    # accepted, and every other check runs.
    if case.operation.path.startswith("/v1/ingest/"):
        excluded.append(negative_data_rejection)
    case.validate_response(response, excluded_checks=excluded, transport_kwargs={"app": fuzz_app})
    assert response.status_code < 500 or response.status_code == 503, response.text
    assert response.headers.get("x-request-id")
