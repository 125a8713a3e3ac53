"""Where media lives: the ``Storage`` contract, the local-folder backend, and URL parsing.

Keys are relative, ``/``-separated names such as ``outputs/<job id>/video.mp4``. The same
rules hold on every backend (``validate_key``): no leading ``/``, no backslash, no
control character, no empty segment, and no segment that starts with a dot (which
rules out ``.`` and ``..`` and keeps the local backend's ``.tmp`` folder private).

Every backend streams: writes consume an async iterator chunk by chunk, reads yield
chunks of at most ``CHUNK_SIZE`` bytes, so a file is never whole in memory. A write is
atomic: readers see the old object or the new one, never a part, and a failed or
oversized write (``TooLarge``) leaves nothing behind.

``storage_from_url`` picks the backend from configuration:

- ``""`` -> a ``media`` folder in the data directory;
- ``file:///srv/media`` or a plain path (relative paths are taken from the data
  directory) -> ``LocalStorage``;
- ``s3://bucket/prefix?endpoint=http://localhost:9000&region=us-east-1`` ->
  ``S3Storage`` (credentials from the usual ``AWS_*`` variables, or the query
  parameters ``access_key_id``, ``secret_access_key`` and ``session_token``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

__all__ = [
    "CHUNK_SIZE",
    "InvalidRange",
    "LocalStorage",
    "ObjectNotFound",
    "Storage",
    "TooLarge",
    "resolve_range",
    "validate_key",
    "validate_prefix",
]

CHUNK_SIZE = 256 * 1024  #: the largest chunk ``open_range`` yields
_WRITE_SIZE = 1024 * 1024  # local writes are batched to this size before a thread hop
_MAX_KEY_BYTES = 1024  # S3's own limit


class TooLarge(Exception):
    """A stream went past ``max_bytes``; nothing was stored."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"the stream is larger than the limit of {max_bytes} bytes")
        self.max_bytes = max_bytes


class ObjectNotFound(FileNotFoundError):
    """No object under that key."""


class InvalidRange(ValueError):
    """The byte range cannot be served for this object (HTTP 416)."""


@runtime_checkable
class Storage(Protocol):
    """Streaming object storage. Every backend keeps the same contract (see module doc)."""

    async def put_file(self, key: str, path: Path, *, content_type: str) -> int:
        """Store a copy of the local file ``path``; return the bytes stored."""
        ...

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        *,
        content_type: str,
        max_bytes: int | None = None,
    ) -> int:
        """Store what ``chunks`` yields; raise ``TooLarge`` past ``max_bytes``."""
        ...

    def open_range(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Yield bytes ``start..end`` (inclusive; see ``resolve_range``) in small chunks.

        Raises (on first iteration) ``ObjectNotFound`` or ``InvalidRange``.
        """
        ...

    async def size(self, key: str) -> int | None:
        """The object's size in bytes, or ``None`` when there is none."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; a missing one is not an error."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object under the folder ``prefix``; return how many went."""
        ...


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe object key, else raise ``ValueError``."""
    if not isinstance(key, str) or not key:
        raise ValueError("a storage key must be a non-empty string")
    if len(key.encode("utf-8", "surrogatepass")) > _MAX_KEY_BYTES:
        raise ValueError(f"a storage key may not exceed {_MAX_KEY_BYTES} bytes")
    if key.startswith("/") or "\\" in key:
        raise ValueError(f"storage key {key!r} must be relative and use '/' only")
    if any(ord(char) < 32 or ord(char) == 127 for char in key):
        raise ValueError("a storage key may not contain control characters")
    for segment in key.split("/"):
        if not segment:
            raise ValueError(f"storage key {key!r} has an empty path segment")
        if segment.startswith("."):
            raise ValueError(f"storage key {key!r} has a segment starting with '.'")
    return key


def validate_prefix(prefix: str) -> str:
    """Return the folder ``prefix`` without its trailing ``/``, or raise ``ValueError``.

    The empty prefix (everything) is refused on purpose.
    """
    if not isinstance(prefix, str):
        raise ValueError("a storage prefix must be a string")
    return validate_key(prefix.removesuffix("/"))


def resolve_range(size: int, start: int = 0, end: int | None = None) -> tuple[int, int] | None:
    """The inclusive byte span ``(first, last)`` to serve, or ``None`` for no bytes at all.

        ``start >= 0``: from ``start`` to ``end`` (inclusive, clipped to the object) or to
        the end. ``start < 0``: the last ``-start`` bytes (HTTP's ``bytes=-N``), ``end``
        must then be ``None``. Reading a whole empty object (``start=0, end=None``) or a
    suffix of one gives no bytes; any other range of an empty object is unsatisfiable.
    """
    if start < 0:
        if end is not None:
            raise InvalidRange("a suffix range takes no end")
        return None if size == 0 else (max(0, size + start), size - 1)
    if end is not None and end < start:
        raise InvalidRange(f"range end {end} is before its start {start}")
    if start >= size:
        if start == 0 and size == 0 and end is None:
            return None
        raise InvalidRange(f"range start {start} is past the object's {size} bytes")
    last = size - 1 if end is None else min(end, size - 1)
    return start, last


class LocalStorage:
    """Objects as files under ``root``; writes go to ``root/.tmp`` and are renamed in place."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._tmp = self.root / ".tmp"

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def path_for(self, key: str) -> Path:
        """The file that holds ``key`` (for ``sendfile``-style serving)."""
        return self.root.joinpath(*validate_key(key).split("/"))

    # ----------------------------------------------------------------- writes

    async def put_file(self, key: str, path: Path, *, content_type: str) -> int:  # noqa: ARG002 (a folder has no content types)
        dest = self.path_for(key)
        return await asyncio.to_thread(self._copy_in, Path(path), dest)

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        *,
        content_type: str,  # noqa: ARG002 (part of the Storage contract)
        max_bytes: int | None = None,
    ) -> int:
        dest = self.path_for(key)
        handle = await asyncio.to_thread(self._open_temp)
        total = 0
        try:
            pending = bytearray()
            async for chunk in chunks:
                total += len(chunk)
                if max_bytes is not None and total > max_bytes:
                    raise TooLarge(max_bytes)
                pending += chunk
                if len(pending) >= _WRITE_SIZE:
                    data, pending = pending, bytearray()
                    await asyncio.to_thread(handle.write, data)
            if pending:
                await asyncio.to_thread(handle.write, pending)
            await asyncio.to_thread(self._commit, handle, dest)
        except BaseException:
            # Synchronous on purpose (also on cancellation): closing a buffered file
            # waits for a write still running in a worker thread; unlinking is instant.
            _discard(handle)
            raise
        return total

    def _open_temp(self) -> IO[bytes]:
        self._tmp.mkdir(parents=True, exist_ok=True)
        # Closed by _commit or _discard.
        return tempfile.NamedTemporaryFile(dir=self._tmp, prefix="put-", suffix=".part", delete=False)

    def _copy_in(self, source: Path, dest: Path) -> int:
        handle = self._open_temp()
        try:
            with source.open("rb") as reader:
                shutil.copyfileobj(reader, handle, _WRITE_SIZE)
            size = handle.tell()
            self._commit(handle, dest)
        except BaseException:
            _discard(handle)
            raise
        return size

    def _commit(self, handle: IO[bytes], dest: Path) -> None:
        """Flush, fsync and rename the temporary file onto ``dest``."""
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        for attempt in range(3):  # a concurrent delete may prune the folder between the two
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(handle.name, dest)
                return
            except FileNotFoundError:
                if attempt == 2:
                    raise

    # ------------------------------------------------------------------ reads

    async def open_range(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        path = self.path_for(key)
        handle, size = await asyncio.to_thread(_open_sized, path, key)
        try:
            span = resolve_range(size, start, end)
            if span is None:
                return
            first, last = span
            remaining = last - first + 1
            await asyncio.to_thread(handle.seek, first)
            while remaining > 0:
                chunk = await asyncio.to_thread(handle.read, min(CHUNK_SIZE, remaining))
                if not chunk:
                    return
                remaining -= len(chunk)
                yield chunk
        finally:
            handle.close()

    async def size(self, key: str) -> int | None:
        path = self.path_for(key)
        return await asyncio.to_thread(_file_size, path)

    # ---------------------------------------------------------------- deletes

    async def delete(self, key: str) -> None:
        path = self.path_for(key)
        await asyncio.to_thread(self._unlink, path)

    async def delete_prefix(self, prefix: str) -> int:
        folder = self.root.joinpath(*validate_prefix(prefix).split("/"))
        return await asyncio.to_thread(self._remove_tree, folder)

    def _unlink(self, path: Path) -> None:
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError):
            return
        self._prune(path.parent)

    def _remove_tree(self, folder: Path) -> int:
        if not folder.is_dir() or folder.is_symlink():
            return 0
        removed = 0
        for current, dirs, files in os.walk(folder, topdown=False):
            for name in files:
                Path(current, name).unlink(missing_ok=True)
                removed += 1
            for name in dirs:
                _rmdir_quietly(Path(current, name))
        _rmdir_quietly(folder)
        self._prune(folder.parent)
        return removed

    def _prune(self, folder: Path) -> None:
        """Remove now-empty folders from ``folder`` up to (not including) the root."""
        root = self.root
        while folder != root and root in folder.parents:
            if not _rmdir_quietly(folder):
                return
            folder = folder.parent


def _open_sized(path: Path, key: str) -> tuple[IO[bytes], int]:
    try:
        handle = path.open("rb")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        raise ObjectNotFound(f"no object {key!r}") from exc
    return handle, os.fstat(handle.fileno()).st_size


def _file_size(path: Path) -> int | None:
    try:
        stat = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return stat.st_size if path.is_file() else None


def _discard(handle: IO[bytes]) -> None:
    handle.close()
    Path(handle.name).unlink(missing_ok=True)


def _rmdir_quietly(folder: Path) -> bool:
    try:
        folder.rmdir()
    except OSError:
        return False
    return True


# ------------------------------------------------------------------ configuration
