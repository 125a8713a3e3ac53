"""Fixtures for the storage contract: a local folder, and S3 on an in-process moto server.

moto is pure Python and runs in a thread of the test process, so the S3 tests are part
of the normal suite (marked ``moto`` only so they can be selected or skipped by name).
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from vidgate.media.s3 import S3Storage
from vidgate.media.storage import LocalStorage, Storage

CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing", "region": "us-east-1"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "moto: runs against an in-process moto S3 server (no external service)"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The base URL of a moto S3 server running for the whole session."""
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_admin(moto_endpoint: str) -> Any:
    """A boto3 client for looking behind the backend's back (buckets, uploads, headers)."""
    return boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


@pytest.fixture
def bucket(s3_admin: Any) -> str:
    """A fresh, empty bucket for one test."""
    name = f"vidgate-{uuid.uuid4().hex[:12]}"
    s3_admin.create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_storage(moto_endpoint: str, bucket: str) -> S3Storage:
    return S3Storage(bucket, endpoint=moto_endpoint, **CREDENTIALS)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.moto)])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """Each backend in turn: every contract test runs against both."""
    if request.param == "local":
        return LocalStorage(tmp_path / "media")
    backend: S3Storage = request.getfixturevalue("s3_storage")
    return backend
