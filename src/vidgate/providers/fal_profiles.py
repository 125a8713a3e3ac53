"""What each fal endpoint family takes: its first-frame and audio fields, how it spells
a duration, which generic fields it has at all, and the dialect option names it spells
its own way. Facts from each family's fal model page; the longest matching endpoint-id
prefix wins.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vidgate.providers.base import UpstreamRejected


@dataclass(frozen=True, slots=True)
class Profile:
    """Which request fields an endpoint family takes, and how it spells duration."""

    duration: Callable[[int], Any] | None = str
    resolution: bool = True
    aspect_ratio: bool = True
    negative_prompt: bool = True
    seed: bool = True
    audio: bool = True  # sends the audio switch, named ``audio_field``
    audio_field: str = "generate_audio"
    image_field: str = "image_url"  # the first frame
    # The endpoint's own words for some aspect ratios (Seedance's "adaptive" is fal's "auto").
    aspect_ratio_names: Mapping[str, str] = field(default_factory=dict)
    # Pass-through options (a URL) a dialect names its own way -> the endpoint's field.
    url_option_names: Mapping[str, str] = field(default_factory=dict)


# Endpoint-id prefix -> profile; the longest matching prefix wins. Schemas drift per
# endpoint, so only what the spec states is encoded; route params and provider_options
# fill in the rest.
_PROFILES: Mapping[str, Profile] = {
    "fal-ai/veo": Profile(duration=lambda s: f"{s}s"),
    "fal-ai/kling-video": Profile(resolution=False, seed=False, audio=False),
    # Kling 3.0 takes ``start_image_url`` and ``generate_audio``; its Turbo tier and O3 take
    # ``image_url`` (fal's model pages), Turbo has no audio switch.
    "fal-ai/kling-video/v3": Profile(resolution=False, seed=False, image_field="start_image_url"),
    "fal-ai/kling-video/v3/turbo": Profile(resolution=False, seed=False, audio=False),
    "fal-ai/kling-video/o3": Profile(resolution=False, seed=False),
    "fal-ai/kling-video/v4": Profile(duration=int, seed=False, audio=False),
    # LTX 2.3 and Vidu Q3 take the duration as an integer; Vidu Q3's audio switch is ``audio``,
    # PixVerse v5.6's ``generate_audio_switch``; Ovi makes one fixed clip from an image.
    "fal-ai/ltx-2.3": Profile(duration=int),
    "fal-ai/vidu/q3": Profile(duration=int, negative_prompt=False, audio_field="audio"),
    "fal-ai/pixverse/v5.6": Profile(audio_field="generate_audio_switch"),
    "fal-ai/pixverse/c1": Profile(duration=int, audio_field="generate_audio_switch"),
    "fal-ai/ovi": Profile(duration=None, resolution=False, aspect_ratio=False, audio=False),
    # Wan 2.7 and HappyHorse take an integer duration and have no audio switch (Wan 2.7 adds
    # a soundtrack of its own, HappyHorse always generates audio); HappyHorse has no negative prompt.
    "fal-ai/wan/v2.7": Profile(duration=int, audio=False),
    "alibaba/happy-horse": Profile(duration=int, negative_prompt=False, audio=False),
    # Gemini Omni Flash takes a prompt, an aspect ratio and an integer duration (720p, audio
    # always on); nothing else.
    "google/gemini-omni-flash": Profile(
        duration=int, resolution=False, negative_prompt=False, seed=False, audio=False
    ),
    "fal-ai/hunyuan-video": Profile(duration=None, negative_prompt=False, audio=False),
    # Seedance 1.5 and 2.0 call the model's own choice of frame "auto" (fal's model pages);
    # Ark and the catalog call it "adaptive".
    "fal-ai/bytedance/seedance/v1.5": Profile(aspect_ratio_names={"adaptive": "auto"}),
    "bytedance/seedance-2.0": Profile(aspect_ratio_names={"adaptive": "auto"}),
    "fal-ai/ltx-video": Profile(duration=None, aspect_ratio=False, audio=False),
    "fal-ai/wan": Profile(duration=None, audio=False),
    # Wan 2.5 makes 5 or 10 s clips (``duration`` "5" | "10") and takes a soundtrack as
    # ``audio_url`` (fal's wan-25-preview pages); Apiframe's wanParams call that URL ``audio``.
    "fal-ai/wan-25-preview": Profile(audio=False, url_option_names={"audio": "audio_url"}),
}
_DEFAULT_PROFILE = Profile()


def profile_for(endpoint: str) -> Profile:
    matches = [prefix for prefix in _PROFILES if endpoint.startswith(prefix)]
    return _PROFILES[max(matches, key=len)] if matches else _DEFAULT_PROFILE


def renamed(options: Mapping[str, Any], names: Mapping[str, str]) -> Mapping[str, Any]:
    """``options`` with each URL given under a dialect's name moved to the endpoint's
    field; both names with different URLs contradict each other and are refused."""
    moved = dict(options)
    for ours, theirs in names.items():
        value = moved.get(ours)
        if not isinstance(value, str):
            continue
        if theirs in moved and moved[theirs] != value:
            raise UpstreamRejected(f"{ours} and {theirs} name different URLs for one input; give one of them")
        moved[theirs] = moved.pop(ours)
    return moved
