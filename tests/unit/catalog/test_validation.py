"""Constraints: defaults fill in, and each seed test case about constraints is refused."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.catalog.conftest import IMAGE, request_for
from vidgate.catalog.loader import Catalog
from vidgate.catalog.models import ModelSpec
from vidgate.catalog.validation import allowed_values, describe_durations, normalize
from vidgate.domain.request import GenerationRequest, ImageInput
from vidgate.errors import InvalidRequest, ModelUnavailable


def refused(spec: ModelSpec, req: GenerationRequest, param: str) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as raised:
        normalize(spec, req)
    assert raised.value.param == param, raised.value.message
    assert param.split(".")[-1] in raised.value.message
    return raised.value


def bare(spec: ModelSpec, **fields: Any) -> GenerationRequest:
    """A request with no images unless given."""
    values: dict[str, Any] = {"model": spec.id, "prompt": "p"}
    values.update(fields)
    return GenerationRequest(**values)


# --- Every packaged entry: its defaults are valid ---


def test_every_orderable_model_accepts_its_own_defaults(catalog: Catalog) -> None:
    for spec in catalog.all():
        if not spec.orderable:
            continue
        req = normalize(spec, request_for(spec))
        assert req.model == spec.id
        assert req.duration_s == spec.default_duration
        assert req.resolution == spec.default_resolution
        assert req.aspect_ratio == spec.default_aspect_ratio
        assert req.audio is (spec.audio == "always" or (spec.audio == "optional" and spec.default_audio))
        assert set(req.options) == set(spec.option_defaults)
        assert normalize(spec, req) == req  # normalising twice changes nothing


def test_every_entry_declares_consistent_defaults(catalog: Catalog) -> None:
    for spec in catalog.all():
        assert spec.resolutions == () or spec.default_resolution in spec.resolutions, spec.id
        assert spec.aspect_ratios == () or spec.default_aspect_ratio in spec.aspect_ratios, spec.id
        assert set(spec.option_defaults) == set(spec.options), spec.id
        for name, default in spec.option_defaults.items():
            assert default in spec.options[name], spec.id
        for resolution, durations in spec.durations_by_resolution.items():
            assert resolution in spec.resolutions, spec.id
            assert set(durations) <= set(spec.durations), spec.id
        for resolution in spec.resolutions:
            assert resolution == resolution.lower(), spec.id


def test_unorderable_models_are_refused_with_the_reason(catalog: Catalog) -> None:
    spec = catalog.get("minimax/hailuo-02")
    with pytest.raises(ModelUnavailable, match="coming soon") as raised:
        normalize(spec, request_for(spec))
    assert raised.value.param == "model"


# --- Thalam (seed-dialects 1.9) ---


def test_thalam_5_i2v_without_image_url(catalog: Catalog) -> None:
    spec = catalog.get("bytedance/seedance-1.5-pro-i2v")
    error = refused(spec, bare(spec), "image_url")
    assert "required" in error.message


@pytest.mark.parametrize("duration", [0, 31])
def test_thalam_6_duration_outside_1_to_30(catalog: Catalog, duration: int) -> None:
    spec = catalog.get("alibaba/wan-2.5-t2v-preview")
    error = refused(spec, bare(spec, duration_s=duration), "duration")
    assert "1 to 30" in error.message


def test_thalam_7_hunyuan_is_fixed_at_five_seconds_and_two_frames(catalog: Catalog) -> None:
    spec = catalog.get("tencent/hunyuan-video-fast")
    refused(spec, bare(spec, duration_s=10), "duration")
    error = refused(spec, bare(spec, aspect_ratio="1:1"), "aspect_ratio")
    assert "16:9 or 9:16" in error.message
    assert normalize(spec, bare(spec, aspect_ratio="9:16")).duration_s == 5


def test_thalam_defaults_follow_the_seed(catalog: Catalog) -> None:
    wan = normalize(
        catalog.get("alibaba/wan-2.5-t2v-preview"), bare(catalog.get("alibaba/wan-2.5-t2v-preview"))
    )
    assert (wan.duration_s, wan.resolution) == (5, "720p")
    pixverse = catalog.get("pixverse/pixverse-v4.5-t2v")
    assert normalize(pixverse, bare(pixverse)).resolution == "540p"
    seedance = catalog.get("bytedance/seedance-1.5-pro-t2v")
    assert normalize(seedance, bare(seedance, resolution="1080p")).resolution == "1080p"


# --- Venice (seed-dialects 2.9) ---


def test_venice_7_duration_not_in_the_model_list(catalog: Catalog) -> None:
    spec = catalog.get("wan-2.5-preview-text-to-video")
    error = refused(spec, bare(spec, duration_s=7), "duration")
    assert "5 or 10" in error.message


def test_venice_8_audio_and_aspect_ratio_the_model_does_not_configure(catalog: Catalog) -> None:
    t2v = catalog.get("wan-2.5-preview-text-to-video")
    assert t2v.dialect["audio_configurable"] is False
    refused(t2v, bare(t2v, audio=False), "audio")
    assert normalize(t2v, bare(t2v)).audio is True
    i2v = catalog.get("wan-2.5-preview-image-to-video")
    assert i2v.aspect_ratios == ()
    refused(i2v, bare(i2v, aspect_ratio="16:9", images=(ImageInput(url=IMAGE),)), "aspect_ratio")
    kling = catalog.get("kling-2.6-pro-text-to-video")
    assert kling.dialect["audio_configurable"] is True
    assert normalize(kling, bare(kling, audio=False)).audio is False
    refused(kling, bare(kling, resolution="720p"), "resolution")


def test_venice_9_image_to_video_needs_an_image(catalog: Catalog) -> None:
    spec = catalog.get("wan-2.5-preview-image-to-video")
    refused(spec, bare(spec), "image_url")
    data_url = ImageInput(url="data:image/jpeg;base64,/9j/4AAQSkZJRg==")
    assert normalize(spec, bare(spec, images=(data_url,))).first_frame == data_url.url


def test_venice_15_prompt_over_the_character_limit(catalog: Catalog) -> None:
    spec = catalog.get("wan-2.5-preview-text-to-video")
    assert normalize(spec, bare(spec, prompt="x" * 2500)).prompt == "x" * 2500
    error = refused(spec, bare(spec, prompt="x" * 2501), "prompt")
    assert "2500" in error.message


# --- MiniMax (seed-dialects 3.9) ---


def test_minimax_5_i2v_without_first_frame(catalog: Catalog) -> None:
    spec = catalog.get("I2V-01")
    refused(spec, bare(spec), "image_url")
    assert normalize(spec, bare(spec, prompt="", images=(ImageInput(url=IMAGE),))).prompt == ""


def test_minimax_7_hailuo_1080p_is_six_seconds_only(catalog: Catalog) -> None:
    spec = catalog.get("MiniMax-Hailuo-02")
    error = refused(spec, bare(spec, resolution="1080P", duration_s=10), "duration")
    assert "1080p" in error.message
    assert "6" in error.message
    ok = normalize(spec, bare(spec, resolution="1080P"))
    assert (ok.resolution, ok.duration_s) == ("1080p", 6)
    assert normalize(spec, bare(spec, resolution="768p", duration_s=10)).duration_s == 10


def test_minimax_10_prompt_over_2000(catalog: Catalog) -> None:
    spec = catalog.get("T2V-01-Director")
    refused(spec, bare(spec, prompt="[Truck left] " + "x" * 2000), "prompt")


def test_minimax_subject_reference_is_required_for_s2v(catalog: Catalog) -> None:
    spec = catalog.get("S2V-01")
    refused(spec, bare(spec), "reference_images")
    two = tuple(ImageInput(url=IMAGE, role="reference") for _ in range(2))
    refused(spec, bare(spec, images=two), "reference_images")
    assert normalize(spec, bare(spec, images=two[:1])).reference_images == [IMAGE]


def test_minimax_01_series_is_fixed(catalog: Catalog) -> None:
    spec = catalog.get("T2V-01")
    refused(spec, bare(spec, duration_s=10), "duration")
    refused(spec, bare(spec, aspect_ratio="16:9"), "aspect_ratio")
    refused(spec, bare(spec, images=(ImageInput(url=IMAGE),)), "image_url")


# --- Apiframe (seed-dialects 4.9) ---


def test_apiframe_6_prompt_length_and_emptiness(catalog: Catalog) -> None:
    spec = catalog.get("kling-3.0")
    assert normalize(spec, bare(spec, prompt="x" * 4000)).prompt == "x" * 4000
    refused(spec, bare(spec, prompt="x" * 4001), "prompt")
    refused(spec, bare(spec, prompt=""), "prompt")
    refused(spec, bare(spec, prompt="   "), "prompt")


def test_apiframe_7_sora_duration_five(catalog: Catalog) -> None:
    spec = catalog.get("sora-2")
    error = refused(spec, bare(spec, duration_s=5), "duration")
    assert "4, 8, 10, 12 or 15" in error.message


def test_apiframe_options_are_checked_and_defaulted(catalog: Catalog) -> None:
    spec = catalog.get("kling-3.0")
    assert normalize(spec, bare(spec)).options == {"mode": "pro"}
    error = refused(spec, bare(spec, options={"mode": "turbo"}), "options.mode")
    assert "standard, pro or 4k" in error.message
    refused(spec, bare(spec, options={"guidance": "1"}), "options.guidance")
    sora = catalog.get("sora-2-pro")
    assert normalize(sora, bare(sora)).options == {"resolution_tier": "standard"}


def test_apiframe_midjourney_needs_a_start_image_and_makes_four(catalog: Catalog) -> None:
    spec = catalog.get("midjourney-video")
    refused(spec, bare(spec), "image_url")
    assert spec.outputs == 4
    assert spec.dialect["params_required"] is True


def test_last_frame_only_where_supported(catalog: Catalog) -> None:
    images = (ImageInput(url=IMAGE), ImageInput(url=IMAGE, role="last_frame"))
    veo = catalog.get("veo-3.1")
    assert normalize(veo, bare(veo, images=images)).last_frame == IMAGE
    sora = catalog.get("sora-2")
    refused(sora, bare(sora, images=images), "last_frame_url")


# --- Kyma (seed-dialects 5.8) ---


@pytest.mark.parametrize("duration", [0, 11])
def test_kyma_7_duration_outside_1_to_10(catalog: Catalog, duration: int) -> None:
    spec = catalog.get("kling-3-pro")
    error = refused(spec, bare(spec, duration_s=duration), "duration")
    assert "1 to 10" in error.message


def test_kyma_7_prompt_over_4000(catalog: Catalog) -> None:
    spec = catalog.get("kling-3-pro")
    refused(spec, bare(spec, prompt="x" * 4001), "prompt")


def test_kyma_12_every_model_takes_an_optional_first_frame(catalog: Catalog) -> None:
    for spec in catalog.in_namespace("kyma"):
        assert spec.image == "optional"
        assert normalize(spec, bare(spec, images=(ImageInput(url=IMAGE),))).first_frame == IMAGE


# --- Field-level details ---


def test_negative_prompt_only_where_supported(catalog: Catalog) -> None:
    kling = catalog.get("kling-3.0")
    assert normalize(kling, bare(kling, negative_prompt="blur")).negative_prompt == "blur"
    sora = catalog.get("sora-2")
    refused(sora, bare(sora, negative_prompt="blur"), "negative_prompt")
    refused(kling, bare(kling, negative_prompt="x" * 4001), "negative_prompt")


def test_audio_on_a_silent_model(catalog: Catalog) -> None:
    spec = catalog.get("kling-3-pro")
    refused(spec, bare(spec, audio=True), "audio")
    assert normalize(spec, bare(spec, audio=False)).audio is False


def test_image_roles_and_counts(catalog: Catalog) -> None:
    spec = catalog.get("veo-3.1")
    refused(spec, bare(spec, images=(ImageInput(url=IMAGE, role="mask"),)), "images")
    two_first = (ImageInput(url=IMAGE), ImageInput(url=IMAGE))
    refused(spec, bare(spec, images=two_first), "image_url")
    refs = tuple(ImageInput(url=IMAGE, role="reference") for _ in range(4))
    error = refused(spec, bare(spec, images=refs), "reference_images")
    assert "at most 3" in error.message


def test_unknown_resolution_lists_the_allowed_ones(catalog: Catalog) -> None:
    spec = catalog.get("MiniMax-Hailuo-2.3")
    error = refused(spec, bare(spec, resolution="4k"), "resolution")
    assert "768p or 1080p" in error.message


def test_allowed_values_for_catalog_endpoints(catalog: Catalog) -> None:
    assert allowed_values(catalog.get("kling-3.0")) == {
        "duration": list(range(3, 16)),
        "resolution": [],
        "aspect_ratio": ["16:9", "9:16", "1:1"],
        "audio": [False, True],
        "options.mode": ["standard", "pro", "4k"],
    }
    assert allowed_values(catalog.get("kling-3-pro-audio"))["audio"] == [True]
    assert allowed_values(catalog.get("T2V-01"))["audio"] == [False]


def test_describe_durations() -> None:
    assert describe_durations(range(1, 31)) == "1 to 30"
    assert describe_durations([10, 5]) == "5 or 10"
    assert describe_durations([6]) == "6"
    assert describe_durations([1, 2]) == "1 or 2"
