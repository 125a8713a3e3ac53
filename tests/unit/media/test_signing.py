"""Signed media URLs: round trip, tampering, expiry, malformed input."""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import parse_qs

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vidgate.media.signing import sign_path, verify_path

SECRET = b"s3cret-key-for-tests"
NOW = 1_700_000_000
EXP = NOW + 3600


def split(query: str) -> tuple[str, str]:
    parsed = parse_qs(query)
    return parsed["exp"][0], parsed["sig"][0]


def test_round_trip() -> None:
    query = sign_path("/media/outputs/j1/video.mp4", expires_at=EXP, secret=SECRET)
    assert query.startswith(f"exp={EXP}&sig=")
    exp, sig = split(query)
    assert set(sig) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert verify_path("/media/outputs/j1/video.mp4", exp, sig, secret=SECRET, now=NOW)


def test_signature_is_deterministic() -> None:
    assert sign_path("/a", expires_at=EXP, secret=SECRET) == sign_path("/a", expires_at=EXP, secret=SECRET)


@pytest.mark.parametrize(
    ("path", "exp_delta", "secret"),
    [
        ("/media/outputs/j2/video.mp4", 0, SECRET),  # another file
        ("/media/outputs/j1/video.mp4", 1, SECRET),  # stretched expiry
        ("/media/outputs/j1/video.mp4", 0, b"another secret"),
    ],
)
def test_tampering_fails(path: str, exp_delta: int, secret: bytes) -> None:
    exp, sig = split(sign_path("/media/outputs/j1/video.mp4", expires_at=EXP, secret=SECRET))
    assert not verify_path(path, str(int(exp) + exp_delta), sig, secret=secret, now=NOW)


def test_flipped_signature_fails() -> None:
    exp, sig = split(sign_path("/a", expires_at=EXP, secret=SECRET))
    flipped = ("B" if sig[0] == "A" else "A") + sig[1:]
    assert not verify_path("/a", exp, flipped, secret=SECRET, now=NOW)
    assert not verify_path("/a", exp, sig[:-1], secret=SECRET, now=NOW)
    assert not verify_path("/a", exp, sig + "=", secret=SECRET, now=NOW)


def test_expiry() -> None:
    exp, sig = split(sign_path("/a", expires_at=EXP, secret=SECRET))
    assert verify_path("/a", exp, sig, secret=SECRET, now=EXP - 1)
    assert verify_path("/a", exp, sig, secret=SECRET, now=EXP - 0.001)
    assert not verify_path("/a", exp, sig, secret=SECRET, now=EXP)
    assert not verify_path("/a", exp, sig, secret=SECRET, now=EXP + 10)
    assert not verify_path("/a", exp, sig, secret=SECRET)  # real clock: 2023 is long past


@pytest.mark.parametrize("exp", ["", "abc", "-1", "+1700003600", "1e12", " 1700003600", "١٧٠٠", "9" * 40])
def test_malformed_expiry_fails(exp: str) -> None:
    _, sig = split(sign_path("/a", expires_at=EXP, secret=SECRET))
    assert not verify_path("/a", exp, sig, secret=SECRET, now=NOW)


@pytest.mark.parametrize("sig", ["", "é", "\udcff", "A" * 10_000, "not base64 !!"])
def test_malformed_signature_fails(sig: str) -> None:
    assert not verify_path("/a", str(EXP), sig, secret=SECRET, now=NOW)


def test_never_raises_on_wrong_types() -> None:
    exp, sig = split(sign_path("/a", expires_at=EXP, secret=SECRET))
    assert not verify_path(cast(Any, None), exp, sig, secret=SECRET, now=NOW)
    assert not verify_path("/a", cast(Any, 123), sig, secret=SECRET, now=NOW)
    assert not verify_path("/a", exp, cast(Any, None), secret=SECRET, now=NOW)
    assert not verify_path("/a", exp, sig, secret=b"", now=NOW)


def test_sign_refuses_an_empty_secret() -> None:
    with pytest.raises(ValueError):
        sign_path("/a", expires_at=EXP, secret=b"")


def test_path_and_expiry_cannot_be_shifted_into_each_other() -> None:
    _, sig = split(sign_path("/a1", expires_at=23, secret=SECRET))
    assert not verify_path("/a", "123", sig, secret=SECRET, now=0)


@given(path=st.text(min_size=1, max_size=200), lifetime=st.integers(min_value=1, max_value=10**9))
def test_any_path_round_trips(path: str, lifetime: int) -> None:
    exp, sig = split(sign_path(path, expires_at=NOW + lifetime, secret=SECRET))
    assert verify_path(path, exp, sig, secret=SECRET, now=NOW)
    assert not verify_path(path + "x", exp, sig, secret=SECRET, now=NOW)
