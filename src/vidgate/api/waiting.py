"""Fewer polls on the native API: ``Prefer: wait=N``, ``ETag`` / ``If-None-Match``.

- ``Prefer: wait=N`` (RFC 7240, with Replicate's reading: N seconds, 1 to 60; a bare
  ``wait`` is 60; more than 60 is 60) on create and retrieve holds the answer until the
  job has ended or N seconds have passed, and says ``Preference-Applied: wait=N``. A
  malformed or zero ``wait`` is ignored, as RFC 7240 asks of a preference a server
  cannot apply: the answer comes at once, without ``Preference-Applied``.
- Retrieve carries a weak ``ETag`` (``service.waiting.job_version``); ``If-None-Match``
  naming it answers 304 with no body.
- Both together are a long poll: ``If-None-Match: <etag>`` plus ``Prefer: wait=N`` holds
  the answer until the job CHANGES from that ETag (any state or progress change, or its
  end) or N seconds pass, then answers 200 with the new object, or 304 if nothing changed.

While it waits a request holds no database connection and uses no CPU (it sleeps on
the job's wake-up from ``store.changes``).
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import Response

from vidgate.domain.job import Job, Principal
from vidgate.service.jobs import JobService
from vidgate.service.waiting import MAX_WAIT_S, job_version, until_changed_from, until_terminal, wait_for
from vidgate.store.changes import JobChanges

PREFER_DESCRIPTION = (
    "`wait=N` (1-60 s; bare `wait` is 60): answer when the video has ended, or after N seconds."
    " With `If-None-Match` (retrieve): answer when it changed from that ETag, or after N seconds."
)
IF_NONE_MATCH_DESCRIPTION = "An ETag from an earlier retrieve: 304 with no body while it still matches."


def prefer_wait(values: Iterable[str]) -> int | None:
    """The ``wait`` preference of the ``Prefer`` header(s), capped at 60; None if absent or malformed."""
    for value in values:
        for preference in value.split(","):
            token, _, param = preference.split(";", 1)[0].partition("=")
            if token.strip().lower() != "wait":
                continue
            raw = param.strip().strip('"')
            if not raw:
                return MAX_WAIT_S
            if not raw.isascii() or not raw.isdigit() or len(raw) > 6:
                return None
            seconds = int(raw)
            return min(seconds, MAX_WAIT_S) if seconds > 0 else None
    return None


def etag(job: Job) -> str:
    return f'W/"{job_version(job)}"'


def matches(if_none_match: str | None, job: Job) -> bool:
    """Whether ``If-None-Match`` names the job's current ETag (weak comparison, or ``*``)."""
    if not if_none_match:
        return False
    current = job_version(job)
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*":
            return True
        tag = tag.removeprefix("W/").strip('"')
        if tag == current:
            return True
    return False


def not_modified(job: Job, headers: dict[str, str]) -> Response:
    return Response(status_code=304, headers={"ETag": etag(job), **headers})


async def waited_retrieve(
    jobs: JobService,
    changes: JobChanges,
    caller: Principal,
    video_id: str,
    *,
    wait_s: int | None,
    if_none_match: str | None,
) -> tuple[Job, bool]:
    """The job to answer a retrieve with, after any wait; and whether that answer is 304."""
    job = await jobs.get(caller, video_id)
    if wait_s and not job.terminal:
        fresh = matches(if_none_match, job)
        if fresh or not if_none_match:
            done = until_changed_from(job_version(job)) if fresh else until_terminal
            job = await wait_for(jobs, changes, caller, video_id, done, timeout_s=wait_s)
    return job, matches(if_none_match, job)


async def waited_create(
    jobs: JobService, changes: JobChanges, caller: Principal, job: Job, *, wait_s: int | None
) -> Job:
    """After a create with ``Prefer: wait``: the job once it has ended, or after the wait."""
    if not wait_s or job.terminal:
        return job
    return await wait_for(jobs, changes, caller, job.id, until_terminal, timeout_s=wait_s)


def applied(wait_s: int | None) -> dict[str, str]:
    """``Preference-Applied`` for a wait that was honoured."""
    return {"Preference-Applied": f"wait={wait_s}"} if wait_s else {}
