"""Every URL-valued field of every dialect is checked at submit, pass-through options
included, and pass-through options never override a field vidgate built (issue 14)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Gateway, auth
from vidgate.domain.request import GenerationRequest, ImageInput
from vidgate.errors import InvalidRequest
from vidgate.net.urlfields import MAX_URLS, user_urls
from vidgate.net.urlguard import UrlGuard
from vidgate.providers.http import merge_under

PUBLIC = "public.example.test"
INSIDE = "intranet.example.test"


async def _resolver(host: str, _port: int) -> list[str]:
    table = {PUBLIC: ["93.184.216.34"], INSIDE: ["10.20.30.40"]}
    if host not in table:
        raise OSError(f"no such host {host}")
    return table[host]


@pytest.fixture
def guarded(gateway: Gateway) -> Gateway:
    gateway.services.jobs.url_guard = UrlGuard("", resolver=_resolver)
    return gateway


def _cases(host: str) -> list[tuple[str, str, dict[str, Any], str]]:
    """(path, key prefix or header, body, field) with ``host`` in one URL-valued field each."""
    image = f"https://{PUBLIC}/cat.png"
    return [
        (
            "/thalam/v1/videos/generations",
            "tl-",
            {
                "model": "kuaishou/kling-v2.6-pro-motion-control",
                "prompt": "dance",
                "image_url": image,
                "video_url": f"https://{host}/moves.mp4",
            },
            "video_url",
        ),
        (
            "/venice/api/v1/video/queue",
            "",
            {
                "model": "wan-2.5-preview-text-to-video",
                "prompt": "x",
                "duration": "5s",
                "resolution": "720p",
                "aspect_ratio": "16:9",
                "audio_url": f"https://{host}/voice.mp3",
            },
            "audio_url",
        ),
        (
            "/apiframe/v2/videos/generate",
            "afk_",
            {
                "prompt": "p",
                "model": "seedance-2",
                "seedanceParams": {"reference_video_urls": [f"https://{host}/v.mp4"]},
            },
            "reference_video_urls",
        ),
        (
            "/kyma/v1/video/generations",
            "ky-",
            {"model": "kling-2.5-pro", "prompt": "p", "extra": {"image_url": f"https://{host}/override.png"}},
            "image_url",
        ),
        (
            "/v1/videos",
            "",
            {
                "model": "sora-2",
                "prompt": "p",
                "seconds": "4",
                "provider_options": {"input": {"video": f"http://{host}:8080/x"}},
            },
            "input.video",
        ),
    ]


def _headers(path: str, prefix: str, key: str) -> dict[str, str]:
    return {"X-API-Key": prefix + key} if path.startswith("/apiframe") else auth(prefix + key)


@pytest.mark.parametrize("case", range(len(_cases(INSIDE))))
async def test_a_url_field_pointing_inside_is_refused_at_submit(guarded: Gateway, case: int) -> None:
    key, _ = await guarded.account(credit="100")
    path, prefix, bad, field = _cases(INSIDE)[case]
    refused = await guarded.client.post(path, headers=_headers(path, prefix, key), json=bad)
    assert refused.status_code == 400, refused.text
    assert field in refused.text and "10.20.30.40" in refused.text
    _, _, good, _ = _cases(PUBLIC)[case]  # the control: the same body, a public URL, is taken
    taken = await guarded.client.post(path, headers=_headers(path, prefix, key), json=good)
    assert 200 <= taken.status_code < 300, taken.text


def test_url_looking_values_anywhere_in_pass_through_options_are_found() -> None:
    req = GenerationRequest(
        model="m",
        images=(ImageInput(url="https://a.example/1.png"),),
        webhook_url="https://hooks.example/x",
        options={"mode": "pro", "style": "anime: bold"},
        provider_options={
            "video_url": "//10.0.0.1/x",
            "refs": ["file:/etc/passwd", {"deep": ["gopher://h/"]}],
            "note": "see https://internal/",
            "count": 3,
        },
    )
    assert user_urls(req) == [
        ("image_url", "https://a.example/1.png"),
        ("webhook_url", "https://hooks.example/x"),
        ("video_url", "//10.0.0.1/x"),
        ("refs[0]", "file:/etc/passwd"),
        ("refs[1].deep[0]", "gopher://h/"),
        ("note", "see https://internal/"),
    ]
    crowded = GenerationRequest(
        model="m", provider_options={"u": [f"http://h{i}/" for i in range(MAX_URLS + 1)]}
    )
    with pytest.raises(InvalidRequest, match="at most"):
        user_urls(crowded)


def test_pass_through_options_merge_under_what_vidgate_built() -> None:
    body: dict[str, Any] = {"image_url": "https://checked/1.png", "input": {"duration": 5}, "model": "m"}
    extra = {
        "image_url": "http://169.254.169.254/",
        "input": {"duration": 99, "camera": "pan"},
        "model": "other",
        "seed": 7,
    }
    merge_under(body, extra)
    assert body == {
        "image_url": "https://checked/1.png",
        "input": {"duration": 5, "camera": "pan"},
        "model": "m",
        "seed": 7,
    }
