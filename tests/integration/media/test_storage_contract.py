"""The Storage contract, run against every backend (local folder and S3 on moto)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest

from vidgate.media.storage import (
    CHUNK_SIZE,
    InvalidRange,
    ObjectNotFound,
    Storage,
    TooLarge,
)

# Several read chunks, under one multipart part. Seeded, so every pytest-xdist worker
# collects the same parametrised test ids.
DATA = random.Random(7).randbytes(700_000)


async def chunks_of(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


async def from_list(parts: Iterable[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def read_all(storage: Storage, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in storage.open_range(key, start, end)])


def test_storage_is_a_storage(storage: Storage) -> None:
    assert isinstance(storage, Storage)


async def test_put_stream_round_trip(storage: Storage) -> None:
    stored = await storage.put_stream("outputs/job-1/video.mp4", chunks_of(DATA), content_type="video/mp4")
    assert stored == len(DATA)
    assert await storage.size("outputs/job-1/video.mp4") == len(DATA)
    pieces = [chunk async for chunk in storage.open_range("outputs/job-1/video.mp4")]
    assert b"".join(pieces) == DATA
    assert len(pieces) > 1
    assert all(0 < len(piece) <= CHUNK_SIZE for piece in pieces)


async def test_put_file_round_trip(storage: Storage, tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(DATA)
    assert await storage.put_file("inputs/a.bin", source, content_type="application/octet-stream") == len(
        DATA
    )
    assert await read_all(storage, "inputs/a.bin") == DATA
    assert source.read_bytes() == DATA  # a copy, the source stays


async def test_overwrite_replaces(storage: Storage) -> None:
    await storage.put_stream("k/v", from_list([b"old content"]), content_type="text/plain")
    await storage.put_stream("k/v", from_list([b"new"]), content_type="text/plain")
    assert await read_all(storage, "k/v") == b"new"
    assert await storage.size("k/v") == 3


async def test_empty_object(storage: Storage) -> None:
    assert await storage.put_stream("empty", from_list([]), content_type="text/plain") == 0
    assert await storage.size("empty") == 0
    assert await read_all(storage, "empty") == b""
    assert await read_all(storage, "empty", -10) == b""


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, 9, DATA[:10]),
        (5, 5, DATA[5:6]),
        (100, None, DATA[100:]),  # open-ended
        (-1000, None, DATA[-1000:]),  # suffix
        (-(len(DATA) + 50), None, DATA),  # suffix longer than the object
        (len(DATA) - 3, len(DATA) + 1000, DATA[-3:]),  # end clipped
        (300_000, 600_000, DATA[300_000:600_001]),  # spans several chunks
    ],
)
async def test_ranges(storage: Storage, start: int, end: int | None, expected: bytes) -> None:
    await storage.put_stream("r/data.bin", chunks_of(DATA), content_type="application/octet-stream")
    pieces = [chunk async for chunk in storage.open_range("r/data.bin", start, end)]
    assert b"".join(pieces) == expected
    assert all(len(piece) <= CHUNK_SIZE for piece in pieces)


@pytest.mark.parametrize(("start", "end"), [(len(DATA), None), (10, 5), (-5, 10)])
async def test_unsatisfiable_ranges(storage: Storage, start: int, end: int | None) -> None:
    await storage.put_stream("r/data.bin", chunks_of(DATA), content_type="application/octet-stream")
    with pytest.raises(InvalidRange):
        await read_all(storage, "r/data.bin", start, end)


async def test_missing_object(storage: Storage) -> None:
    assert await storage.size("nope/missing.mp4") is None
    with pytest.raises(ObjectNotFound):
        await read_all(storage, "nope/missing.mp4")
    with pytest.raises(FileNotFoundError):  # ObjectNotFound is one
        await read_all(storage, "nope/missing.mp4", 10, 20)
    await storage.delete("nope/missing.mp4")  # no error


async def test_delete(storage: Storage) -> None:
    await storage.put_stream("d/x.bin", from_list([b"abc"]), content_type="text/plain")
    await storage.delete("d/x.bin")
    assert await storage.size("d/x.bin") is None
    await storage.delete("d/x.bin")


async def test_delete_prefix_is_by_folder(storage: Storage) -> None:
    keys = [
        "jobs/1/video.mp4",
        "jobs/1/thumbs/a.jpg",
        "jobs/1/thumbs/b.jpg",
        "jobs/10/video.mp4",
        "other/x",
    ]
    for key in keys:
        await storage.put_stream(key, from_list([key.encode()]), content_type="text/plain")
    assert await storage.delete_prefix("jobs/1") == 3
    assert [await storage.size(key) for key in keys] == [None, None, None, 17, 7]
    assert await storage.delete_prefix("jobs/10/") == 1
    assert await storage.size("jobs/10/video.mp4") is None
    assert await storage.delete_prefix("jobs/nothing-here") == 0
    assert await storage.size("other/x") == 7


async def test_delete_prefix_refuses_everything(storage: Storage) -> None:
    for prefix in ("", "/", "../", "a/../b"):
        with pytest.raises(ValueError):
            await storage.delete_prefix(prefix)


async def test_too_large_leaves_nothing(storage: Storage) -> None:
    with pytest.raises(TooLarge) as caught:
        await storage.put_stream("big/file.bin", chunks_of(DATA), content_type="video/mp4", max_bytes=100_000)
    assert caught.value.max_bytes == 100_000
    assert await storage.size("big/file.bin") is None


async def test_too_large_keeps_the_previous_object(storage: Storage) -> None:
    await storage.put_stream("big/file.bin", from_list([b"previous"]), content_type="video/mp4")
    with pytest.raises(TooLarge):
        await storage.put_stream("big/file.bin", chunks_of(DATA), content_type="video/mp4", max_bytes=1000)
    assert await read_all(storage, "big/file.bin") == b"previous"


async def test_exactly_max_bytes_is_allowed(storage: Storage) -> None:
    stored = await storage.put_stream(
        "edge", chunks_of(DATA[:5000]), content_type="video/mp4", max_bytes=5000
    )
    assert stored == 5000
    assert await storage.size("edge") == 5000


async def test_a_failing_stream_leaves_nothing(storage: Storage) -> None:
    class Broken(Exception):
        pass

    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * 100_000
        raise Broken

    with pytest.raises(Broken):
        await storage.put_stream("broken/file", broken(), content_type="video/mp4")
    assert await storage.size("broken/file") is None


@pytest.mark.parametrize(
    "key",
    [
        "",
        "../etc/passwd",
        "a/../../b",
        "/etc/passwd",
        "a\\b",
        "a//b",
        "a/",
        "./a",
        ".tmp/x",
        "a/.hidden",
        "a\x00b",
        "a\nb",
    ],
)
async def test_unsafe_keys_are_refused(storage: Storage, key: str) -> None:
    with pytest.raises(ValueError):
        await storage.put_stream(key, from_list([b"x"]), content_type="text/plain")
    with pytest.raises(ValueError):
        await read_all(storage, key)
    with pytest.raises(ValueError):
        await storage.size(key)
    with pytest.raises(ValueError):
        await storage.delete(key)
