"""Apiframe's ``GenerateVideoRequest`` (a ``oneOf`` keyed by ``model``) into a GenerationRequest.

The common fields are ``prompt``, ``model``, ``webhookUrl`` and ``webhookEvents``;
besides them a body may hold exactly one ``<family>Params`` block, the one the
model's catalog entry names (``spec.dialect["family"]``), with only the keys that
entry lists (``spec.dialect["fields"]``). Anything else is refused with 400, as
Apiframe's ``additionalProperties: false`` schema does.

Each block key is type-checked here, then lands where vidgate keeps it: sizes and
images on the request itself, enumerated choices (``mode``, ``motion``, Sora's
``resolution`` tier, Wan's ``multi_shots`` as ``shot_type`` ``multi``/``single``) in
``options``, and everything vidgate does not model
(``camera_fixed``, ``multi_prompt``, ``loop``...) in ``provider_options`` for the
upstream. Keys the entry lists as ``dropped_fields`` are accepted and checked but not
passed on (the upstream has no such control). The constraints themselves (which
durations, which resolutions) are the catalog's; ``wire_error`` turns its answers
back into Apiframe's field paths.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from vidgate.catalog.loader import Catalog
from vidgate.catalog.models import ModelSpec
from vidgate.domain.request import GenerationRequest, ImageInput
from vidgate.errors import GatewayError, InvalidRequest

NAMESPACE = "apiframe"
COMMON_FIELDS = ("prompt", "model", "webhookUrl", "webhookEvents")
# Apiframe's webhook events -> the vidgate event types they cover.
EVENTS = {
    "progress": ("video.progress",),
    "completed": ("video.completed",),
    "failed": ("video.failed", "video.expired"),
}
DEFAULT_EVENTS = ("completed", "failed")  # webhookEvents left out (INFERRED default)
_FAMILY_KEY = re.compile(r"^[a-z][A-Za-z]*Params$")

Check = Callable[[Any], str | None]  # a value -> why it is wrong, or None


def _is_int(value: Any) -> str | None:
    return None if isinstance(value, int) and not isinstance(value, bool) else "Expected integer"


def _is_str(value: Any) -> str | None:
    return None if isinstance(value, str) else "Expected string"


def _is_bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else "Expected boolean"


def _is_uri(value: Any) -> str | None:
    if isinstance(value, str) and value.startswith("data:"):
        return None
    if not isinstance(value, str) or urlparse(value).scheme not in ("http", "https"):
        return "Invalid url"
    return None if urlparse(value).netloc else "Invalid url"


def _uri_list(most: int) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, list):
            return "Expected array"
        if len(value) > most:
            return f"Array must contain at most {most} element(s)"
        return next((why for why in map(_is_uri, value) if why), None)

    return check


def _number(low: float, high: float) -> Check:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "Expected number"
        return None if low <= value <= high else f"Number must be between {low} and {high}"

    return check


def _is_list(value: Any) -> str | None:
    return None if isinstance(value, list) else "Expected array"


# The type of every block key the catalog's families use; a key not listed takes any JSON.
FIELD_CHECKS: dict[str, Check] = {
    "duration": _is_int,
    "seed": _is_int,
    "aspect_ratio": _is_str,
    "resolution": _is_str,
    "mode": _is_str,
    "motion": _is_str,
    "negative_prompt": _is_str,
    "multi_prompt": _is_str,
    "start_image": _is_uri,
    "image": _is_uri,
    "end_image": _is_uri,
    "last_frame": _is_uri,
    "audio": _is_uri,
    "generate_audio": _is_bool,
    "audio_enabled": _is_bool,
    "camera_fixed": _is_bool,
    "loop": _is_bool,
    "prompt_optimizer": _is_bool,
    "enable_prompt_expansion": _is_bool,
    "multi_shots": _is_bool,
    "web_search": _is_bool,
    "return_last_frame": _is_bool,
    "guidance_scale": _number(0, 1),
    "reference_images": _uri_list(9),
    "reference_image_urls": _uri_list(9),
    "reference_video_urls": _uri_list(3),
    "reference_audio_urls": _uri_list(3),
    "concepts": _is_list,
}

# Block keys vidgate models itself, and the vidgate field each one fills.
TARGETS = {
    "duration": "duration",
    "aspect_ratio": "aspect_ratio",
    "resolution": "resolution",
    "start_image": "image_url",
    "image": "image_url",
    "end_image": "last_frame_url",
    "last_frame": "last_frame_url",
    "negative_prompt": "negative_prompt",
    "generate_audio": "audio",
    "audio_enabled": "audio",
    "seed": "seed",
    "reference_images": "reference_images",
    "reference_image_urls": "reference_images",
}
_IMAGE_ROLES = {"image_url": "first_frame", "last_frame_url": "last_frame", "reference_images": "reference"}
# Options that Apiframe asks for with a boolean: the option's value for true and for false.
BOOL_OPTIONS = {"shot_type": ("multi", "single")}


@dataclass(frozen=True, slots=True)
class Parsed:
    """A translated body: the catalog entry, the request, and how to name its fields back."""

    spec: ModelSpec
    request: GenerationRequest
    wire_names: dict[str, str]  # vidgate param -> Apiframe JSON path


def invalid(path: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{path}: {message}" if path else message, param=path or None)


def parse_generate(raw: bytes, catalog: Catalog) -> Parsed:
    """The request a ``POST /v2/videos/generate`` body asks for, or InvalidRequest."""
    body = _json_object(raw)
    spec = _model(body, catalog)
    family = str(spec.dialect.get("family", ""))
    for key in body:
        if key not in COMMON_FIELDS and key != family:
            hint = f"; {spec.name} takes {family}" if _FAMILY_KEY.match(key) and family else ""
            raise invalid(key, f"Unrecognized key{hint}")
    prompt = body.get("prompt")
    if prompt is None:
        raise invalid("prompt", "Required")
    if not isinstance(prompt, str):
        raise invalid("prompt", "Expected string")
    if not prompt.strip():
        raise invalid("prompt", "String must contain at least 1 character(s)")
    values: dict[str, Any] = {"model": spec.id, "prompt": prompt}
    values.update(_webhook(body))
    block = body.get(family)
    if block is None and spec.dialect.get("params_required"):
        raise invalid(family, f"Required for model {spec.name}")
    values.update(_block(spec, family, block if block is not None else {}))
    return Parsed(spec, GenerationRequest(**values), wire_names(spec))


def wire_names(spec: ModelSpec) -> dict[str, str]:
    """vidgate's param names -> the Apiframe paths that fill them, for this model."""
    family = str(spec.dialect.get("family", ""))
    names = {"prompt": "prompt", "model": "model", "webhook_url": "webhookUrl"}
    option_fields: dict[str, str] = dict(spec.dialect.get("option_fields", {}))
    for field in spec.dialect.get("fields", ()):
        target = TARGETS.get(field)
        if field in option_fields:
            target = f"options.{option_fields[field]}"
        elif field in spec.options:
            target = f"options.{field}"
        if target is not None:
            names.setdefault(target, f"{family}.{field}")
    return names


def wire_error(error: GatewayError, names: dict[str, str]) -> GatewayError:
    """``error`` with vidgate's field names replaced by Apiframe's paths (param and message)."""
    if not isinstance(error, InvalidRequest) or error.param not in names:
        return error
    path = names[error.param]
    message = error.message
    for ours, theirs in sorted(names.items(), key=lambda item: -len(item[0])):
        if "_" in ours or "." in ours:
            message = re.sub(rf"(?<![\w.]){re.escape(ours)}\b", theirs.rpartition(".")[2], message)
    return InvalidRequest(f"{path}: {message}", param=path, code=error.code)


def _json_object(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise invalid("", "Request body is required")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise invalid("", "Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise invalid("", "Expected object")
    return body


def _model(body: dict[str, Any], catalog: Catalog) -> ModelSpec:
    model = body.get("model")
    if model is None:
        raise invalid("model", "Required")
    if not isinstance(model, str):
        raise invalid("model", "Expected string")
    known = [spec for spec in catalog.in_namespace(NAMESPACE) if spec.name == model]
    if not known:
        names = ", ".join(spec.name for spec in catalog.in_namespace(NAMESPACE))
        raise invalid("model", f"Invalid model {model!r}; expected one of: {names}")
    return known[0]


def _webhook(body: dict[str, Any]) -> dict[str, Any]:
    url = body.get("webhookUrl")
    events = body.get("webhookEvents")
    if url is not None and (_is_uri(url) is not None or str(url).startswith("data:")):
        raise invalid("webhookUrl", "Invalid url")
    if events is not None:
        if not isinstance(events, list):
            raise invalid("webhookEvents", "Expected array")
        if not events:
            raise invalid("webhookEvents", "Array must contain at least 1 element(s)")
        wrong = [e for e in events if e not in EVENTS]
        if wrong:
            raise invalid(
                "webhookEvents",
                f"Invalid enum value {wrong[0]!r}; expected {', '.join(repr(e) for e in EVENTS)}",
            )
    if url is None:
        return {}
    chosen = [e for e in EVENTS if e in (events or DEFAULT_EVENTS)]
    return {
        "webhook_url": url,
        "webhook_events": tuple(kind for event in chosen for kind in EVENTS[event]),
    }


def _block(spec: ModelSpec, family: str, block: Any) -> dict[str, Any]:
    """The GenerationRequest fields one ``<family>Params`` block sets."""
    if not isinstance(block, dict):
        raise invalid(family, "Expected object")
    allowed = set(spec.dialect.get("fields", ()))
    dropped = set(spec.dialect.get("dropped_fields", ()))
    option_fields: dict[str, str] = dict(spec.dialect.get("option_fields", {}))
    resolution_names: dict[str, str] = dict(spec.dialect.get("resolution_names", {}))
    values: dict[str, Any] = {}
    images: list[ImageInput] = []
    options: dict[str, Any] = {}
    passed_on: dict[str, Any] = {}
    for field, value in block.items():
        path = f"{family}.{field}"
        if field not in allowed:
            raise invalid(path, f"Unrecognized key for {spec.name}")
        check = FIELD_CHECKS.get(field)
        why = check(value) if check else None
        if why:
            raise invalid(path, why)
        if field in dropped:
            continue
        if field in option_fields:
            name = option_fields[field]
            if name in BOOL_OPTIONS and isinstance(value, bool):
                value = BOOL_OPTIONS[name][0 if value else 1]
            options[name] = value
        elif field == "resolution" and resolution_names:
            options_of = {wire: ours for ours, wire in resolution_names.items()}
            if value not in options_of:
                raise invalid(path, f"Invalid enum value {value!r}; expected {' | '.join(options_of)}")
            values["resolution"] = options_of[value]
        elif field in spec.options:
            options[field] = value
        elif (target := TARGETS.get(field)) in _IMAGE_ROLES:
            urls = value if isinstance(value, list) else [value]
            images += [ImageInput(url=url, role=_IMAGE_ROLES[str(target)]) for url in urls]
        elif target is not None:
            values["duration_s" if target == "duration" else target] = value
        else:
            passed_on[field] = value
    if options.get("shot_type") == "multi" and passed_on.get("enable_prompt_expansion") is False:
        # Wan plans its shots while it expands the prompt: without that it makes one.
        raise invalid(
            f"{family}.multi_shots",
            "multi_shots needs enable_prompt_expansion; Wan makes several shots only from an expanded prompt",
        )
    return values | {"images": tuple(images), "options": options, "provider_options": passed_on}
