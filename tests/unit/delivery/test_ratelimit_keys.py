"""Which key a request carries, in every dialect's header form."""

from __future__ import annotations

import pytest

from vidgate.api.dialects import edge_rules
from vidgate.api.ratelimit import api_key_of

KEY = "vg_test_" + "k" * 43
FORMS = edge_rules().key_forms  # every form the dialects declare


@pytest.mark.parametrize(
    "headers",
    [
        {b"authorization": f"Bearer {KEY}".encode()},
        {b"authorization": f"bearer   {KEY}  ".encode()},
        {b"authorization": f"Bearer tl-{KEY}".encode()},
        {b"authorization": f"Bearer ky-{KEY}".encode()},
        {b"authorization": f"Bearer kyma-{KEY}".encode()},
        {b"x-api-key": f"afk_{KEY}".encode()},
        {b"x-api-key": KEY.encode()},
        {b"authorization": b"Basic abc", b"x-api-key": f"afk_{KEY}".encode()},
    ],
)
def test_keys_are_found(headers: dict[bytes, bytes]) -> None:
    assert api_key_of(headers, FORMS) == KEY


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {b"authorization": b"Bearer"},
        {b"authorization": b"Bearer sk-something"},
        {b"x-api-key": b"afk_nope"},
        {b"authorization": f"Token {KEY}".encode()},
        {b"x-api-key": f"tl-{KEY}".encode()},  # Thalam's prefix, in a header Thalam does not use
    ],
)
def test_no_key_means_no_limit_here(headers: dict[bytes, bytes]) -> None:
    assert api_key_of(headers, FORMS) is None
