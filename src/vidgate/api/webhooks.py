"""The webhook API under ``/v1``: account endpoints, the delivery log, and replays.

- ``POST /v1/webhook_endpoints`` ``{"url", "events"?, "description"?}`` -> the
  endpoint with its own ``whsec_`` secret (it signs everything sent there);
- ``GET /v1/webhook_endpoints``, ``DELETE /v1/webhook_endpoints/{id}``;
- ``GET /v1/webhook_deliveries`` (filters: ``job_id``, ``event_id``, ``event_type``,
  ``status``, ``endpoint_id``; newest first, paged with ``before``), each delivery
  with every attempt it made;
- ``POST /v1/webhook_deliveries/{id}/replay``: send a failed (or delivered)
  delivery again, now, with a fresh retry window.

Endpoints belong to the key's mode: a test key's endpoints get test jobs' events.
"""

from __future__ import annotations

import base64
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from vidgate.api.context import Svc
from vidgate.api.native import principal
from vidgate.clock import unix, utcnow
from vidgate.domain.job import Principal
from vidgate.errors import Conflict, InvalidRequest, NotFound
from vidgate.ids import new_id
from vidgate.store import delivery as store
from vidgate.store import webhook_endpoints as endpoint_store
from vidgate.store.delivery import Attempt, Delivery
from vidgate.store.webhook_endpoints import Endpoint
from vidgate.webhooks.formats import EVENT_TYPES

router = APIRouter(prefix="/v1", tags=["webhooks"])
Caller = Annotated[Principal, Depends(principal)]

MAX_ENDPOINTS = 16
REPLAYABLE = ("failed", "succeeded")


class CreateEndpoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048)
    events: list[str] = Field(default_factory=lambda: ["*"], description='Event types, or ["*"] for all')
    description: str = Field("", max_length=500)


def new_endpoint_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def endpoint_object(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "object": "webhook_endpoint",
        "url": endpoint.url,
        "events": endpoint.events,
        "secret": endpoint.secret,
        "description": endpoint.description,
        "mode": endpoint.mode,
        "created_at": unix(endpoint.created_at),
    }


def attempt_object(attempt: Attempt) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "started_at": unix(attempt.started_at),
        "duration_ms": attempt.duration_ms,
        "status_code": attempt.status_code,
        "succeeded": attempt.succeeded,
        "error": attempt.error,
        "response_body": attempt.response_body,
    }


def delivery_object(delivery: Delivery, attempts: list[Attempt]) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "object": "webhook_delivery",
        "event_id": delivery.event_public_id,
        "event_type": delivery.event_type,
        "job_id": delivery.job_id,
        "destination": "job" if delivery.endpoint_id is None else "endpoint",
        "endpoint_id": delivery.endpoint_id,
        "url": delivery.url,
        "format": delivery.format,
        "status": delivery.status,
        "attempt_count": delivery.attempts,
        "next_attempt_at": unix(delivery.next_attempt_at),
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "created_at": unix(delivery.created_at),
        "delivered_at": unix(delivery.delivered_at),
        "attempts": [attempt_object(a) for a in attempts],
    }


def _check_events(events: list[str]) -> list[str]:
    if not events:
        raise InvalidRequest('events must name at least one event type, or be ["*"]', param="events")
    unknown = [e for e in events if e != "*" and e not in EVENT_TYPES]
    if unknown:
        raise InvalidRequest(
            f"unknown event type {unknown[0]!r}; choose from {', '.join(EVENT_TYPES)} or *", param="events"
        )
    return ["*"] if "*" in events else list(dict.fromkeys(events))


@router.post("/webhook_endpoints", summary="Subscribe a URL to webhook events")
async def create_endpoint(body: CreateEndpoint, caller: Caller, svc: Svc) -> dict[str, Any]:
    events = _check_events(body.events)
    await svc.guard(body.url, "url")
    async with svc.db.transaction() as conn:
        if await endpoint_store.count_endpoints(conn, caller.account_id) >= MAX_ENDPOINTS:
            raise Conflict(
                f"an account may have at most {MAX_ENDPOINTS} webhook endpoints", code="too_many_endpoints"
            )
        endpoint = await endpoint_store.insert_endpoint(
            conn,
            id=new_id("we"),
            account_id=caller.account_id,
            mode=caller.mode,
            url=body.url,
            events=events,
            secret=new_endpoint_secret(),
            description=body.description,
            created_at=utcnow(),
        )
    return endpoint_object(endpoint)


@router.get("/webhook_endpoints", summary="List webhook endpoints")
async def list_endpoints(caller: Caller, svc: Svc) -> dict[str, Any]:
    async with svc.db.read() as conn:
        found = await endpoint_store.endpoints_of(conn, caller.account_id, caller.mode)
    return {"object": "list", "data": [endpoint_object(e) for e in found]}


@router.delete("/webhook_endpoints/{endpoint_id}", summary="Delete a webhook endpoint")
async def delete_endpoint(endpoint_id: str, caller: Caller, svc: Svc) -> dict[str, Any]:
    async with svc.db.transaction() as conn:
        endpoint = await endpoint_store.endpoint_by_id(conn, caller.account_id, endpoint_id)
        if endpoint is None or endpoint.mode != caller.mode:
            raise NotFound(f"no webhook endpoint with id {endpoint_id!r}", param="id")
        await endpoint_store.delete_endpoint(conn, caller.account_id, endpoint_id, now=utcnow())
    return {"id": endpoint_id, "object": "webhook_endpoint.deleted", "deleted": True}


@router.get("/webhook_deliveries", summary="The delivery log: every delivery and its attempts")
async def list_deliveries(
    caller: Caller,
    svc: Svc,
    job_id: str | None = None,
    event_id: str | None = None,
    event_type: str | None = None,
    status: Annotated[str | None, Query(pattern="^(pending|succeeded|failed|skipped|canceled)$")] = None,
    endpoint_id: str | None = None,
    before: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    async with svc.db.read() as conn:
        cursor = None
        if before:
            cursor = await store.delivery_by_id(conn, caller.account_id, before)
            if cursor is None:
                raise NotFound(f"no webhook delivery with id {before!r} to page before", param="before")
        page = await store.list_deliveries(
            conn,
            caller.account_id,
            caller.mode,
            limit=limit + 1,
            before=cursor,
            job_id=job_id,
            event_id=event_id,
            event_type=event_type,
            status=status,
            endpoint_id=endpoint_id,
        )
        shown = page[:limit]
        attempts = await store.attempts_of(conn, [d.id for d in shown])
    data = [delivery_object(d, attempts[d.id]) for d in shown]
    return {
        "object": "list",
        "data": data,
        "has_more": len(page) > limit,
        "next_before": shown[-1].id if len(page) > limit else None,
    }


@router.get("/webhook_deliveries/{delivery_id}", summary="One delivery and its attempts")
async def get_delivery(delivery_id: str, caller: Caller, svc: Svc) -> dict[str, Any]:
    async with svc.db.read() as conn:
        delivery = await _own_delivery(conn, caller, delivery_id)
        attempts = await store.attempts_of(conn, [delivery.id])
    return delivery_object(delivery, attempts[delivery.id])


@router.post("/webhook_deliveries/{delivery_id}/replay", summary="Send a delivery again, now")
async def replay_delivery(delivery_id: str, caller: Caller, svc: Svc) -> dict[str, Any]:
    async with svc.db.transaction() as conn:
        delivery = await _own_delivery(conn, caller, delivery_id)
        if delivery.status not in REPLAYABLE:
            why = {
                "pending": "it is still scheduled",
                "skipped": "its callback URL failed the handshake",
                "canceled": "its endpoint was deleted",
            }.get(delivery.status, delivery.status)
            raise Conflict(
                f"webhook delivery {delivery_id!r} cannot be replayed: {why}", code="invalid_state"
            )
        await store.replay_delivery(
            conn, caller.account_id, delivery_id, now=utcnow(), from_states=REPLAYABLE
        )
        fresh = await _own_delivery(conn, caller, delivery_id)
        attempts = await store.attempts_of(conn, [delivery_id])
    return delivery_object(fresh, attempts[delivery_id])


async def _own_delivery(conn: AsyncConnection, caller: Principal, delivery_id: str) -> Delivery:
    delivery = await store.delivery_by_id(conn, caller.account_id, delivery_id)
    if delivery is None or delivery.mode != caller.mode:
        raise NotFound(f"no webhook delivery with id {delivery_id!r}", param="id")
    return delivery
