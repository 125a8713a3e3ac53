"""The S3-compatible backend of ``Storage`` (AWS S3, MinIO, R2, Ceph...), built on obstore.

Memory stays bounded on every path: streams and files go up as multipart uploads in
parts of ``part_size`` with at most ``max_concurrency`` parts in flight (by default one
5 MiB part, so about 5 MiB per upload; raise both for throughput on fast links), small
streams as one plain PUT, and reads are ranged GETs whose body is streamed and re-cut
into chunks of at most ``CHUNK_SIZE``.
A stream that fails or grows past ``max_bytes`` aborts its multipart upload, so no
object (and no orphaned part) is left. ``delete_prefix`` lists the folder page by page
and deletes each page in one bulk request.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import obstore
from obstore.store import S3Store

from vidgate.media.storage import (
    CHUNK_SIZE,
    ObjectNotFound,
    TooLarge,
    resolve_range,
    validate_key,
    validate_prefix,
)

if TYPE_CHECKING:
    from obstore import Attributes
    from obstore.store import ClientConfig, S3Config

__all__ = ["MAX_CONCURRENCY", "PART_SIZE", "S3Storage"]

PART_SIZE = 5 * 1024 * 1024  #: default part size, S3's smallest allowed (except the last)
MAX_CONCURRENCY = 1  #: default number of parts uploaded at once
_SINGLE_PUT_MAX = 1024 * 1024  # streams up to this size skip the multipart dance
_READ_CHUNK = 64 * 1024  # the smallest chunk the GET stream hands over
_LIST_PAGE = 500


class S3Storage:
    """Objects in one bucket, optionally under a key prefix."""

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        part_size: int = PART_SIZE,
        max_concurrency: int = MAX_CONCURRENCY,
    ) -> None:
        """Credentials not given here come from the usual ``AWS_*`` environment variables.

        An ``http://`` endpoint (a local MinIO or moto server) is allowed as such.
        """
        if not bucket:
            raise ValueError("an S3 bucket name is required")
        if part_size < PART_SIZE or max_concurrency < 1:
            raise ValueError(f"part_size must be >= {PART_SIZE} and max_concurrency >= 1")
        self.part_size = part_size
        self.max_concurrency = max_concurrency
        config: S3Config = {}
        if endpoint:
            config["endpoint"] = endpoint
        if region:
            config["region"] = region
        if access_key_id:
            config["access_key_id"] = access_key_id
        if secret_access_key:
            config["secret_access_key"] = secret_access_key
        if session_token:
            config["session_token"] = session_token
        endpoint_in_use = endpoint or os.environ.get("AWS_ENDPOINT_URL") or ""
        client: ClientConfig = {}
        if endpoint_in_use.lower().startswith("http://"):
            client["allow_http"] = True
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._store = S3Store(bucket, prefix=self.prefix or None, config=config, client_options=client)

    def __repr__(self) -> str:
        where = f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket
        return f"S3Storage('s3://{where}')"

    # ----------------------------------------------------------------- writes

    async def put_file(self, key: str, path: Path, *, content_type: str) -> int:
        validate_key(key)
        size = (await asyncio.to_thread(os.stat, path)).st_size
        await obstore.put_async(
            self._store,
            key,
            Path(path),
            attributes={"Content-Type": content_type},
            chunk_size=self.part_size,
            max_concurrency=self.max_concurrency,
        )
        return size

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        *,
        content_type: str,
        max_bytes: int | None = None,
    ) -> int:
        validate_key(key)
        counted = _Counter(chunks, max_bytes)
        attributes: Attributes = {"Content-Type": content_type}
        try:
            # Read ahead a little: a small object goes up in one plain PUT.
            head: list[bytes] = []
            buffered = 0
            async for chunk in counted:
                head.append(chunk)
                buffered += len(chunk)
                if buffered > _SINGLE_PUT_MAX:
                    break
            else:
                await obstore.put_async(
                    self._store, key, b"".join(head), attributes=attributes, use_multipart=False
                )
                return counted.total
            await obstore.put_async(
                self._store,
                key,
                _chain(head, counted),
                attributes=attributes,
                use_multipart=True,
                chunk_size=self.part_size,
                max_concurrency=self.max_concurrency,
            )
        except Exception as exc:
            # obstore re-raises what the iterator raised, but make sure of the type.
            if counted.exceeded and max_bytes is not None and not isinstance(exc, TooLarge):
                raise TooLarge(max_bytes) from exc
            raise
        return counted.total

    # ------------------------------------------------------------------ reads

    async def open_range(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        validate_key(key)
        try:
            if start == 0 and end is None:
                result = await obstore.get_async(self._store, key)
            else:
                meta = await obstore.head_async(self._store, key)
                span = resolve_range(meta["size"], start, end)
                if span is None:
                    return
                options: obstore.GetOptions = {"range": (span[0], span[1] + 1)}
                result = await obstore.get_async(self._store, key, options=options)
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"no object {key!r}") from exc
        async for piece in result.stream(min_chunk_size=_READ_CHUNK):
            view = memoryview(piece)
            for offset in range(0, len(view), CHUNK_SIZE):
                yield bytes(view[offset : offset + CHUNK_SIZE])

    async def size(self, key: str) -> int | None:
        validate_key(key)
        try:
            meta = await obstore.head_async(self._store, key)
        except FileNotFoundError:
            return None
        return int(meta["size"])

    # ---------------------------------------------------------------- deletes

    async def delete(self, key: str) -> None:
        validate_key(key)
        try:
            await obstore.delete_async(self._store, key)
        except FileNotFoundError:
            return

    async def delete_prefix(self, prefix: str) -> int:
        folder = validate_prefix(prefix)
        removed = 0
        async for page in obstore.list(self._store, prefix=folder, chunk_size=_LIST_PAGE):
            paths = [meta["path"] for meta in page if meta["path"].startswith(folder + "/")]
            if paths:
                await obstore.delete_async(self._store, paths)
                removed += len(paths)
        return removed


async def _chain(first: list[bytes], rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    while first:
        yield first.pop(0)
    async for chunk in rest:
        yield chunk


class _Counter:
    """An async iterator that counts what passes and stops past ``max_bytes``."""

    def __init__(self, chunks: AsyncIterator[bytes], max_bytes: int | None) -> None:
        self._chunks = chunks
        self._max = max_bytes
        self.total = 0
        self.exceeded = False

    def __aiter__(self) -> _Counter:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._chunks.__anext__()
        self.total += len(chunk)
        if self._max is not None and self.total > self._max:
            self.exceeded = True
            raise TooLarge(self._max)
        return chunk
