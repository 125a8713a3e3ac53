"""The native video object: a job as the OpenAI Videos API (and vidgate's extensions) shows it.

The native API answers with it, and the standard webhook carries it as ``data``.
OpenAI clients read ``id, object, status, progress, model, seconds, size,
created_at, completed_at, expires_at, error, remixed_from_video_id, prompt``;
everything else is vidgate's extension and is ignored by the SDK.
"""

from __future__ import annotations

from typing import Any

from vidgate.clock import unix
from vidgate.domain.frames import frame_size
from vidgate.domain.job import Job
from vidgate.domain.states import JobStatus
from vidgate.money import format_usd

OPENAI_STATUS = {
    JobStatus.QUEUED: "queued",
    JobStatus.SUBMITTING: "queued",
    JobStatus.RUNNING: "in_progress",
    JobStatus.FETCHING: "in_progress",
    JobStatus.SUCCEEDED: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.EXPIRED: "failed",
    JobStatus.CANCELED: "failed",
}


def video_object(job: Job, links: Any) -> dict[str, Any]:
    """The job as the native API (and the OpenAI SDK) shows it."""
    req = job.request
    width, height = (
        (job.media.width, job.media.height) if job.media else frame_size(req.resolution, req.aspect_ratio)
    )
    error = None
    if job.error_message:
        error = {"code": job.error_code or "failed", "message": job.error_message}
    return {
        "id": job.id,
        "object": "video",
        "status": OPENAI_STATUS[job.status],
        "progress": job.progress,
        "model": job.model,
        "prompt": req.prompt,
        "seconds": str(req.duration_s or 0),
        "size": f"{width}x{height}",
        "created_at": unix(job.created_at),
        "completed_at": unix(job.completed_at),
        "expires_at": unix(job.media_expires_at) if job.media and not job.media_deleted_at else None,
        "error": error,
        "remixed_from_video_id": job.remixed_from,
        # vidgate extensions
        "vidgate_status": job.status.value,
        "mode": job.mode,
        "dialect": job.dialect,
        "duration": req.duration_s,
        "resolution": req.resolution,
        "aspect_ratio": req.aspect_ratio,
        "audio": req.audio,
        "metadata": job.metadata,
        "cost": {
            "currency": "usd",
            "estimated": format_usd(job.estimated_micros),
            "held": format_usd(job.held_micros) if not job.terminal else "0.00",
            "charged": format_usd(job.charged_micros) if job.charged_micros is not None else None,
            "refunded": format_usd(job.refunded_micros) if job.terminal else None,
        },
        "video_url": links.url(job, "video"),
        "thumbnail_url": links.url(job, "thumbnail"),
        "media": (
            {
                "duration_s": job.media.duration_s,
                "width": job.media.width,
                "height": job.media.height,
                "codec": job.media.codec,
                "bytes": job.media.bytes,
                "deleted": job.media_deleted_at is not None,
            }
            if job.media
            else None
        ),
        "upstream": {"provider": job.provider, "request_id": job.upstream_request_id}
        if job.provider
        else None,
    }
