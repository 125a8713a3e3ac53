"""Input images: the four accepted formats, refusals, and decompression bombs caught by header."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from vidgate.media.probe import IMAGE_CONTENT_TYPES, check_image


def encoded(fmt: str, size: tuple[int, int] = (30, 20), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, 120).save(buffer, format=fmt)
    return buffer.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` (what a bomb looks like)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("fmt", "name"), [("JPEG", "jpeg"), ("PNG", "png"), ("WEBP", "webp"), ("GIF", "gif")]
)
def test_accepted_formats(fmt: str, name: str) -> None:
    assert check_image(encoded(fmt)) == (name, 30, 20)
    assert name in IMAGE_CONTENT_TYPES


def test_rgba_png_and_palette_gif() -> None:
    assert check_image(encoded("PNG", (7, 9), "RGBA")) == ("png", 7, 9)
    assert check_image(encoded("GIF", (5, 3), "P")) == ("gif", 5, 3)


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "ICO"])
def test_other_image_formats_are_refused(fmt: str) -> None:
    with pytest.raises(ValueError, match="JPEG, PNG, WebP or GIF"):
        check_image(encoded(fmt, (16, 16)))


@pytest.mark.parametrize(
    "data",
    [b"", b"hello world", b"\x89PNG\r\n\x1a\n", b"<svg xmlns='http://www.w3.org/2000/svg'/>"],
)
def test_non_images_are_refused(data: bytes) -> None:
    with pytest.raises(ValueError):
        check_image(data)


def test_a_video_is_not_an_image() -> None:
    from vidgate.testing.fake import sample_mp4

    with pytest.raises(ValueError):
        check_image(sample_mp4(1))


def test_too_many_bytes() -> None:
    data = encoded("PNG", (200, 200))
    with pytest.raises(ValueError, match="bytes"):
        check_image(data, max_bytes=len(data) - 1)
    assert check_image(data, max_bytes=len(data))[0] == "png"


def test_too_many_pixels_by_header() -> None:
    with pytest.raises(ValueError, match="pixels"):
        check_image(png_header(8000, 6000))  # 48 MP, over the 40 MP default
    with pytest.raises(ValueError, match="pixels"):
        check_image(encoded("PNG", (100, 100)), max_pixels=9_999)


def test_decompression_bomb_header() -> None:
    bomb = png_header(100_000, 100_000)
    assert len(bomb) < 200
    with pytest.raises(ValueError):
        check_image(bomb)


def test_corrupt_png_is_refused() -> None:
    data = bytearray(encoded("PNG", (40, 40)))
    data[40] ^= 0xFF  # inside the image data: the CRC no longer matches
    with pytest.raises(ValueError):
        check_image(bytes(data))


def test_truncated_jpeg_is_refused() -> None:
    with pytest.raises(ValueError):
        check_image(encoded("JPEG", (64, 64))[:40])
