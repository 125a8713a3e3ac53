"""Identifiers: random, prefixed by kind, and convertible to each dialect's id format.

A job id is ``video_`` + 32 hex digits (a UUID4). Dialects that need another shape
(Apiframe and Venice: a UUID; MiniMax: a numeric string) use the bijections below,
so any dialect can read a job created by any other.
"""

from __future__ import annotations

import secrets
import uuid

JOB_PREFIX = "video_"


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def new_job_id() -> str:
    return JOB_PREFIX + uuid.uuid4().hex


def job_hex(job_id: str) -> str | None:
    """The 32 hex digits inside a job id, or None for something else."""
    if not job_id.startswith(JOB_PREFIX):
        return None
    tail = job_id[len(JOB_PREFIX) :]
    if len(tail) != 32 or any(c not in "0123456789abcdef" for c in tail):
        return None
    return tail


def job_id_to_uuid(job_id: str) -> str:
    tail = job_hex(job_id)
    if tail is None:
        raise ValueError(f"not a job id: {job_id!r}")
    return str(uuid.UUID(hex=tail))


def job_id_from_uuid(value: str) -> str | None:
    try:
        return JOB_PREFIX + uuid.UUID(value).hex
    except (ValueError, AttributeError, TypeError):
        return None


def job_id_to_number(job_id: str) -> str:
    tail = job_hex(job_id)
    if tail is None:
        raise ValueError(f"not a job id: {job_id!r}")
    return str(int(tail, 16))


def job_id_from_number(value: str) -> str | None:
    if not value.isdigit() or len(value) > 40:
        return None
    number = int(value)
    if number >= 1 << 128:
        return None
    return JOB_PREFIX + f"{number:032x}"
