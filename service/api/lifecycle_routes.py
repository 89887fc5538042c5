"""Stored conversations as a whole: listing them (a queue page), deleting one, and erasing
every conversation of a customer. Reads and deletes run in FastAPI's thread pool (plain
`def` handlers), never on the event loop; none of them touches the models."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from starlette.convertors import Convertor, register_url_convertor

from nlp.schemas import CUSTOMER_ID_PATTERN
from service.api.errors import ApiError, ErrorResponse
from service.api.pagination import encode_cursor
from service.api.routes import ConversationId, StoreDep
from service.api.schemas import (
    ConversationList,
    ConversationListItem,
    ConversationListQuery,
    ErasureResponse,
    ListedEscalation,
)
from service.metrics import record_deletions
from service.store import ConversationFilter, ConversationListing

router = APIRouter()


class AnyTextConvertor(Convertor[str]):
    """A path segment that may hold anything, `/` and line breaks included (Starlette's
    `path` stops at a line break): a customer id is free text, and erasure must reach every
    one. Empty too, so that an empty id is the handler's clear 422 rather than a 404."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anytext", AnyTextConvertor())

CustomerId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=256,
        pattern=CUSTOMER_ID_PATTERN,
        description="The customer id the conversations were stored with",
    ),
]


@router.get("/v1/conversations", response_model=ConversationList, tags=["conversations"])
def list_conversations(query: Annotated[ConversationListQuery, Query()], store: StoreDep) -> ConversationList:
    """Stored conversations, newest change first, without their messages: id, channel,
    customer, message count and escalation level, route and rules. Filters combine; pages
    follow `next_cursor`."""
    where = ConversationFilter(
        min_level=query.min_level,
        channel=query.channel.value if query.channel else None,
        customer_id=query.customer_id,
        updated_since=query.updated_since,
    )
    listings, next_position = store.list_conversations(where, limit=query.limit, after=query.position)
    return ConversationList(
        items=[_item(listing) for listing in listings],
        next_cursor=encode_cursor(next_position) if next_position else None,
    )


@router.delete(
    "/v1/conversations/{conversation_id}",
    status_code=204,
    response_class=Response,
    tags=["conversations"],
    responses={404: {"model": ErrorResponse, "description": "Unknown conversation"}},
)
def delete_conversation(conversation_id: ConversationId, store: StoreDep) -> Response:
    """Delete a conversation and its messages, from the database file and from memory. A
    message posted to the same id afterwards starts a new conversation."""
    if not store.delete(conversation_id):
        raise ApiError(404, "not_found", f"no conversation {conversation_id!r}")
    record_deletions(1, reason="delete")
    return Response(status_code=204)


@router.post("/v1/customers/{customer_id:anytext}/erase", response_model=ErasureResponse, tags=["erasure"])
def erase_customer(customer_id: CustomerId, store: StoreDep) -> ErasureResponse:
    """Delete every conversation stored with this customer id, with its messages, from the
    database file and from memory; answers how many (0 when there were none)."""
    deleted = store.delete_customer(customer_id)
    record_deletions(deleted, reason="erase")
    return ErasureResponse(customer_id=customer_id, conversations_deleted=deleted)


def _item(listing: ConversationListing) -> ConversationListItem:
    return ConversationListItem(
        conversation_id=listing.id,
        channel=listing.channel,
        customer_id=listing.customer_id,
        language=listing.language,
        metadata=listing.metadata,
        created_at=listing.created_at,
        updated_at=listing.updated_at,
        message_count=listing.message_count,
        escalation=ListedEscalation(
            level=listing.escalation_level, route_to=listing.escalation_route, rules=listing.escalation_rules
        ),
    )
