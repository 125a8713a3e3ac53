"""Self-hosted ComfyUI adapter: run an API-format workflow with the request injected.

Wire facts (specs/upstream-protocols.md §11b, docs.comfy.org server routes):

- No auth of its own; when an API key is configured it is sent as ``Authorization:
  Bearer <key>`` for the reverse proxy in front (our convention, not ComfyUI's).
- ``POST /prompt`` ``{"prompt": <graph>, "client_id": <uuid>, "prompt_id": <uuid>}`` -> ``{"prompt_id",
  "number", "node_errors"}``; a 400 carries ``error`` (``type``, ``message``) and
  ``node_errors``.
- ``GET /history/{prompt_id}`` is ``{}`` until the run ends, then ``status.status_str``
  is ``success`` or ``error`` (``execution_error`` / ``execution_interrupted`` in
  ``messages``) and ``outputs`` lists files per node (core ``SaveVideo`` under
  ``images``, VideoHelperSuite under ``gifs``); every list is scanned for video files.
- ``GET /queue`` -> ``queue_running`` / ``queue_pending`` lists of
  ``[number, prompt_id, ...]``: queued vs running, and the queue position.
- ``GET /view?filename=&subfolder=&type=output`` serves the file.
- Cancel: ``POST /queue {"delete": [id]}`` while pending, ``POST /interrupt
  {"prompt_id": id}`` while running. ``POST /upload/image`` (multipart) takes images.
- Reconciliation: the ``prompt_id`` we send is derived from the job's idempotency key
  (newer ComfyUI builds honour a client-supplied ``prompt_id``; older ones ignore it),
  so ``find`` asks ``/history/{id}`` and ``/queue`` for an earlier attempt's run. The
  gateway job id also rides in ``extra_data.vidgate_job``.
- Input images a user named by URL are fetched only through ``ctx.user_http`` (the URL
  guard checks every hop), within a size and time cap; an error never quotes the body.

The workflow comes from ``ctx.options["workflow"]`` (a path to an API-format JSON file,
or the JSON itself), else the small built-in LTX-Video template below. Values are
injected into string inputs that are exactly ``"{{name}}"`` (typed values) or contain
``{{name}}`` (text): ``prompt``, ``negative_prompt``, ``seed`` (random when not given),
``length`` (frames: ``duration_s * fps + 1``), ``fps`` (24), ``width`` / ``height`` (from
resolution and aspect ratio), ``duration``, ``model`` (the route's model, e.g. a
checkpoint file) and ``image`` (the uploaded first frame). Route params and
provider_options named ``"<node_id>.<input>"`` set that input; other names fill
placeholders. A workflow without any placeholder is injected by shape instead: text
encoders linked to a ``positive`` / ``negative`` input, ``seed`` / ``noise_seed``,
``length``, and ``LoadImage.image``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import logging
import re
import secrets
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from vidgate.domain.request import GenerationRequest
from vidgate.providers.adapter import AdapterBase
from vidgate.providers.base import (
    JSON,
    Capability,
    ProviderContext,
    Route,
    SubmitAttempt,
    UpstreamError,
    UpstreamOutput,
    UpstreamProtocolError,
    UpstreamRef,
    UpstreamRejected,
    UpstreamStatus,
    state_for,
)
from vidgate.providers.http import (
    accepted_id,
    dig,
    expect_dict,
    fetch_user_input,
    request_id_of,
    request_json,
)

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".gif")
MAX_IMAGE_BYTES = 20 * 1024 * 1024
FETCH_TIMEOUT_S = 30.0  # in all, for one input image a user named
PROMPT_ID_NAMESPACE = uuid.UUID("6f1d3c52-8a0e-4c57-9a43-0d6f7b9e2c11")
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")

# A starting point (LTX-Video with core nodes); operators export their own workflow.
DEFAULT_WORKFLOW: JSON = {
    "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "{{model}}"}},
    "2": {
        "class_type": "CLIPLoader",
        "inputs": {"clip_name": "t5xxl_fp16.safetensors", "type": "ltxv"},
    },
    "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "{{prompt}}", "clip": ["2", 0]}},
    "4": {
        "class_type": "CLIPTextEncode",
        "inputs": {"text": "{{negative_prompt}}", "clip": ["2", 0]},
    },
    "5": {
        "class_type": "LTXVConditioning",
        "inputs": {"positive": ["3", 0], "negative": ["4", 0], "frame_rate": "{{fps}}"},
    },
    "6": {
        "class_type": "EmptyLTXVLatentVideo",
        "inputs": {
            "width": "{{width}}",
            "height": "{{height}}",
            "length": "{{length}}",
            "batch_size": 1,
        },
    },
    "7": {
        "class_type": "KSampler",
        "inputs": {
            "model": ["1", 0],
            "seed": "{{seed}}",
            "steps": 30,
            "cfg": 3.0,
            "sampler_name": "euler",
            "scheduler": "simple",
            "denoise": 1.0,
            "positive": ["5", 0],
            "negative": ["5", 1],
            "latent_image": ["6", 0],
        },
    },
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["7", 0], "vae": ["1", 2]}},
    "9": {"class_type": "CreateVideo", "inputs": {"images": ["8", 0], "fps": "{{fps}}"}},
    "10": {
        "class_type": "SaveVideo",
        "inputs": {
            "video": ["9", 0],
            "filename_prefix": "vidgate/video",
            "format": "mp4",
            "codec": "h264",
        },
    },
}


def load_workflow(option: str | None) -> JSON:
    """The API-format graph from the option (inline JSON or a file path), or the default."""
    if not option:
        return copy.deepcopy(DEFAULT_WORKFLOW)
    text = option if option.lstrip().startswith("{") else Path(option).read_text("utf-8")
    graph = json.loads(text)
    if not isinstance(graph, dict) or "nodes" in graph:
        raise ValueError("the ComfyUI workflow must be exported in API format")
    if not all(isinstance(node, dict) and "class_type" in node for node in graph.values()):
        raise ValueError("every node of the ComfyUI workflow needs a class_type")
    return graph


def frame_size(resolution: str | None, aspect_ratio: str | None) -> tuple[int, int]:
    """(width, height) for ``720p`` / ``16:9``, rounded to multiples of 16."""
    short = int(resolution[:-1]) if resolution and resolution[:-1].isdigit() else 480
    w, _, h = (aspect_ratio or "16:9").partition(":")
    ratio = int(w) / int(h) if w.isdigit() and h.isdigit() and int(h) else 16 / 9
    long = short if ratio == 1 else round(short * max(ratio, 1 / ratio) / 16) * 16
    return (long, short) if ratio >= 1 else (short, long)


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[1], int)


def _placeholders(graph: JSON) -> set[str]:
    found: set[str] = set()
    for node in graph.values():
        inputs = dig(node, "inputs")
        for value in inputs.values() if isinstance(inputs, dict) else ():
            if isinstance(value, str):
                found.update(_PLACEHOLDER.findall(value))
    return found


def fill_placeholders(graph: JSON, values: Mapping[str, Any]) -> None:
    """Replace ``"{{name}}"`` inputs with typed values and ``{{name}}`` inside text."""
    for node in graph.values():
        inputs = node.get("inputs")
        for key, value in list(inputs.items()) if isinstance(inputs, dict) else ():
            if not isinstance(value, str) or "{{" not in value:
                continue
            whole = _PLACEHOLDER.fullmatch(value)
            if whole and whole.group(1) in values:
                inputs[key] = values[whole.group(1)]
            else:
                inputs[key] = _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), value)


def _text_nodes(graph: JSON, role: str) -> set[str]:
    """Text-encoder nodes feeding any ``role`` (positive/negative) input, a few hops deep."""
    found: set[str] = set()
    frontier = [n["inputs"][role] for n in graph.values() if _is_link(dig(n, "inputs", role))]
    for _ in range(4):
        next_frontier = []
        for link in frontier:
            node_id = str(link[0])
            inputs = dig(graph, node_id, "inputs")
            if isinstance(dig(inputs, "text"), str):
                found.add(node_id)
            elif _is_link(dig(inputs, role)):
                next_frontier.append(inputs[role])
        frontier = next_frontier
    return found


def inject_by_shape(graph: JSON, values: Mapping[str, Any]) -> None:
    """For workflows without placeholders: set inputs found by the graph's shape."""
    negatives = _text_nodes(graph, "negative")
    positives = _text_nodes(graph, "positive") - negatives
    for node_id, node in graph.items():
        inputs = node.get("inputs")
        if not isinstance(inputs, dict):
            continue
        if node_id in positives:
            inputs["text"] = values["prompt"]
        elif node_id in negatives and values.get("negative_prompt"):
            inputs["text"] = values["negative_prompt"]
        for key in ("seed", "noise_seed"):
            if isinstance(inputs.get(key), int) and "seed" in values:
                inputs[key] = values["seed"]
        if isinstance(inputs.get("length"), int) and "length" in values:
            inputs["length"] = values["length"]
        if node.get("class_type") == "LoadImage" and "image" in values:
            inputs["image"] = values["image"]


def _video_outputs(entry: Any) -> list[tuple[str, str, str]]:
    """(filename, subfolder, type) of every video file in a history entry, mp4 first."""
    files: list[tuple[str, str, str]] = []
    outputs = dig(entry, "outputs")
    for node_output in outputs.values() if isinstance(outputs, dict) else ():
        for items in node_output.values() if isinstance(node_output, dict) else ():
            for item in items if isinstance(items, list) else ():
                name = dig(item, "filename")
                if isinstance(name, str) and name.lower().endswith(VIDEO_SUFFIXES):
                    sub, kind = dig(item, "subfolder"), dig(item, "type")
                    files.append((name, sub if isinstance(sub, str) else "", str(kind or "output")))
    return sorted(files, key=lambda f: not f[0].lower().endswith(".mp4"))


def _classify(status: int, body: Any, request_id: str | None) -> UpstreamError | None:
    """A refused prompt: ``error.message`` plus the first node error, as a rejection."""
    message = dig(body, "error", "message")
    if status != 400 or not isinstance(message, str):
        return None
    node_errors = dig(body, "node_errors")
    for node_id, errors in node_errors.items() if isinstance(node_errors, dict) else ():
        detail = dig(errors, "errors", 0)
        text = dig(detail, "details") or dig(detail, "message")
        message = f"{message} (node {node_id}: {text})"
        break
    return UpstreamRejected(message, status_code=status, request_id=request_id)


class ComfyUIAdapter(AdapterBase):
    """A ComfyUI server: queue the workflow, read history and queue, fetch via /view."""

    name = "comfyui"
    capabilities = frozenset(
        {
            Capability.CANCEL,
            Capability.IMAGE_INPUT,
            Capability.NEGATIVE_PROMPT,
            Capability.SEED,
            Capability.FIND,
        }
    )

    def __init__(self, ctx: ProviderContext) -> None:
        super().__init__(ctx)
        self._base = ctx.base_url.rstrip("/")
        self._workflow: JSON | None = None
        self._workflow_error: str | None = None
        try:
            self._workflow = load_workflow(ctx.options.get("workflow"))
        except (OSError, ValueError) as exc:
            self._workflow_error = f"the ComfyUI workflow cannot be used: {exc}"
            log.error("comfyui: %s", self._workflow_error)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._ctx.api_key}"} if self._ctx.api_key else {}

    # ------------------------------------------------------------------ submit

    async def build_prompt(self, req: GenerationRequest, route: Route) -> JSON:
        """The workflow with the request injected (uploads the first frame if needed)."""
        if self._workflow is None:
            raise UpstreamRejected(self._workflow_error or "no ComfyUI workflow")
        graph = copy.deepcopy(self._workflow)
        overrides = {**route.params, **req.provider_options}
        try:
            fps = int(overrides.get("fps", self._ctx.options.get("fps", 24)))
        except (TypeError, ValueError) as exc:
            raise UpstreamRejected("fps must be a whole number") from exc
        width, height = frame_size(req.resolution, req.aspect_ratio)
        values: dict[str, Any] = {
            "prompt": req.prompt,
            "negative_prompt": req.negative_prompt or "",
            "seed": req.seed if req.seed is not None else secrets.randbelow(2**32),
            "fps": fps,
            "width": width,
            "height": height,
            "duration": req.duration_s or 5,
            "length": (req.duration_s or 5) * fps + 1,
            "model": route.image_model if req.first_frame and route.image_model else route.model,
        }
        values.update({k: v for k, v in overrides.items() if "." not in k})
        placeholders = _placeholders(graph)
        wants_image = "image" in placeholders or (
            not placeholders and any(n.get("class_type") == "LoadImage" for n in graph.values())
        )
        if req.first_frame and not wants_image:
            raise UpstreamRejected("the ComfyUI workflow has no image input")
        if wants_image and not req.first_frame:
            raise UpstreamRejected("the ComfyUI workflow needs an image (first frame)")
        if req.first_frame:
            values["image"] = await self._upload_image(req.first_frame)
        if placeholders:
            fill_placeholders(graph, values)
        else:
            inject_by_shape(graph, values)
        for key, value in overrides.items():
            node_id, _, input_name = key.partition(".")
            if input_name:
                if node_id not in graph:
                    raise UpstreamRejected(f"the ComfyUI workflow has no node {node_id!r}")
                graph[node_id].setdefault("inputs", {})[input_name] = copy.deepcopy(value)
        return graph

    async def _upload_image(self, url: str) -> str:
        """Fetch (or decode) the image and upload it; the name ``LoadImage`` expects."""
        if url.startswith("data:"):
            header, _, data = url.partition(",")
            try:
                content = base64.b64decode(data, validate=True) if ";base64" in header else data.encode()
            except binascii.Error as exc:
                raise UpstreamRejected("the image data: URL is not valid base64") from exc
        else:
            content = await self._fetch_image(url)
        if len(content) > MAX_IMAGE_BYTES:
            raise UpstreamRejected("the input image is too large")
        name = f"vidgate_{uuid.uuid4().hex}.png"
        body, response = await request_json(
            self._ctx,
            "POST",
            f"{self._base}/upload/image",
            files={"image": (name, content, "application/octet-stream")},
            data={"type": "input", "overwrite": "true"},
            headers=self._headers(),
        )
        uploaded = expect_dict(body, request_id_of(response))
        stored, subfolder = uploaded.get("name"), uploaded.get("subfolder")
        if not isinstance(stored, str):
            raise UpstreamProtocolError("ComfyUI's upload answer has no name")
        return f"{subfolder}/{stored}" if isinstance(subfolder, str) and subfolder else stored

    async def _fetch_image(self, url: str) -> bytes:
        """An input image a user named, through the guarded client only (``fetch_user_input``)."""
        data, _ = await fetch_user_input(self._ctx, url, max_bytes=MAX_IMAGE_BYTES, timeout_s=FETCH_TIMEOUT_S)
        return data

    @staticmethod
    def prompt_id_for(attempt: SubmitAttempt) -> str:
        """The prompt id every attempt of one job sends (so ``find`` can ask for it)."""
        return str(uuid.uuid5(PROMPT_ID_NAMESPACE, attempt.idempotency_key))

    async def submit(self, req: GenerationRequest, route: Route, attempt: SubmitAttempt) -> UpstreamRef:
        client_id = uuid.uuid4().hex
        wanted = self.prompt_id_for(attempt)
        prompt = await self.build_prompt(req, route)
        body, response = await request_json(
            self._ctx,
            "POST",
            f"{self._base}/prompt",
            json_body={
                "prompt": prompt,
                "client_id": client_id,
                "prompt_id": wanted,
                "extra_data": {"vidgate_job": attempt.job_id},
            },
            headers=self._headers(),
            classify=_classify,
            submit=True,
        )
        prompt_id = accepted_id(body, "prompt_id", request_id=request_id_of(response), what="prompt_id")
        return UpstreamRef(id=prompt_id, request_id=prompt_id, state={"client_id": client_id})

    async def find(self, attempt: SubmitAttempt, route: Route) -> UpstreamRef | None:
        """An earlier attempt's run, by the prompt id derived from the idempotency key."""
        prompt_id = self.prompt_id_for(attempt)
        history = await self._get(f"/history/{prompt_id}")
        if isinstance(history.get(prompt_id), dict) or await self._queue_place(prompt_id) is not None:
            return UpstreamRef(id=prompt_id, request_id=prompt_id, state={})
        return None

    # -------------------------------------------------------------------- poll

    async def _get(self, path: str) -> JSON:
        body, response = await request_json(self._ctx, "GET", f"{self._base}{path}", headers=self._headers())
        return expect_dict(body, request_id_of(response))

    async def _queue_place(self, prompt_id: str) -> tuple[str, int | None] | None:
        """("running", None) or ("queued", position) from ``/queue``; None when absent."""
        queue = await self._get("/queue")
        running, pending = queue.get("queue_running"), queue.get("queue_pending")
        if not isinstance(running, list) or not isinstance(pending, list):
            raise UpstreamProtocolError("ComfyUI's /queue answer has no queue lists")
        if any(dig(item, 1) == prompt_id for item in running):
            return "running", None
        waiting = sorted((i for i in pending if isinstance(dig(i, 0), int | float)), key=lambda i: i[0])
        for position, item in enumerate(waiting):
            if dig(item, 1) == prompt_id:
                return "queued", position
        return None

    async def check(self) -> bool:
        """The server's queue (through the proxy's auth, when one is configured)."""
        await self._get("/queue")
        return True

    async def poll(self, ref: UpstreamRef) -> UpstreamStatus:
        history = await self._get(f"/history/{ref.id}")
        entry = history.get(ref.id)
        if isinstance(entry, dict):
            return self._finished(ref, entry)
        place = await self._queue_place(ref.id)
        if place is None:  # just finished between the two calls, or lost by a restart
            log.warning("comfyui: prompt %s is neither queued nor in history", ref.id)
            return UpstreamStatus(state="running", raw_status="unknown")
        if place[0] == "running":
            return UpstreamStatus(state="running", raw_status="running")
        return UpstreamStatus(state="queued", queue_position=place[1], raw_status="pending")

    def _finished(self, ref: UpstreamRef, entry: JSON) -> UpstreamStatus:
        word = dig(entry, "status", "status_str")
        messages = dig(entry, "status", "messages")
        events = {dig(m, 0): dig(m, 1) for m in messages} if isinstance(messages, list) else {}
        if "execution_interrupted" in events:
            return UpstreamStatus(state="canceled", raw_status="interrupted")
        if word == "error":
            failure = events.get("execution_error")
            reason = dig(failure, "exception_message") or "the workflow failed"
            node = dig(failure, "node_type") or dig(failure, "node_id")
            message = f"{str(reason).strip()} (node {node})" if node else str(reason).strip()
            error = UpstreamRejected(message, request_id=ref.id)
            return UpstreamStatus(state="failed", error=error, raw_status=word)
        files = _video_outputs(entry)
        if word not in ("success", None):
            return UpstreamStatus(state=state_for("comfyui", {}, str(word), ref.id), raw_status=str(word))
        if not files:
            error = UpstreamRejected("the ComfyUI workflow produced no video file", request_id=ref.id)
            return UpstreamStatus(state="failed", error=error, raw_status=word or "success")
        outputs = tuple(
            UpstreamOutput(
                url=f"{self._base}/view?" + urlencode({"filename": name, "subfolder": sub, "type": kind}),
                headers=self._headers(),
            )
            for name, sub, kind in files[:1]
        )
        return UpstreamStatus(state="succeeded", progress=100, outputs=outputs, raw_status="success")

    # ------------------------------------------------------------------ cancel

    async def cancel(self, ref: UpstreamRef) -> None:
        place = await self._queue_place(ref.id)
        if place is None:
            return
        body: JSON = {"prompt_id": ref.id}
        path = "/interrupt"
        if place[0] == "queued":
            path, body = "/queue", {"delete": [ref.id]}
        await request_json(
            self._ctx,
            "POST",
            f"{self._base}{path}",
            json_body=body,
            headers=self._headers(),
            allow_empty=True,
        )
