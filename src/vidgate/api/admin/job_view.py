"""A job as the operator sees it: every field, every public id, and its money."""

from __future__ import annotations

from typing import Any

from vidgate.api.dialects import _minimax_ids
from vidgate.domain.job import Job
from vidgate.ids import job_hex, job_id_to_uuid
from vidgate.money import format_usd
from vidgate.store.attempts import Attempt
from vidgate.store.delivery import Attempt as WebhookAttempt
from vidgate.store.delivery import Delivery
from vidgate.store.events import Event
from vidgate.store.job_search import UpstreamCost


def _usd(micros: int | None) -> str | None:
    return format_usd(micros) if micros is not None else None


def _at(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def public_ids(job: Job) -> dict[str, str]:
    """The id each dialect's clients quote for this job."""
    if job_hex(job.id) is None:
        return {"native": job.id}
    return {
        "native": job.id,  # also Thalam's task_id and Kyma's job id
        "uuid": job_id_to_uuid(job.id),  # Venice's queue_id, Apiframe's jobId
        "minimax_task_id": _minimax_ids.task_id(job.id),
    }


def job_summary(job: Job) -> dict[str, Any]:
    """One row of a search."""
    return {
        "id": job.id,
        "account_id": job.account_id,
        "key_id": job.key_id,
        "mode": job.mode,
        "dialect": job.dialect,
        "model": job.model,
        "status": job.status.value,
        "progress": job.progress,
        "provider": job.provider,
        "upstream_model": job.upstream_model,
        "upstream_id": job.upstream_id,
        "estimated": format_usd(job.estimated_micros),
        "charged": _usd(job.charged_micros),
        "error": {"code": job.error_code, "message": job.error_message} if job.error_code else None,
        "created_at": job.created_at.isoformat(),
        "completed_at": _at(job.completed_at),
    }


def job_detail(job: Job) -> dict[str, Any]:
    return {
        **job_summary(job),
        "public_ids": public_ids(job),
        "request": job.request.model_dump(mode="json"),
        "metadata": job.metadata,
        "webhook_url": job.webhook_url,
        "route_index": job.route_index,
        "attempts": job.attempts,
        "upstream_request_id": job.upstream_request_id,
        "upstream_status": job.upstream_status,
        "media": job.media.to_json() if job.media else None,
        "media_expires_at": _at(job.media_expires_at),
        "media_deleted_at": _at(job.media_deleted_at),
        "deleted_at": _at(job.deleted_at),
        "updated_at": job.updated_at.isoformat(),
        "deadline_at": job.deadline_at.isoformat(),
        "run_at": _at(job.run_at),
        "lease_owner": job.lease_owner,
        "lease_expires_at": _at(job.lease_expires_at),
    }


def money(job: Job, cost: UpstreamCost, refunded: int) -> dict[str, Any]:
    """What the job held, charged and was refunded, what the upstream cost, and the margin.

    ``margin`` is charged minus upstream cost (None while either is unknown);
    ``net_margin`` also takes the operator's refunds off.
    """
    charged = job.charged_micros
    margin = charged - cost.micros if charged is not None and cost.micros is not None else None
    return {
        "estimated": format_usd(job.estimated_micros),
        "held": format_usd(job.held_micros),
        "charged": _usd(charged),
        "charged_micros": charged,
        "released": format_usd(job.refunded_micros),
        "refunded": format_usd(refunded),
        "refunded_micros": refunded,
        "refundable": format_usd(max(0, (charged or 0) - refunded)),
        "refundable_micros": max(0, (charged or 0) - refunded),
        "upstream_cost": _usd(cost.micros),
        "upstream_cost_micros": cost.micros,
        "upstream_cost_estimate": _usd(cost.estimate_micros),
        "upstream_cost_reported": _usd(cost.reported_micros),
        "upstream_cost_units": cost.units,
        "upstream_cost_source": cost.source,
        "margin": _usd(margin),
        "margin_micros": margin,
        "net_margin": _usd(margin - refunded) if margin is not None else None,
    }


def event_json(event: Event) -> dict[str, Any]:
    return {
        "id": event.public_id,
        "type": event.type,
        "payload": event.payload,
        "created_at": _at(event.created_at),
    }


def attempt_json(attempt: Attempt) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "provider": attempt.provider,
        "route_index": attempt.route_index,
        "upstream_model": attempt.upstream_model,
        "outcome": attempt.outcome,
        "upstream_id": attempt.upstream_id,
        "error": {"code": attempt.error_code, "message": attempt.error_message}
        if attempt.error_code
        else None,
        "possible_duplicate": attempt.possible_duplicate,
        "started_at": _at(attempt.started_at),
        "ended_at": _at(attempt.ended_at),
    }


def delivery_json(delivery: Delivery, attempts: list[WebhookAttempt]) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "event_type": delivery.event_type,
        "destination": delivery.destination,
        "url": delivery.url,
        "format": delivery.format,
        "status": delivery.status,
        "attempts": [
            {
                "number": a.number,
                "started_at": _at(a.started_at),
                "duration_ms": a.duration_ms,
                "status_code": a.status_code,
                "succeeded": a.succeeded,
                "error": a.error,
                "response_body": (a.response_body or "")[:500] or None,
            }
            for a in attempts
        ],
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "created_at": _at(delivery.created_at),
        "delivered_at": _at(delivery.delivered_at),
    }
