"""What only the S3 backend adds: content types, key prefixes from the URL, no orphaned uploads."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from vidgate.media import s3 as s3_module
from vidgate.media.backends import storage_from_url
from vidgate.media.s3 import PART_SIZE, S3Storage
from vidgate.media.storage import TooLarge

pytestmark = pytest.mark.moto


async def chunks(total: int, size: int = 1024 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        step = min(size, total - sent)
        yield os.urandom(step)
        sent += step


async def test_content_type_is_stored(s3_storage: S3Storage, s3_admin: Any, tmp_path: Path) -> None:
    await s3_storage.put_stream("v.mp4", chunks(10), content_type="video/mp4")
    source = tmp_path / "t.jpg"
    source.write_bytes(b"\xff\xd8 not really a jpeg")
    await s3_storage.put_file("t.jpg", source, content_type="image/jpeg")
    assert s3_admin.head_object(Bucket=s3_storage.bucket, Key="v.mp4")["ContentType"] == "video/mp4"
    assert s3_admin.head_object(Bucket=s3_storage.bucket, Key="t.jpg")["ContentType"] == "image/jpeg"


async def test_multipart_stream_round_trip(s3_storage: S3Storage) -> None:
    total = 2 * PART_SIZE + 12345
    assert await s3_storage.put_stream("big.bin", chunks(total), content_type="video/mp4") == total
    assert await s3_storage.size("big.bin") == total
    received = 0
    async for chunk in s3_storage.open_range("big.bin", PART_SIZE - 10):
        received += len(chunk)
    assert received == total - PART_SIZE + 10


async def test_too_large_aborts_the_multipart_upload(s3_storage: S3Storage, s3_admin: Any) -> None:
    with pytest.raises(TooLarge):
        await s3_storage.put_stream(
            "big.bin", chunks(3 * PART_SIZE), content_type="video/mp4", max_bytes=2 * PART_SIZE
        )
    assert await s3_storage.size("big.bin") is None
    assert not s3_admin.list_multipart_uploads(Bucket=s3_storage.bucket).get("Uploads")


async def test_url_prefix_scopes_every_key(
    moto_endpoint: str, bucket: str, s3_admin: Any, tmp_path: Path
) -> None:
    url = (
        f"s3://{bucket}/tenant/media?endpoint={moto_endpoint}&region=us-east-1"
        "&access_key_id=testing&secret_access_key=testing"
    )
    storage = storage_from_url(url, data_dir=tmp_path)
    assert isinstance(storage, S3Storage)
    await storage.put_stream("jobs/1/video.mp4", chunks(100), content_type="video/mp4")
    await storage.put_stream("jobs/2/video.mp4", chunks(100), content_type="video/mp4")
    listed = s3_admin.list_objects_v2(Bucket=bucket)["Contents"]
    assert sorted(item["Key"] for item in listed) == [
        "tenant/media/jobs/1/video.mp4",
        "tenant/media/jobs/2/video.mp4",
    ]
    assert await storage.size("jobs/1/video.mp4") == 100
    assert await storage.delete_prefix("jobs/1") == 1
    assert await storage.size("jobs/2/video.mp4") == 100


async def test_delete_prefix_pages_through_many_objects(
    s3_storage: S3Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_module, "_LIST_PAGE", 4)
    for index in range(11):  # three list pages
        await s3_storage.put_stream(f"many/{index}", chunks(1), content_type="text/plain")
    await s3_storage.put_stream("many-more/x", chunks(1), content_type="text/plain")
    assert await s3_storage.delete_prefix("many") == 11
    assert await s3_storage.delete_prefix("many") == 0
    assert await s3_storage.size("many-more/x") == 1
