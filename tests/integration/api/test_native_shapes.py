"""The native API honours ``size`` and ``aspect_ratio`` or says what the model makes;
quotes need pricing inputs only."""

from __future__ import annotations

import io

import av
import pytest

from tests.conftest import Gateway, auth


async def _made(gateway: Gateway, key: str, body: dict[str, object]) -> tuple[int, int]:
    """Create, wait, download the MP4 and probe its frame size."""
    created = await gateway.client.post(
        "/v1/videos", headers=auth(key), json={"prompt": "a lighthouse", **body}
    )
    assert created.status_code == 200, created.text
    video_id = created.json()["id"]
    done = await gateway.wait_terminal(f"/v1/videos/{video_id}", key)
    assert done["vidgate_status"] == "succeeded", done
    content = await gateway.client.get(f"/v1/videos/{video_id}/content", headers=auth(key))
    assert content.status_code == 200 and content.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(content.content)) as container:
        stream = container.streams.video[0]
        return stream.codec_context.width, stream.codec_context.height


@pytest.mark.parametrize(
    ("body", "size"),
    [
        ({"model": "kling-3-pro", "size": "720x1280"}, (720, 1280)),
        ({"model": "kling-3-pro", "size": "720x720"}, (720, 720)),
        ({"model": "kling-3-pro", "aspect_ratio": "9:16"}, (720, 1280)),
        ({"model": "kling-3-pro", "size": "720x1280", "aspect_ratio": "9:16"}, (720, 1280)),
        ({"model": "sora-2", "size": "720x1280", "seconds": "4"}, (720, 1280)),
    ],
)
async def test_the_asked_shape_is_the_delivered_shape(
    gateway: Gateway, body: dict[str, object], size: tuple[int, int]
) -> None:
    key, _ = await gateway.account(credit="10")
    assert await _made(gateway, key, body) == size


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"model": "kling-3-pro", "size": "999x999"}, "size", ["1280x720", "720x1280", "720x720"]),
        ({"model": "T2V-01", "size": "720x1280"}, "size", ["1280x720"]),
        ({"model": "T2V-01", "aspect_ratio": "9:16"}, "aspect_ratio", ["aspect_ratio"]),
        ({"model": "kling-3-pro", "aspect_ratio": "4:3"}, "aspect_ratio", ["16:9", "9:16", "1:1"]),
        (
            {"model": "kling-3-pro", "size": "720x1280", "aspect_ratio": "16:9"},
            "aspect_ratio",
            ["contradicts"],
        ),
        (
            {"model": "I2V-01", "size": "1280x720", "image_url": "https://example.com/a.png"},
            "size",
            ["image"],
        ),
    ],
)
async def test_a_shape_the_model_cannot_make_is_a_400_naming_what_it_can(
    gateway: Gateway, body: dict[str, object], param: str, words: list[str]
) -> None:
    key, _ = await gateway.account(credit="10")
    response = await gateway.client.post("/v1/videos", headers=auth(key), json={"prompt": "x", **body})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param, error
    assert all(word in error["message"] for word in words), error


async def test_a_quote_takes_pricing_inputs_only(gateway: Gateway) -> None:
    key, _ = await gateway.account(credit="10")
    bare = await gateway.client.post(
        "/v1/quotes", headers=auth(key), json={"model": "kling-3-pro", "duration": 5, "aspect_ratio": "9:16"}
    )
    assert bare.status_code == 200, bare.text
    assert bare.json()["amount"] == "0.756000" or bare.json()["amount_micros"] == 756_000
    with_prompt = await gateway.client.post(
        "/v1/quotes", headers=auth(key), json={"model": "kling-3-pro", "duration": 5, "prompt": "p"}
    )
    assert with_prompt.json()["amount_micros"] == bare.json()["amount_micros"]
    image_model = await gateway.client.post("/v1/quotes", headers=auth(key), json={"model": "I2V-01"})
    assert image_model.status_code == 200, image_model.text
    assert image_model.json()["amount_micros"] > 0
    # Pricing inputs are still checked.
    wrong = await gateway.client.post(
        "/v1/quotes", headers=auth(key), json={"model": "kling-3-pro", "duration": 99}
    )
    assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "duration"
