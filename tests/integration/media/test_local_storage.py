"""What only the local-folder backend promises: files under its root, atomic, tidy folders."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from vidgate.media.storage import LocalStorage, TooLarge


async def chunks(count: int, size: int = 100_000) -> AsyncIterator[bytes]:
    for index in range(count):
        yield bytes([index % 256]) * size


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


async def test_objects_are_files_under_the_root(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "media")
    await storage.put_stream("outputs/j1/video.mp4", chunks(3), content_type="video/mp4")
    assert storage.path_for("outputs/j1/video.mp4") == tmp_path / "media" / "outputs" / "j1" / "video.mp4"
    assert files_under(tmp_path) == ["media/outputs/j1/video.mp4"]
    assert not any((tmp_path / "media" / ".tmp").iterdir())


async def test_no_partial_file_is_visible_while_writing(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    seen: list[int | None] = []

    async def watched() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"x" * 2_000_000  # past the write batch, so bytes hit the disk
            seen.append(await storage.size("a/b"))

    await storage.put_stream("a/b", watched(), content_type="video/mp4")
    assert seen == [None, None, None]
    assert await storage.size("a/b") == 6_000_000


async def test_too_large_and_failures_leave_no_temporary_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    with pytest.raises(TooLarge):
        await storage.put_stream("a/b", chunks(30), content_type="video/mp4", max_bytes=2_500_000)
    assert files_under(tmp_path) == []


async def test_cancelled_write_leaves_nothing(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    started = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"y" * 500_000
            started.set()

    task = asyncio.create_task(storage.put_stream("c/d", endless(), content_type="video/mp4"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert files_under(tmp_path) == []


async def test_deletes_prune_empty_folders_but_keep_the_root(tmp_path: Path) -> None:
    root = tmp_path / "media"
    storage = LocalStorage(root)
    await storage.put_stream("a/b/c/one", chunks(1), content_type="text/plain")
    await storage.put_stream("a/b/two", chunks(1), content_type="text/plain")
    await storage.delete("a/b/c/one")
    assert not (root / "a" / "b" / "c").exists()
    assert (root / "a" / "b" / "two").exists()
    assert await storage.delete_prefix("a") == 1
    assert not (root / "a").exists()
    assert root.is_dir()


async def test_a_folder_is_not_an_object(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    await storage.put_stream("dir/file", chunks(1), content_type="text/plain")
    assert await storage.size("dir") is None
    await storage.delete("dir")  # no error, nothing removed
    assert await storage.size("dir/file") == 100_000


async def test_put_file_from_a_missing_source_leaves_nothing(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "media")
    with pytest.raises(FileNotFoundError):
        await storage.put_file("x/y", tmp_path / "missing.bin", content_type="video/mp4")
    assert files_under(tmp_path) == []
