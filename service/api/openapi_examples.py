"""Examples for the OpenAPI spec, so that Swagger's "Try it out" works as shown and a
generated client's docs show real payloads: one request body per operation that takes
one, one 2xx answer per operation, and a value for each path parameter.

`install_examples` adds them to the spec the app builds; tests/api/test_openapi_contract.py
posts every request example to the app and checks every answer example against its model."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI

from service.api.openapi_responses import RESPONSE_EXAMPLES

CONVERSATION_ID = "conv-1042"
CUSTOMER_ID = "cust-7781"
EVENT_ID = "evt_0f3c2a9b8d7e4f6a1b2c3d4e5f6a7b8c"

PATH_EXAMPLES: dict[str, str] = {
    "conversation_id": CONVERSATION_ID,
    "customer_id": CUSTOMER_ID,
    "event_id": EVENT_ID,
    "topic_id": "0",
}

_TRANSCRIPT: dict[str, Any] = {
    "conversation_id": CONVERSATION_ID,
    "channel": "chat",
    "customer_id": CUSTOMER_ID,
    "language": "en",
    "metadata": {"tier": "pro"},
    "messages": [
        {
            "id": "m1",
            "role": "customer",
            "text": "I was charged twice for order 1042 and nobody has answered my emails.",
            "timestamp": "2024-06-04T09:12:00Z",
        },
        {
            "id": "m2",
            "role": "agent",
            "text": "Sorry about that! I can see the duplicate charge and have started the refund.",
            "timestamp": "2024-06-04T09:14:30Z",
        },
        {
            "id": "m3",
            "role": "customer",
            "text": "Thanks, that was quick. When will the money be back on my card?",
            "timestamp": "2024-06-04T09:15:10Z",
        },
    ],
}

# Operation id -> the JSON request body. The helpdesk bodies are what each helpdesk sends
# (docs/ingest.md); with the helpdesk's secret configured they also need its signature.
REQUEST_EXAMPLES: dict[str, Any] = {
    "analyze_transcript": _TRANSCRIPT,
    "rename_topic": {"name": "Refunds to card"},
    "merge_topics": {"topics": [4]},
    "split_topic": {
        "parts": 2,
        "texts": [
            "I was charged twice for order 1042",
            "When will the refund reach my card?",
            "The refund for my returned shoes never arrived",
            "You took the money twice this month",
        ],
    },
    "analyze_batch": {
        "transcripts": [
            _TRANSCRIPT,
            {
                "conversation_id": "conv-1043",
                "channel": "email",
                "messages": [
                    {"role": "customer", "text": "This is the third time I'm writing. Cancel my account now."}
                ],
            },
        ]
    },
    "append_message": {
        "id": "m4",
        "role": "customer",
        "text": "It's been a week and the refund still hasn't arrived. I want to speak to a manager.",
        "timestamp": "2024-06-11T08:02:00Z",
        "channel": "chat",
        "customer_id": CUSTOMER_ID,
        "language": "en",
        "metadata": {"tier": "pro"},
    },
    "ingest_zendesk": {
        "ticket_id": "35436",
        "comment_id": "54509363035291",
        "comment_public": "true",
        "author_role": "End-user",
        "body": "Hi, I was charged twice for order 1042 and nobody has answered my last two emails.",
        "requester_id": "20978392",
        "via": "Mail",
        "priority": "High",
        "status": "Open",
        "tags": "billing vip",
        "updated_at": "2024-05-25T01:23:45Z",
        "metadata": {"organization": "Acme Corp", "tier": "enterprise"},
    },
    "ingest_intercom": {
        "type": "notification_event",
        "topic": "conversation.user.created",
        "id": "notif_7d1b2f40-2a8c-4c3e-9d65-0f3f6a1c2b11",
        "created_at": 1717495201,
        "data": {
            "type": "notification_event_data",
            "item": {
                "type": "conversation",
                "id": "147000001",
                "created_at": 1717495200,
                "updated_at": 1717495200,
                "source": {
                    "type": "conversation",
                    "id": "403918330",
                    "delivered_as": "customer_initiated",
                    "body": "<p>Hi! The app logs me out every time I open it since yesterday&#39;s update.</p>",
                    "author": {"type": "user", "id": "6650a1c2e3b4d5e6f7a8b9c0", "name": "Jamie Doe"},
                },
                "contacts": {
                    "type": "contact.list",
                    "contacts": [{"type": "contact", "id": "6650a1c2e3b4d5e6f7a8b9c0", "external_id": CUSTOMER_ID}],
                },
                "state": "open",
                "priority": "not_priority",
                "tags": {"type": "tag.list", "tags": [{"type": "tag", "id": "81", "name": "mobile"}]},
                "custom_attributes": {"tier": "pro"},
                "conversation_parts": {"type": "conversation_part.list", "conversation_parts": [], "total_count": 0},
            },
        },
    },
    "ingest_freshdesk": {
        "ticket_id": "4821",
        "event": "customer_reply",
        "author_role": "customer",
        "body": "<div>Escalated again? I'm cancelling my account if the money isn't back by Friday.</div>",
        "requester_email": "jamie.doe@example.com",
        "source": "Email",
        "priority": "High",
        "status": "Open",
        "tags": "billing,refund",
        "metadata": {"company": "Acme Corp", "plan": "business"},
    },
}


def add_examples(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` with the examples above on its operations (in place; also returned)."""
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "operationId" not in operation:
                continue
            operation_id = operation["operationId"]
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path" and parameter.get("name") in PATH_EXAMPLES:
                    parameter["example"] = PATH_EXAMPLES[parameter["name"]]
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None and operation_id in REQUEST_EXAMPLES:
                body["example"] = copy.deepcopy(REQUEST_EXAMPLES[operation_id])
            for status, response in operation.get("responses", {}).items():
                media = response.get("content", {}).get("application/json")
                if str(status).startswith("2") and media is not None and operation_id in RESPONSE_EXAMPLES:
                    media["example"] = copy.deepcopy(RESPONSE_EXAMPLES[operation_id])
    return spec


def install_examples(app: FastAPI) -> None:
    """Have `app.openapi()` return its spec with the examples (built once, then cached)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_examples(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
