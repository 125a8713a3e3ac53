"""Where a job's media live in storage: the one place that knows the key layout.

Every file of a job sits under ``videos/<job id>/``: ``video.mp4`` (the first take),
``video-<n>.mp4`` (further takes), ``thumbnail.jpg``. Re-hosting writes these keys,
media routes read them, and retention and deletion remove the whole prefix.
"""

from __future__ import annotations


def job_prefix(job_id: str) -> str:
    """The folder holding every file of one job (ends with ``/``)."""
    return f"videos/{job_id}/"


def video_key(job_id: str, index: int = 0) -> str:
    """The key of the job's ``index``-th take (0 is the main video)."""
    name = "video.mp4" if index == 0 else f"video-{index}.mp4"
    return job_prefix(job_id) + name


def thumbnail_key(job_id: str) -> str:
    return job_prefix(job_id) + "thumbnail.jpg"
