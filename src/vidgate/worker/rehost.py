"""Re-hosting an upstream's output on vidgate's own storage.

The bytes are streamed to a temporary file (never whole in memory, refused past
the size cap), probed with PyAV (refused if it is not a playable video), given a
thumbnail, and then stored. Upstream URLs die (Replicate after an hour, DashScope
and Ark after a day), so this runs as soon as the upstream says it is done.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from vidgate.domain.job import MediaInfo
from vidgate.media.keys import thumbnail_key, video_key
from vidgate.media.probe import NotAVideo, make_thumbnail, probe
from vidgate.media.storage import Storage
from vidgate.providers.base import ProviderAdapter, UpstreamOutput, UpstreamProtocolError


class OutputRefused(Exception):
    """The upstream's output is not something we will deliver (too big, not a video)."""


async def _download(
    adapter: ProviderAdapter,
    output: UpstreamOutput,
    path: Path,
    *,
    max_bytes: int,
) -> int:
    written = 0
    with path.open("wb") as handle:
        async for chunk in adapter.stream_output(output):
            written += len(chunk)
            if written > max_bytes:
                raise OutputRefused(f"the upstream's output is larger than the {max_bytes} byte limit")
            await asyncio.to_thread(handle.write, chunk)
    return written


async def rehost(
    adapter: ProviderAdapter,
    outputs: list[UpstreamOutput],
    *,
    job_id: str,
    storage: Storage,
    max_bytes: int,
) -> MediaInfo:
    """Fetch, check and store every video output; returns what was stored."""
    videos = [o for o in outputs if o.kind == "video"]
    if not videos:
        raise UpstreamProtocolError("the upstream reported success without any video output")
    keys: list[str] = []
    first: MediaInfo | None = None
    with tempfile.TemporaryDirectory(prefix="vidgate-fetch-") as folder:
        for index, output in enumerate(videos):
            path = Path(folder) / f"output-{index}.mp4"
            size = await _download(adapter, output, path, max_bytes=max_bytes)
            try:
                info = await asyncio.to_thread(probe, path)
            except NotAVideo as exc:
                raise OutputRefused(f"the upstream's output is not a playable video: {exc}") from exc
            key = video_key(job_id, index)
            await storage.put_file(key, path, content_type="video/mp4")
            keys.append(key)
            if first is None:
                thumb = Path(folder) / "thumbnail.jpg"
                await asyncio.to_thread(make_thumbnail, path, thumb)
                await storage.put_file(thumbnail_key(job_id), thumb, content_type="image/jpeg")
                first = MediaInfo(
                    video_key=key,
                    thumbnail_key=thumbnail_key(job_id),
                    duration_s=info.duration_s,
                    width=info.width,
                    height=info.height,
                    codec=info.codec,
                    bytes=size,
                )
    assert first is not None
    return MediaInfo(
        video_key=first.video_key,
        thumbnail_key=first.thumbnail_key,
        duration_s=first.duration_s,
        width=first.width,
        height=first.height,
        codec=first.codec,
        bytes=first.bytes,
        extra_video_keys=tuple(keys[1:]),
    )
