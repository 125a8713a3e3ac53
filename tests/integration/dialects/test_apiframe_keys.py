"""Every per-model key Apiframe's published OpenAPI allows is accepted for the seed's models.

``ALLOWED`` is our table of the OpenAPI's facts (``GenerateVideoRequest``, one
``oneOf`` branch per model: its ``<family>Params`` block and the keys it takes).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Gateway
from vidgate.catalog.loader import load_catalog
from vidgate.config import Settings
from vidgate.ids import job_id_from_uuid

GENERATE = "/apiframe/v2/videos/generate"
IMAGE = "https://example.com/start.png"

ALLOWED: dict[str, tuple[str, str]] = {
    "grok-imagine-video": ("grokImagineVideoParams", "aspect_ratio duration reference_images"),
    "hailuo-02": ("hailuoParams", "duration end_image image prompt_optimizer resolution"),
    "hailuo-2.3": ("hailuoParams", "duration image prompt_optimizer resolution"),
    "hailuo-2.3-fast": ("hailuoParams", "duration image prompt_optimizer resolution"),
    "luma-ray-2": ("lumaParams", "aspect_ratio concepts duration end_image loop start_image"),
    "luma-ray-flash-2": ("lumaParams", "aspect_ratio concepts duration end_image loop start_image"),
    "kling-2.1": ("klingParams", "duration end_image mode negative_prompt start_image"),
    "kling-2.1-master": ("klingParams", "aspect_ratio duration negative_prompt start_image"),
    "kling-2.5-turbo-pro": (
        "klingParams",
        "aspect_ratio duration end_image guidance_scale negative_prompt start_image",
    ),
    "kling-2.6": ("klingParams", "aspect_ratio duration generate_audio negative_prompt start_image"),
    "kling-3.0": (
        "klingParams",
        "aspect_ratio duration end_image generate_audio mode multi_prompt negative_prompt start_image",
    ),
    "midjourney-video": ("midjourneyVideoParams", "motion resolution start_image"),
    "runway-gen4-turbo": ("runwayParams", "aspect_ratio duration image seed"),
    "runway-gen4.5": ("runwayParams", "aspect_ratio duration image seed"),
    **dict.fromkeys(
        ("seedance-1-lite", "seedance-1-pro", "seedance-1-pro-fast", "seedance-1.5-pro"),
        (
            "seedanceParams",
            "aspect_ratio camera_fixed duration end_image generate_audio resolution seed start_image",
        ),
    ),
    **dict.fromkeys(
        ("seedance-2", "seedance-2-fast"),
        (
            "seedanceParams",
            "aspect_ratio camera_fixed duration end_image generate_audio reference_audio_urls "
            "reference_image_urls reference_video_urls resolution return_last_frame seed start_image web_search",
        ),
    ),
    "sora-2": ("soraParams", "aspect_ratio duration resolution start_image"),
    "sora-2-pro": ("soraParams", "aspect_ratio duration resolution start_image"),
    **dict.fromkeys(
        ("veo-2", "veo-3", "veo-3-fast", "veo-3.1", "veo-3.1-fast"),
        (
            "veoParams",
            "aspect_ratio duration generate_audio image last_frame negative_prompt reference_images resolution seed",
        ),
    ),
    **dict.fromkeys(
        ("wan-2.5", "wan-2.5-fast"),
        ("wanParams", "audio duration enable_prompt_expansion image negative_prompt resolution seed"),
    ),
    "wan-2.6": (
        "wanParams",
        "audio duration enable_prompt_expansion image multi_shots negative_prompt resolution seed",
    ),
    "wan-2.6-flash": (
        "wanParams",
        "audio audio_enabled duration enable_prompt_expansion image multi_shots negative_prompt resolution seed",
    ),
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"url_allowlist": "example.com"})  # image URLs pass the SSRF guard


def test_the_catalog_takes_every_key_the_openapi_allows() -> None:
    specs = {spec.name: spec for spec in load_catalog().in_namespace("apiframe")}
    assert set(specs) == set(ALLOWED)
    for name, (family, keys) in ALLOWED.items():
        spec = specs[name]
        assert spec.dialect["family"] == family, name
        missing = set(keys.split()) - set(spec.dialect["fields"])
        assert not missing, f"{name} refuses {sorted(missing)}"


async def _generate(gateway: Gateway, key: str, body: dict[str, Any]) -> Any:
    return await gateway.client.post(GENERATE, json={"prompt": "p", **body}, headers={"X-API-Key": key})


@pytest.mark.parametrize(
    ("model", "block", "passed_on"),
    [
        ("seedance-1-lite", {"seedanceParams": {"generate_audio": False}}, {}),
        (
            "seedance-1-pro",
            {"seedanceParams": {"generate_audio": False, "camera_fixed": True}},
            {"camera_fixed": True},
        ),
        ("seedance-1-pro-fast", {"seedanceParams": {"generate_audio": False}}, {}),
        ("seedance-2", {"seedanceParams": {"camera_fixed": True}}, {}),  # accepted, not passed on
        ("seedance-2-fast", {"seedanceParams": {"camera_fixed": False}}, {}),
        ("veo-2", {"veoParams": {"generate_audio": False, "resolution": "720p"}}, {}),
        ("veo-3", {"veoParams": {"generate_audio": True}}, {}),
        (
            "wan-2.6-flash",
            {"wanParams": {"image": "https://example.com/a.png", "multi_shots": True}},
            {},  # the shot_type option (below), not a pass-through field
        ),
    ],
)
async def test_the_keys_the_review_found_refused_are_accepted(
    gateway: Gateway, model: str, block: dict[str, Any], passed_on: dict[str, Any]
) -> None:
    key, principal = await gateway.account()
    response = await _generate(gateway, key, {"model": model, **block})
    assert response.status_code == 202, response.text
    job = await gateway.services.jobs.get(principal, job_id_from_uuid(response.json()["jobId"]) or "")
    assert job.request.provider_options == passed_on


@pytest.mark.parametrize(
    ("model", "block", "shot_type"),
    [
        ("wan-2.6", {"multi_shots": True}, "multi"),
        ("wan-2.6", {"multi_shots": False, "enable_prompt_expansion": False}, "single"),
        ("wan-2.6-flash", {"image": "https://example.com/a.png", "multi_shots": True}, "multi"),
        ("wan-2.6", {}, "single"),  # the catalog's default, Wan's own
    ],
)
async def test_multi_shots_is_the_shot_type_option(
    gateway: Gateway, model: str, block: dict[str, Any], shot_type: str
) -> None:
    """``multi_shots`` becomes vidgate's ``shot_type`` option, which the DashScope adapter
    sends as ``parameters.shot_type``; it is never passed on under Apiframe's name."""
    key, principal = await gateway.account()
    response = await _generate(gateway, key, {"model": model, "wanParams": block})
    assert response.status_code == 202, response.text
    job = await gateway.services.jobs.get(principal, job_id_from_uuid(response.json()["jobId"]) or "")
    assert job.request.options["shot_type"] == shot_type
    assert "multi_shots" not in job.request.provider_options


async def test_multi_shots_without_prompt_expansion_is_refused(gateway: Gateway) -> None:
    """Wan plans its shots while it expands the prompt and makes one shot without that:
    the pair would be a multi-shot job that silently comes back as one shot."""
    key, _ = await gateway.account()
    block = {"multi_shots": True, "enable_prompt_expansion": False}
    response = await _generate(gateway, key, {"model": "wan-2.6", "wanParams": block})
    assert response.status_code == 400
    assert "wanParams.multi_shots" in response.json()["details"], response.json()


async def test_a_key_asking_for_what_the_model_cannot_make_names_it(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    silent = await _generate(
        gateway, key, {"model": "seedance-1-lite", "seedanceParams": {"generate_audio": True}}
    )
    assert silent.status_code == 400
    assert "seedanceParams.generate_audio" in silent.json()["details"], silent.json()
    no_last = await _generate(gateway, key, {"model": "veo-2", "veoParams": {"last_frame": IMAGE}})
    assert no_last.status_code == 400
    assert "veoParams.last_frame" in no_last.json()["details"], no_last.json()
