"""Pure rules behind every storage backend: keys, prefixes, byte ranges, configuration URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidgate.media.backends import storage_from_url
from vidgate.media.s3 import S3Storage
from vidgate.media.storage import (
    InvalidRange,
    LocalStorage,
    resolve_range,
    validate_key,
    validate_prefix,
)


@pytest.mark.parametrize("key", ["a", "outputs/j1/video.mp4", "a/b-c_d.e/f", "unicode/vidéo.mp4", "a..b/c"])
def test_good_keys(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/abs",
        "..",
        "../x",
        "a/..",
        "a/../b",
        "a\\b",
        "a//b",
        "a/",
        ".tmp/x",
        "a/.x",
        "a\x00",
        "x" * 1025,
    ],
)
def test_bad_keys(key: str) -> None:
    with pytest.raises(ValueError):
        validate_key(key)


def test_prefixes() -> None:
    assert validate_prefix("jobs/1/") == "jobs/1"
    assert validate_prefix("jobs") == "jobs"
    for bad in ("", "/", "//", "../x/"):
        with pytest.raises(ValueError):
            validate_prefix(bad)


@pytest.mark.parametrize(
    ("size", "start", "end", "span"),
    [
        (100, 0, None, (0, 99)),
        (100, 0, 0, (0, 0)),
        (100, 10, 19, (10, 19)),
        (100, 90, 500, (90, 99)),
        (100, 99, None, (99, 99)),
        (100, -10, None, (90, 99)),
        (100, -500, None, (0, 99)),
        (0, 0, None, None),
        (0, -5, None, None),
    ],
)
def test_resolve_range(size: int, start: int, end: int | None, span: tuple[int, int] | None) -> None:
    assert resolve_range(size, start, end) == span


@pytest.mark.parametrize(
    ("size", "start", "end"),
    [(100, 100, None), (100, 5, 4), (100, -5, 99), (0, 0, 0), (0, 1, None)],
)
def test_unsatisfiable_ranges(size: int, start: int, end: int | None) -> None:
    with pytest.raises(InvalidRange):
        resolve_range(size, start, end)


def test_url_empty_is_a_media_folder_in_the_data_dir(tmp_path: Path) -> None:
    storage = storage_from_url("", data_dir=tmp_path)
    assert isinstance(storage, LocalStorage)
    assert storage.root == tmp_path / "media"


def test_url_paths(tmp_path: Path) -> None:
    absolute = storage_from_url(str(tmp_path / "abs"), data_dir=tmp_path / "data")
    relative = storage_from_url("rel/media", data_dir=tmp_path / "data")
    file_url = storage_from_url(f"file://{tmp_path}/with%20space", data_dir=tmp_path / "data")
    assert isinstance(absolute, LocalStorage)
    assert isinstance(relative, LocalStorage)
    assert isinstance(file_url, LocalStorage)
    assert absolute.root == tmp_path / "abs"
    assert relative.root == tmp_path / "data" / "rel" / "media"
    assert file_url.root == tmp_path / "with space"


def test_url_s3(tmp_path: Path) -> None:
    storage = storage_from_url(
        "s3://my-bucket/some/prefix/?endpoint=http://localhost:9000&region=eu-west-1"
        "&access_key_id=AK&secret_access_key=SK",
        data_dir=tmp_path,
    )
    assert isinstance(storage, S3Storage)
    assert (storage.bucket, storage.prefix) == ("my-bucket", "some/prefix")


@pytest.mark.parametrize(
    "url",
    [
        "gs://bucket/x",
        "http://example.com/media",
        "s3://",
        "s3://bucket?colour=blue",
        "file://otherhost/srv",
    ],
)
def test_bad_urls(url: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        storage_from_url(url, data_dir=tmp_path)
