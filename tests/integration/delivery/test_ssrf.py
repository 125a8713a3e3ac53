"""The SSRF guard on the native create: image_url and webhook_url pointing inside are refused.

``build_services`` does not pass the guard to ``JobService`` yet (the lead wires
``url_guard=UrlGuard(settings.url_allowlist)``); until then these tests wire it
themselves, exactly as that line will.
"""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from tests.conftest import Gateway, auth
from vidgate.net.urlguard import UrlGuard

PRIVATE_HOST = "intranet.example.test"

REFUSED = [
    ("http://127.0.0.1/frame.png", "loopback"),
    ("http://10.0.0.1/frame.png", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[::1]/frame.png", "loopback"),
    (f"https://{PRIVATE_HOST}/frame.png", "private"),
    ("file:///etc/passwd", "http(s)"),
    ("gopher://example.com/", "http(s)"),
    ("http://2130706433/frame.png", "loopback"),
    ("http://0x7f000001/frame.png", "loopback"),
    ("http://0177.0.0.1/frame.png", "loopback"),
    ("http://[::ffff:127.0.0.1]/frame.png", "loopback"),
    ("http://100.64.0.1/frame.png", "carrier-grade"),
    ("http://metadata.google.internal/computeMetadata/v1/", "not reachable"),
]


async def _fake_resolver(host: str, port: int) -> list[str]:
    table = {PRIVATE_HOST: ["10.20.30.40"], "public.example.test": ["93.184.216.34"]}
    if host not in table:
        raise OSError(f"no such host {host}")
    return table[host]


@pytest.fixture
def guarded(gateway: Gateway) -> Gateway:
    """The gateway with the guard wired into JobService (allowlist empty: nothing is let through)."""
    gateway.services.jobs.url_guard = UrlGuard("", resolver=_fake_resolver)
    return gateway


def _png() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 36), (200, 40, 40)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.mark.parametrize(("url", "why"), REFUSED)
@pytest.mark.parametrize("field", ["image_url", "webhook_url"])
async def test_inside_urls_are_refused_with_a_clear_400(
    guarded: Gateway, field: str, url: str, why: str
) -> None:
    key, _ = await guarded.account()
    body = {"model": "sora-2", "prompt": "a red door", "seconds": "4", field: url}
    response = await guarded.client.post("/v1/videos", json=body, headers=auth(key))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == field
    assert why in error["message"]
    listed = (await guarded.client.get("/v1/videos", headers=auth(key))).json()
    assert listed["data"] == []  # nothing was created or held


async def test_public_and_data_image_urls_pass(guarded: Gateway) -> None:
    key, _ = await guarded.account()
    for field, url in (("webhook_url", "https://public.example.test/hook"), ("image_url", _png())):
        body = {"model": "sora-2", "prompt": "a red door", "seconds": "4", field: url}
        response = await guarded.client.post("/v1/videos", json=body, headers=auth(key))
        assert response.status_code == 200, (field, response.text)


async def test_data_urls_must_be_images_and_only_for_images(guarded: Gateway) -> None:
    key, _ = await guarded.account()
    not_image = "data:image/png;base64," + base64.b64encode(b"not an image at all").decode()
    cases = [("image_url", not_image), ("webhook_url", _png()), ("image_url", "data:text/plain,hello")]
    for field, url in cases:
        body = {"model": "sora-2", "prompt": "a red door", "seconds": "4", field: url}
        response = await guarded.client.post("/v1/videos", json=body, headers=auth(key))
        assert response.status_code == 400, (field, url[:30], response.text)
        assert response.json()["error"]["param"] == field


async def test_allowlist_lets_loopback_through(gateway: Gateway) -> None:
    gateway.services.jobs.url_guard = UrlGuard("127.0.0.1, 10.0.0.0/8", resolver=_fake_resolver)
    key, _ = await gateway.account()
    for url in ("http://127.0.0.1:9/hook", "http://10.0.0.1/hook", f"http://{PRIVATE_HOST}/hook"):
        body = {"model": "sora-2", "prompt": "a red door", "seconds": "4", "webhook_url": url}
        response = await gateway.client.post("/v1/videos", json=body, headers=auth(key))
        assert response.status_code == 200, (url, response.text)
    body = {"model": "sora-2", "prompt": "a red door", "seconds": "4", "webhook_url": "http://192.168.1.1/"}
    assert (await gateway.client.post("/v1/videos", json=body, headers=auth(key))).status_code == 400
