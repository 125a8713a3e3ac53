"""Links to a job's media: which stored file a variant names, and signed URLs to it.

``media_key(job, variant)`` maps ``video``, ``video-<n>`` and ``thumbnail`` to the
stored key (None once the media were deleted); ``MediaLinks`` signs
``/media/<job>/<variant>`` URLs that expire after ``ttl_s``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from vidgate.domain.job import Job
from vidgate.media.signing import sign_path


def media_key(job: Job, variant: str) -> str | None:
    """The storage key of a job's variant (``video``, ``thumbnail``, ``video-1``...)."""
    if job.media is None or job.media_deleted_at is not None:
        return None
    if variant == "video":
        return job.media.video_key
    if variant == "thumbnail":
        return job.media.thumbnail_key
    if variant.startswith("video-") and variant[6:].isdigit():
        index = int(variant[6:]) - 1
        extra = job.media.extra_video_keys
        return extra[index] if 0 <= index < len(extra) else None
    return None


@dataclass(frozen=True, slots=True)
class MediaLinks:
    base_url: str
    secret: bytes
    ttl_s: int

    def url(self, job: Job, variant: str = "video") -> str | None:
        if media_key(job, variant) is None:
            return None
        path = f"/media/{job.id}/{variant}{'.mp4' if variant.startswith('video') else '.jpg'}"
        expires = int(time.time()) + self.ttl_s
        return f"{self.base_url}{path}?{sign_path(path, expires_at=expires, secret=self.secret)}"

    def all_videos(self, job: Job) -> list[str]:
        if job.media is None:
            return []
        names = ["video"] + [f"video-{i + 1}" for i in range(len(job.media.extra_video_keys))]
        return [u for u in (self.url(job, n) for n in names) if u]
