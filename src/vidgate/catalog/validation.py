"""Checking a request against its catalog entry, and filling what it left out.

``normalize`` is the single place where a dialect-free request meets the model's
constraints. It fills defaults (duration, resolution, aspect ratio, audio, option
values), checks every constraint the entry declares and answers the first broken
one with ``InvalidRequest`` whose ``param`` is vidgate's own field name:
``prompt``, ``negative_prompt``, ``duration``, ``resolution``, ``aspect_ratio``,
``image_url``, ``last_frame_url``, ``reference_images``, ``images``, ``audio``,
``options.<name>``. A listed-but-unorderable model answers ``ModelUnavailable``
(``param="model"``). Messages name the field and the allowed values.

Dialect-only wire rules (Venice refusing an ``audio`` field it cannot configure,
Apiframe's per-family blocks...) stay in the dialects; they read ``spec.dialect``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vidgate.catalog.models import ModelSpec
from vidgate.domain.request import GenerationRequest
from vidgate.errors import InvalidRequest, ModelUnavailable

IMAGE_ROLES = ("first_frame", "last_frame", "reference")


def normalize(spec: ModelSpec, req: GenerationRequest) -> GenerationRequest:
    """``req`` with every default filled in, or InvalidRequest/ModelUnavailable."""
    if not spec.orderable:
        raise ModelUnavailable(
            f"{spec.name} cannot be ordered: {spec.unavailable_reason or 'not available'}",
            param="model",
        )
    _check_prompt(spec, req)
    resolution = _resolution(spec, req.resolution)
    duration = _duration(spec, req.duration_s, resolution)
    aspect_ratio = _aspect_ratio(spec, req.aspect_ratio)
    _check_images(spec, req)
    audio = _audio(spec, req.audio)
    options = _options(spec, req.options)
    return req.model_copy(
        update={
            "model": spec.id,
            "duration_s": duration,
            "resolution": resolution,
            "aspect_ratio": aspect_ratio,
            "audio": audio,
            "options": options,
        }
    )


def allowed_values(spec: ModelSpec) -> dict[str, list[Any]]:
    """The values each field accepts, for catalog endpoints and the playground.

    An empty list means the model does not take the field at all.
    """
    values: dict[str, list[Any]] = {
        "duration": list(spec.durations),
        "resolution": list(spec.resolutions),
        "aspect_ratio": list(spec.aspect_ratios),
        "audio": _audio_values(spec),
    }
    for name, choices in spec.options.items():
        values[f"options.{name}"] = list(choices)
    return values


def describe_durations(durations: Sequence[int]) -> str:
    """``[1, 2, ..., 30]`` as ``"1 to 30"``; ``[5, 10]`` as ``"5 or 10"``."""
    ordered = sorted(durations)
    if len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{ordered[0]} to {ordered[-1]}"
    return _one_of([str(d) for d in ordered])


def _check_prompt(spec: ModelSpec, req: GenerationRequest) -> None:
    if spec.prompt_required and not req.prompt.strip():
        raise InvalidRequest(f"prompt is required by {spec.name} and must not be empty", param="prompt")
    if len(req.prompt) > spec.prompt_max:
        raise InvalidRequest(
            f"prompt is {len(req.prompt)} characters long; {spec.name} accepts at most {spec.prompt_max}",
            param="prompt",
        )
    negative = req.negative_prompt
    if negative:
        if not spec.negative_prompt:
            raise InvalidRequest(f"negative_prompt is not supported by {spec.name}", param="negative_prompt")
        if len(negative) > spec.prompt_max:
            raise InvalidRequest(
                f"negative_prompt is {len(negative)} characters long; {spec.name} accepts "
                f"at most {spec.prompt_max}",
                param="negative_prompt",
            )


def _resolution(spec: ModelSpec, value: str | None) -> str | None:
    if value is None:
        return spec.default_resolution
    canonical = value.strip().lower()
    if not spec.resolutions:
        raise InvalidRequest(
            f"resolution is not configurable on {spec.name}; leave it out", param="resolution"
        )
    if canonical not in spec.resolutions:
        raise InvalidRequest(
            f"resolution {value!r} is not supported by {spec.name}; allowed: {_one_of(spec.resolutions)}",
            param="resolution",
        )
    return canonical


def _duration(spec: ModelSpec, value: int | None, resolution: str | None) -> int:
    only = spec.durations_by_resolution.get(resolution) if resolution else None
    if value is None:
        if only and spec.default_duration not in only:
            return min(only, key=lambda d: (abs(d - spec.default_duration), d))
        return spec.default_duration
    if isinstance(value, bool) or value not in spec.durations:
        raise InvalidRequest(
            f"duration {value!r} is not supported by {spec.name}; allowed: "
            f"{describe_durations(spec.durations)} seconds",
            param="duration",
        )
    if only and value not in only:
        raise InvalidRequest(
            f"duration {value} is not available at {resolution} on {spec.name}; "
            f"at {resolution} the duration must be {describe_durations(only)} seconds",
            param="duration",
        )
    return value


def _aspect_ratio(spec: ModelSpec, value: str | None) -> str | None:
    if value is None:
        return spec.default_aspect_ratio
    canonical = value.strip()
    if not spec.aspect_ratios:
        raise InvalidRequest(
            f"aspect_ratio is not configurable on {spec.name}; leave it out",
            param="aspect_ratio",
        )
    if canonical not in spec.aspect_ratios:
        raise InvalidRequest(
            f"aspect_ratio {value!r} is not supported by {spec.name}; allowed: {_one_of(spec.aspect_ratios)}",
            param="aspect_ratio",
        )
    return canonical


def _check_images(spec: ModelSpec, req: GenerationRequest) -> None:
    roles = [image.role for image in req.images]
    unknown = sorted({role for role in roles if role not in IMAGE_ROLES})
    if unknown:
        raise InvalidRequest(
            f"images: unknown role(s) {', '.join(unknown)}; use {_one_of(IMAGE_ROLES)}",
            param="images",
        )
    first_frames = roles.count("first_frame")
    if first_frames > 1:
        raise InvalidRequest("only one first frame (image_url) may be given", param="image_url")
    if first_frames and spec.image == "none":
        raise InvalidRequest(f"{spec.name} does not take an input image (image_url)", param="image_url")
    if not first_frames and spec.image == "required":
        raise InvalidRequest(f"image_url is required by {spec.name} (the first frame)", param="image_url")
    last_frames = roles.count("last_frame")
    if last_frames and not spec.last_frame:
        raise InvalidRequest(
            f"{spec.name} does not take a last frame (last_frame_url)", param="last_frame_url"
        )
    if last_frames > 1:
        raise InvalidRequest("only one last frame (last_frame_url) may be given", param="last_frame_url")
    references = roles.count("reference")
    if references > spec.reference_images_max:
        limit = f"at most {spec.reference_images_max}" if spec.reference_images_max else "no"
        raise InvalidRequest(
            f"{spec.name} accepts {limit} reference images (reference_images, got {references})",
            param="reference_images",
        )
    if not references and set(spec.modes) == {"reference"}:
        raise InvalidRequest(
            f"{spec.name} needs one reference image (reference_images)", param="reference_images"
        )


def _audio(spec: ModelSpec, value: bool | None) -> bool:
    if value is None:
        return spec.audio == "always" or (spec.audio == "optional" and spec.default_audio)
    if value and spec.audio == "none":
        raise InvalidRequest(f"audio is not supported by {spec.name}; allowed: false", param="audio")
    if not value and spec.audio == "always":
        raise InvalidRequest(
            f"{spec.name} always generates audio; audio cannot be turned off (allowed: true)",
            param="audio",
        )
    return value


def _audio_values(spec: ModelSpec) -> list[Any]:
    if spec.audio == "optional":
        return [False, True]
    return [spec.audio == "always"]


def _options(spec: ModelSpec, given: dict[str, Any]) -> dict[str, Any]:
    for name, value in given.items():
        if name not in spec.options:
            known = _one_of(list(spec.options)) if spec.options else "none"
            raise InvalidRequest(
                f"option {name!r} is not supported by {spec.name}; options: {known}",
                param=f"options.{name}",
            )
        choices = spec.options[name]
        if not isinstance(value, str) or value not in choices:
            raise InvalidRequest(
                f"options.{name} {value!r} is not supported by {spec.name}; allowed: {_one_of(choices)}",
                param=f"options.{name}",
            )
    filled = dict(given)
    for name, default in spec.option_defaults.items():
        filled.setdefault(name, default)
    return filled


def _one_of(values: Sequence[str]) -> str:
    if not values:
        return "none"
    if len(values) == 1:
        return values[0]
    return f"{', '.join(values[:-1])} or {values[-1]}"
