"""Venice's current published spec: the current video models and the response shapes.

``CURRENT`` is our table of the facts Venice publishes for its current video models
(``model_spec.constraints`` in veniceai/api-docs ``data/static-models.json``); the
schemas are our own rendering of its swagger's ``ProviderContentPolicyError``,
``StandardError``, ``DetailedError``, the queue and retrieve responses and
``ModelResponse``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import Gateway, auth
from tests.integration.dialects._schema import Schema, conforms
from vidgate.config import Settings

API = "/venice/api/v1"
STEPS = [f"{n}s" for n in range(3, 16)]
CURRENT: dict[str, dict[str, Any]] = {
    "wan-2.6-text-to-video": {
        "model_type": "text-to-video",
        "durations": ["5s", "10s", "15s"],
        "resolutions": ["1080p", "720p"],
        "aspect_ratios": ["16:9", "9:16", "1:1"],
        "audio_configurable": True,
        "audio_input": True,
    },
    "wan-2.6-image-to-video": {
        "model_type": "image-to-video",
        "durations": ["5s", "10s", "15s"],
        "resolutions": ["1080p", "720p"],
        "aspect_ratios": [],
        "audio_configurable": True,
        "audio_input": True,
    },
    "wan-2.6-flash-image-to-video": {
        "model_type": "image-to-video",
        "durations": ["5s", "10s", "15s"],
        "resolutions": ["1080p", "720p"],
        "aspect_ratios": [],
        "audio_configurable": False,
        "audio_input": True,
    },
    "kling-v3-pro-text-to-video": {
        "model_type": "text-to-video",
        "durations": STEPS,
        "resolutions": [],
        "aspect_ratios": ["16:9", "9:16", "1:1"],
        "audio_configurable": True,
        "audio_input": False,
    },
    "kling-v3-pro-image-to-video": {
        "model_type": "image-to-video",
        "durations": STEPS,
        "resolutions": [],
        "aspect_ratios": [],
        "audio_configurable": True,
        "audio_input": False,
    },
    "veo3.1-full-text-to-video": {
        "model_type": "text-to-video",
        "durations": ["4s", "6s", "8s"],
        "resolutions": ["720p", "1080p", "4k"],
        "aspect_ratios": ["16:9", "9:16"],
        "audio_configurable": True,
        "audio_input": False,
    },
    "seedance-2-0-text-to-video-basic": {
        "model_type": "text-to-video",
        "durations": STEPS[1:],
        "resolutions": ["4k", "1080p", "720p", "480p"],
        "aspect_ratios": ["21:9", "16:9", "4:3", "1:1", "3:4", "9:16"],
        "audio_configurable": True,
        "audio_input": False,
        "prompt_character_limit": 10000,
    },
    "seedance-2-0-image-to-video-basic": {
        "model_type": "image-to-video",
        "durations": STEPS[1:],
        "resolutions": ["4k", "1080p", "720p", "480p"],
        "aspect_ratios": [],
        "audio_configurable": True,
        "audio_input": False,
        "prompt_character_limit": 10000,
    },
}
STANDARD: Schema = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
DETAILED: Schema = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "details": {"type": "object"}},
}
CONTENT_POLICY: Schema = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "credits_refunded"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string", "enum": ["provider_content_policy"]},
                "recommended_model": {"type": "string"},
                "credits_refunded": {"type": "boolean"},
            },
        }
    },
}
QUEUED: Schema = {
    "type": "object",
    "required": ["model", "queue_id"],
    "properties": {"model": {"type": "string"}, "queue_id": {"type": "string", "format": "uuid"}},
}
PROCESSING: Schema = {
    "type": "object",
    "required": ["status", "average_execution_time", "execution_duration"],
    "properties": {
        "status": {"type": "string", "enum": ["PROCESSING", "COMPLETED"]},
        "average_execution_time": {"type": "number"},
        "execution_duration": {"type": "number"},
    },
}
CONSTRAINTS: Schema = {
    "type": "object",
    "required": ["model_type", "aspect_ratios", "resolutions", "durations", "audio", "audio_configurable"],
    "properties": {
        "model_type": {"type": "string", "enum": ["text-to-video", "image-to-video", "video", "upscale"]},
        "aspect_ratios": {"type": "array", "items": {"type": "string"}},
        "resolutions": {"type": "array", "items": {"type": "string"}},
        "durations": {"type": "array", "items": {"type": "string"}},
        "audio": {"type": "boolean"},
        "audio_configurable": {"type": "boolean"},
        "audio_input": {"type": "boolean"},
        "video_input": {"type": "boolean"},
    },
}
MODEL: Schema = {
    "type": "object",
    "required": ["id", "object", "owned_by", "type", "created", "model_spec"],
    "properties": {
        "id": {"type": "string"},
        "object": {"type": "string", "enum": ["model"]},
        "type": {"type": "string", "enum": ["video"]},
        "created": {"type": "integer"},
        "model_spec": {"type": "object", "properties": {"constraints": CONSTRAINTS}},
    },
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"url_allowlist": "example.com"})


async def test_the_current_models_are_listed_with_venices_constraints(gateway: Gateway) -> None:
    listed = (await gateway.client.get(f"{API}/models", params={"type": "video"})).json()
    models = {m["id"]: m for m in listed["data"]}
    for model in listed["data"]:
        conforms(model, MODEL)
    for name, facts in CURRENT.items():
        assert name in models, f"{name} is not listed"
        shown = models[name]["model_spec"]["constraints"]
        for field, value in facts.items():
            if field in ("resolutions", "aspect_ratios"):
                assert set(shown[field]) == set(value), (name, field, shown[field])
            else:
                assert shown[field] == value, (name, field, shown[field])
    native = (await gateway.client.get("/v1/models", params={"namespace": "venice"})).json()
    prices = {m["name"] if "name" in m else m["id"]: m["price"] for m in native["data"]}
    for name in CURRENT:
        assert prices[name] is not None and prices[name]["source"] == "inferred", name


async def test_the_venice_cli_default_model_runs_end_to_end(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    body = {"model": "wan-2.6-text-to-video", "prompt": "a gondola", "duration": "5s", "aspect_ratio": "16:9"}
    pricing = {k: v for k, v in body.items() if k != "prompt"}  # QuoteVideoRequest has no prompt
    quoted = await gateway.client.post(f"{API}/video/quote", json=pricing)
    assert quoted.status_code == 200 and quoted.json()["quote"] > 0
    queued = await gateway.client.post(f"{API}/video/queue", json=body, headers=auth(key))
    assert queued.status_code == 200, queued.text
    conforms(queued.json(), QUEUED)
    ref = {"model": body["model"], "queue_id": queued.json()["queue_id"]}
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        polled = await gateway.client.post(f"{API}/video/retrieve", json=ref, headers=auth(key))
        assert polled.status_code == 200, polled.text
        if polled.headers["content-type"] == "video/mp4":
            break
        conforms(polled.json(), PROCESSING)
        assert asyncio.get_running_loop().time() < deadline, polled.text
        await asyncio.sleep(0.05)
    assert polled.content[4:8] == b"ftyp"


async def test_error_bodies_follow_the_current_spec(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    base = {"model": "wan-2.6-text-to-video", "duration": "5s", "aspect_ratio": "16:9"}
    refused = await gateway.client.post(
        f"{API}/video/queue", json={**base, "prompt": "simulate:policy"}, headers=auth(key)
    )
    ref = {"model": base["model"], "queue_id": refused.json()["queue_id"]}
    deadline = asyncio.get_running_loop().time() + 30
    while (
        answer := await gateway.client.post(f"{API}/video/retrieve", json=ref, headers=auth(key))
    ).status_code == 200:
        assert asyncio.get_running_loop().time() < deadline, answer.text
        await asyncio.sleep(0.05)
    assert answer.status_code == 422
    conforms(answer.json(), CONTENT_POLICY)
    assert answer.json()["error"]["credits_refunded"] is True

    bad = await gateway.client.post(
        f"{API}/video/queue", json={**base, "duration": "7s", "prompt": "x"}, headers=auth(key)
    )
    assert bad.status_code == 400
    conforms(bad.json(), DETAILED)
    unknown = await gateway.client.post(
        f"{API}/video/retrieve",
        json={"model": base["model"], "queue_id": "00000000-0000-4000-8000-000000000000"},
        headers=auth(key),
    )
    assert unknown.status_code == 404
    conforms(unknown.json(), STANDARD)
    no_key = await gateway.client.post(f"{API}/video/queue", json={**base, "prompt": "x"})
    assert no_key.status_code == 401
    conforms(no_key.json(), STANDARD)


async def test_newly_routed_models_quote_and_refuse_what_no_route_makes(gateway: Gateway) -> None:
    quote = f"{API}/video/quote"
    ltx = {"model": "ltx-2-v2-3-fast-text-to-video", "aspect_ratio": "16:9"}
    ok = await gateway.client.post(quote, json={**ltx, "duration": "20s", "resolution": "1080p"})
    assert ok.status_code == 200 and ok.json()["quote"] > 0, ok.text
    # fal's LTX 2.3 Fast makes more than 10 s only at 1080p: refused, not shortened.
    refused = await gateway.client.post(quote, json={**ltx, "duration": "12s", "resolution": "1440p"})
    assert refused.status_code == 400, refused.text
    omni = {"model": "gemini-omni-flash-text-to-video", "duration": "6s", "aspect_ratio": "9:16"}
    assert (await gateway.client.post(quote, json=omni)).status_code == 200
    retired = {
        "model": "sora-2-text-to-video",
        "duration": "4s",
        "aspect_ratio": "16:9",
        "resolution": "720p",
    }
    answer = await gateway.client.post(quote, json=retired)
    assert answer.status_code >= 400 and "retired" in answer.text, answer.text
