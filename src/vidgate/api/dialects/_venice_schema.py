"""Venice's request bodies, checked the way its zod schemas check them.

Every body is a strict object (``additionalProperties: false``): an unknown key
is refused. Problems are collected as zod issues and answered as Venice's
``DetailedError``::

    {"error": "Invalid request parameters",
     "details": {"_errors": [], "duration": {"_errors": ["Invalid enum value. ..."]}},
     "issues": [{"code": "invalid_enum_value", "path": ["duration"], "message": "..."}]}

The queue and quote bodies become ``GenerationRequest``s here; the model's own
constraints (durations as ``"5s"`` strings, ``audio`` only where it is
configurable, ``aspect_ratio`` required where the model lists ratios and refused
where it lists none) are Venice's rules, read from ``spec.dialect`` and the catalog.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from vidgate.catalog.loader import Catalog
from vidgate.catalog.models import ModelSpec
from vidgate.domain.request import GenerationRequest, ImageInput
from vidgate.errors import GatewayError, InvalidRequest, UnknownModel

NAMESPACE = "venice"
INVALID = "Invalid request parameters"
QUOTE_PROMPT = "price quote"  # quotes carry no prompt; validation needs one
QUOTE_IMAGE = "https://quote.invalid/image.png"  # nor an image; never fetched

QUEUE_FIELDS = frozenset(
    {
        "model",
        "prompt",
        "negative_prompt",
        "duration",
        "resolution",
        "aspect_ratio",
        "audio",
        "image_url",
        "audio_url",
        "end_image_url",
        "video_url",
        "reference_image_urls",
        "reference_video_urls",
        "reference_audio_urls",
        "elements",
        "scene_image_urls",
        "keyframes",
        "upscale_factor",
        "bitrate_mode",
        "consents",
    }
)
# Post-seed queue fields vidgate does not model: handed to the upstream as they are.
PASS_THROUGH = (
    "audio_url",
    "video_url",
    "reference_video_urls",
    "reference_audio_urls",
    "elements",
    "scene_image_urls",
    "keyframes",
    "upscale_factor",
    "bitrate_mode",
    "consents",
)
QUOTE_FIELDS = frozenset(
    {
        "model",
        "duration",
        "resolution",
        "aspect_ratio",
        "audio",
        "upscale_factor",
        "video_url",
        "reference_video_total_duration",
    }
)
RETRIEVE_FIELDS = frozenset({"model", "queue_id", "delete_media_on_completion"})
COMPLETE_FIELDS = frozenset({"model", "queue_id"})

# vidgate's field names (``GatewayError.param``) -> Venice's.
FIELD_OF_PARAM = {
    "last_frame_url": "end_image_url",
    "reference_images": "reference_image_urls",
    "images": "image_url",
}
_DURATION = re.compile(r"^(\d+)s$")
_DATA_IMAGE = re.compile(r"^data:image/[a-z0-9.+-]+;base64,", re.IGNORECASE)


# ------------------------------------------------------------------ issues


class Issues:
    """zod issues collected while reading one body."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, field: str | None, message: str, code: str = "custom") -> None:
        self.items.append({"code": code, "path": [field] if field else [], "message": message})

    def raise_if_any(self) -> None:
        if self.items:
            first = self.items[0]["path"]
            raise InvalidRequest(INVALID, param=first[0] if first else None, issues=list(self.items))


def refuse(field: str | None, message: str, code: str = "custom") -> InvalidRequest:
    issues = Issues()
    issues.add(field, message, code)
    return InvalidRequest(INVALID, param=field, issues=issues.items)


def detailed_body(error: GatewayError) -> dict[str, Any]:
    """The DetailedError body for a 400, from collected issues or from ``error.param``."""
    issues: list[dict[str, Any]] = error.extra.get("issues") or []
    if not issues:
        param = error.param
        field = FIELD_OF_PARAM.get(param, param.split(".")[-1]) if param else None
        issues = [{"code": "custom", "path": [field] if field else [], "message": error.message}]
    tree: dict[str, Any] = {"_errors": []}
    for issue in issues:
        path = issue["path"]
        if path:
            tree.setdefault(path[0], {"_errors": []})["_errors"].append(issue["message"])
        else:
            tree["_errors"].append(issue["message"])
    return {"error": INVALID, "details": tree, "issues": issues}


def _kind(value: Any) -> str:
    """The type word zod uses in "Expected string, received number"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "string"


def _one_of(values: Iterable[str]) -> str:
    return " | ".join(f"'{v}'" for v in values)


# ------------------------------------------------------------------ readers


def read_object(raw: bytes, allowed: frozenset[str]) -> dict[str, Any]:
    """The JSON body as a strict object, or a DetailedError."""
    try:
        body = json.loads(raw) if raw.strip() else None
    except (ValueError, UnicodeDecodeError):
        raise refuse(None, "Invalid JSON body", "invalid_json") from None
    if not isinstance(body, dict):
        raise refuse(None, f"Expected object, received {_kind(body)}", "invalid_type")
    unknown = [key for key in body if key not in allowed]
    if unknown:
        keys = ", ".join(f"'{k}'" for k in unknown)
        raise refuse(None, f"Unrecognized key(s) in object: {keys}", "unrecognized_keys")
    return body


def string(body: Mapping[str, Any], name: str, issues: Issues, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            issues.add(name, "Required", "invalid_type")
        return None
    if not isinstance(value, str):
        issues.add(name, f"Expected string, received {_kind(value)}", "invalid_type")
        return None
    if required and not value:
        issues.add(name, "String must contain at least 1 character(s)", "too_small")
        return None
    return value


def boolean(body: Mapping[str, Any], name: str, issues: Issues) -> bool | None:
    value = body.get(name)
    if value is None or isinstance(value, bool):
        return value
    issues.add(name, f"Expected boolean, received {_kind(value)}", "invalid_type")
    return None


def strings(body: Mapping[str, Any], name: str, issues: Issues) -> list[str]:
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        issues.add(name, "Expected array of strings", "invalid_type")
        return []
    return list(value)


def model(catalog: Catalog, body: Mapping[str, Any]) -> tuple[str, ModelSpec]:
    issues = Issues()
    name = string(body, "model", issues, required=True)
    issues.raise_if_any()
    assert name is not None
    try:
        return name, catalog.resolve(NAMESPACE, name)
    except UnknownModel:
        raise refuse("model", f"Invalid model: {name!r} is not a Venice video model") from None


def wire_durations(spec: ModelSpec) -> list[str]:
    return [f"{d}s" for d in spec.durations]


def duration(body: Mapping[str, Any], spec: ModelSpec, issues: Issues) -> int | None:
    """``"5s"`` -> 5, checked against the model's durations."""
    value = body.get("duration")
    allowed = wire_durations(spec)
    if value is None:
        issues.add("duration", "Required", "invalid_type")
        return None
    if not isinstance(value, str):
        issues.add("duration", f"Expected string, received {_kind(value)}", "invalid_type")
        return None
    match = _DURATION.match(value)
    if match is None or value not in allowed:
        message = f"Invalid enum value. Expected {_one_of(allowed)}, received '{value}'"
        issues.add("duration", message, "invalid_enum_value")
        return None
    return int(match.group(1))


def _image_url(value: str | None, name: str, issues: Issues) -> str | None:
    if value is None:
        return None
    lowered = value.lower()
    if lowered.startswith(("http://", "https://")) or _DATA_IMAGE.match(value):
        return value
    issues.add(name, "Expected an http(s) URL or a data:image/...;base64 URL", "invalid_string")
    return None


def _aspect_ratio(body: Mapping[str, Any], spec: ModelSpec, issues: Issues, *, strict: bool) -> str | None:
    value = string(body, "aspect_ratio", issues)
    if not strict:
        return value if spec.aspect_ratios else None  # quotes price it, never refuse it
    if value is not None and not spec.aspect_ratios:
        issues.add("aspect_ratio", f"{spec.name} does not support aspect_ratio; omit it")
    elif value is None and spec.aspect_ratios and "aspect_ratio" in body:
        issues.add("aspect_ratio", "Expected string, received null", "invalid_type")
    elif value is None and spec.aspect_ratios:
        issues.add("aspect_ratio", f"Required: {spec.name} takes {_one_of(spec.aspect_ratios)}")
    return value


def _audio(body: Mapping[str, Any], spec: ModelSpec, issues: Issues) -> bool | None:
    value = boolean(body, "audio", issues)
    configurable = spec.dialect.get("audio_configurable", spec.audio == "optional")
    if value is not None and not configurable:
        issues.add("audio", f"{spec.name} does not support audio configuration; omit audio")
        return None
    return value


# ------------------------------------------------------------------ bodies


def queue_request(catalog: Catalog, body: Mapping[str, Any]) -> tuple[str, GenerationRequest]:
    """``POST /video/queue`` as (the model string sent, the request)."""
    name, spec = model(catalog, body)
    issues = Issues()
    prompt = string(body, "prompt", issues, required=True) or ""
    negative = string(body, "negative_prompt", issues)
    seconds = duration(body, spec, issues)
    resolution = string(body, "resolution", issues)
    aspect_ratio = _aspect_ratio(body, spec, issues, strict=True)
    audio = _audio(body, spec, issues)
    image = _image_url(string(body, "image_url", issues), "image_url", issues)
    last = _image_url(string(body, "end_image_url", issues), "end_image_url", issues)
    references = strings(body, "reference_image_urls", issues)
    if body.get("audio_url") is not None and not spec.dialect.get("audio_input"):
        issues.add("audio_url", f"{spec.name} does not take an audio input; omit audio_url")
    if body.get("video_url") is not None and not spec.dialect.get("video_input"):
        issues.add("video_url", f"{spec.name} does not take a video input; omit video_url")
    issues.raise_if_any()
    if negative is None and spec.negative_prompt:
        negative = spec.dialect.get("default_negative_prompt")
    images = [ImageInput(url=image, role="first_frame")] if image else []
    images += [ImageInput(url=last, role="last_frame")] if last else []
    images += [ImageInput(url=url, role="reference") for url in references]
    request = GenerationRequest(
        model=spec.id,
        prompt=prompt,
        negative_prompt=negative,
        duration_s=seconds,
        resolution=resolution,
        aspect_ratio=aspect_ratio,
        images=tuple(images),
        audio=audio,
        provider_options={k: body[k] for k in PASS_THROUGH if body.get(k) is not None},
    )
    return name, request


def quote_request(catalog: Catalog, body: Mapping[str, Any]) -> GenerationRequest:
    """``POST /video/quote``: pricing inputs only, with placeholders for the rest."""
    _, spec = model(catalog, body)
    issues = Issues()
    seconds = duration(body, spec, issues)
    resolution = string(body, "resolution", issues)
    aspect_ratio = _aspect_ratio(body, spec, issues, strict=False)
    audio = _audio(body, spec, issues)
    issues.raise_if_any()
    image = (ImageInput(url=QUOTE_IMAGE, role="first_frame"),) if spec.requires_image else ()
    return GenerationRequest(
        model=spec.id,
        prompt=QUOTE_PROMPT,
        duration_s=seconds,
        resolution=resolution,
        aspect_ratio=aspect_ratio,
        images=image,
        audio=audio,
    )


def job_reference(body: Mapping[str, Any]) -> tuple[str, str, bool]:
    """(model, queue_id, delete_media_on_completion) of a retrieve or complete body."""
    issues = Issues()
    name = string(body, "model", issues, required=True)
    queue_id = string(body, "queue_id", issues, required=True)
    delete = boolean(body, "delete_media_on_completion", issues)
    issues.raise_if_any()
    assert name is not None
    assert queue_id is not None
    return name, queue_id, bool(delete)


# ------------------------------------------------------------------ catalog


def model_object(spec: ModelSpec) -> dict[str, Any]:
    """A ``/models`` entry: Venice's ``ModelResponse`` with ``model_spec.constraints``."""
    facts = spec.dialect
    default_type = "image-to-video" if spec.requires_image else "text-to-video"
    constraints = {
        "model_type": facts.get("model_type", default_type),
        "aspect_ratios": list(spec.aspect_ratios),
        "resolutions": list(spec.resolutions),
        "durations": wire_durations(spec),
        "audio": facts.get("audio", spec.audio != "none"),
        "audio_configurable": facts.get("audio_configurable", spec.audio == "optional"),
        "audio_input": facts.get("audio_input", False),
        "video_input": facts.get("video_input", False),
        "prompt_character_limit": spec.prompt_max,
    }
    return {
        "id": spec.name,
        "object": "model",
        "owned_by": "venice.ai",
        "type": "video",
        "created": int(facts.get("created", 0)),
        "model_spec": {
            "name": spec.label,
            "description": spec.description,
            "privacy": "anonymized",
            "traits": [],
            "offline": not spec.orderable,
            "constraints": constraints,
        },
    }
