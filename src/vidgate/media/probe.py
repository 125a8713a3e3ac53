"""Knowing what a media file is before we keep it: probe videos, make thumbnails, vet images.

- ``probe`` opens a file with PyAV and answers its duration, size, codec and container,
  or raises ``NotAVideo`` when it is not a playable video: garbage, an empty file, a
  still image (even one FFmpeg can read as a one-frame "video"), audio only, or a video
  stream with no frame that decodes.
- ``make_thumbnail`` writes a JPEG of a frame near 1 s (mid-clip for short clips).
- ``check_image`` vets an uploaded input image (JPEG, PNG, WebP, GIF) from its header,
  so a decompression bomb is refused before any pixel is decoded.

All three are blocking; async callers run them in a thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

if TYPE_CHECKING:  # PyAV is imported where a video is opened: an API process never loads it
    import av

__all__ = [
    "IMAGE_CONTENT_TYPES",
    "MediaInfo",
    "NotAVideo",
    "check_image",
    "make_thumbnail",
    "probe",
]

#: The image formats ``check_image`` accepts, by the name it returns.
IMAGE_CONTENT_TYPES = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
}
_PILLOW_FORMATS = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}

# Demuxers that read a picture as a one-frame "video" (``*_pipe`` covers png, jpeg, webp...).
_IMAGE_DEMUXERS = frozenset({"image2", "gif", "apng", "webp"})
# Decoders that only ever carry pictures (mjpeg and png are left out: both also appear
# as real video codecs inside mov/avi files).
_IMAGE_CODECS = frozenset({"gif", "webp", "bmp", "tiff", "ppm", "pgm", "pam", "apng"})


class NotAVideo(Exception):
    """The file is not a playable video (the message says why)."""


@dataclass(frozen=True)
class MediaInfo:
    """What ``probe`` learnt about a video file."""

    duration_s: float
    width: int
    height: int
    codec: str  # decoder name, e.g. "h264", "hevc", "vp9", "av1"
    container: str  # e.g. "mp4", "mov", "matroska", "webm"
    bytes: int


def probe(path: Path) -> MediaInfo:
    """Describe the video at ``path``; raise ``NotAVideo`` if it is not one.

    A missing file raises ``FileNotFoundError`` (that is a bug, not bad media).
    """
    import av

    size = path.stat().st_size
    if size == 0:
        raise NotAVideo("the file is empty")
    try:
        with av.open(str(path), mode="r") as container:
            if not container.streams.video:
                raise NotAVideo("the file has no video stream")
            stream = container.streams.video[0]
            codec = stream.codec_context.name
            format_name = container.format.name
            if codec in _IMAGE_CODECS or _is_image_demuxer(format_name):
                raise NotAVideo(f"the file is a still image ({codec}), not a video")
            first = next(iter(container.decode(stream)), None)
            if first is None:
                raise NotAVideo("the video stream has no decodable frame")
            duration = _duration_s(container, stream)
            return MediaInfo(
                duration_s=duration,
                width=first.width,
                height=first.height,
                codec=codec,
                container=_container_name(format_name, container.metadata),
                bytes=size,
            )
    except NotAVideo:
        raise
    except (av.FFmpegError, ValueError, IndexError, UnicodeDecodeError) as exc:
        raise NotAVideo(f"the file is not a readable video ({_reason(exc)})") from exc


def make_thumbnail(video: Path, out: Path, *, max_width: int = 640) -> None:
    """Write a JPEG of one frame of ``video`` to ``out``, at most ``max_width`` wide.

    The frame is taken near 1 s in, or from the middle of clips shorter than 2 s. The
    aspect ratio is kept (including a non-square sample aspect ratio). Raises
    ``NotAVideo`` when no frame can be decoded.
    """
    import av

    if max_width < 1:
        raise ValueError("max_width must be at least 1")
    try:
        with av.open(str(video), mode="r") as container:
            if not container.streams.video:
                raise NotAVideo("the file has no video stream")
            stream = container.streams.video[0]
            # One frame is wanted: decode on this thread. FFmpeg's default (a thread per
            # core, each with its own frames in flight) costs memory per core for nothing.
            stream.thread_type = "NONE"
            stream.codec_context.thread_count = 1
            duration = _duration_s(container, stream)
            target = 1.0 if duration >= 2.0 else duration / 2
            frame = _frame_near(container, stream, target)
            if frame is None:
                raise NotAVideo("the video stream has no decodable frame")
            image: Image.Image = frame.to_image()  # type: ignore[no-untyped-call]
            ratio = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    except NotAVideo:
        raise
    except (av.FFmpegError, ValueError, IndexError, UnicodeDecodeError) as exc:
        raise NotAVideo(f"the file is not a readable video ({_reason(exc)})") from exc
    display_width = image.width
    if ratio is not None and ratio > 0 and ratio != 1:
        display_width = max(1, round(image.width * ratio))
    width = min(max_width, display_width)
    height = max(1, round(image.height * width / display_width))
    if (width, height) != image.size:
        image = image.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=2.0)
    image.convert("RGB").save(out, format="JPEG", quality=85, optimize=True)


def check_image(
    data: bytes, *, max_bytes: int = 20_000_000, max_pixels: int = 40_000_000
) -> tuple[str, int, int]:
    """Vet an input image; return ``(format, width, height)`` or raise ``ValueError``.

    ``format`` is one of ``IMAGE_CONTENT_TYPES``' keys. The size and dimensions are
    checked from the header before anything is decoded, then the file is verified.
    """
    if not data:
        raise ValueError("the image is empty")
    if len(data) > max_bytes:
        raise ValueError(f"the image is {len(data)} bytes; the limit is {max_bytes} bytes")
    with warnings.catch_warnings():
        # Our own limit applies below; Pillow's bomb warning would only be noise.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=list(_PILLOW_FORMATS)) as image:
                name = _PILLOW_FORMATS.get(image.format or "")
                width, height = image.size
                if name is None:
                    raise ValueError(f"unsupported image format {image.format}")
                if width < 1 or height < 1:
                    raise ValueError("the image has no pixels")
                if width * height > max_pixels:
                    raise ValueError(
                        f"the image is {width}x{height} pixels; the limit is {max_pixels} pixels"
                    )
                image.verify()
        except Image.DecompressionBombError as exc:
            raise ValueError(f"the image is too large to decode safely: {exc}") from exc
        except ValueError:
            raise
        except (OSError, SyntaxError, EOFError) as exc:
            raise ValueError("not a valid JPEG, PNG, WebP or GIF image") from exc
    return name, width, height


def _reason(exc: Exception) -> str:
    """FFmpeg's words for what went wrong, without the file's path."""
    strerror = getattr(exc, "strerror", None)
    return str(strerror) if strerror else type(exc).__name__


def _is_image_demuxer(format_name: str) -> bool:
    names = format_name.split(",")
    return any(n in _IMAGE_DEMUXERS or n.endswith("_pipe") for n in names)


def _container_name(format_name: str, metadata: dict[str, str]) -> str:
    """A short container name: the MP4 family is told apart by its major brand."""
    if format_name.startswith("mov,mp4"):
        brand = metadata.get("major_brand", "").strip().lower()
        return "mov" if brand == "qt" else "mp4"
    if format_name.startswith("matroska"):
        return "matroska"
    return format_name.split(",")[0]


def _duration_s(container: av.container.InputContainer, stream: av.VideoStream) -> float:
    """Container duration, else the stream's, else frames / rate; 0.0 when nobody says."""
    import av

    if container.duration is not None and container.duration > 0:
        return float(container.duration / av.time_base)
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    rate = stream.average_rate or stream.base_rate
    if stream.frames and rate:
        return float(stream.frames / Fraction(rate))
    return 0.0


def _frame_near(
    container: av.container.InputContainer, stream: av.VideoStream, target_s: float
) -> av.VideoFrame | None:
    """The first frame at or after ``target_s`` (or the last one before the end)."""
    import av

    if target_s > 0 and stream.time_base is not None:
        try:
            container.seek(int(target_s / stream.time_base), stream=stream, backward=True)
        except av.FFmpegError:
            container.seek(0)
    last: av.VideoFrame | None = None
    for frame in container.decode(stream):
        last = frame
        if frame.time is None or frame.time >= target_s:
            return frame
    return last
