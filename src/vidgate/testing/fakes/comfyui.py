"""A fake ComfyUI server: ``/prompt``, ``/history``, ``/queue``, ``/interrupt``, ``/view``.

Speaks the wire format of specs/upstream-protocols.md §11b (every route also under
``/api``):

- ``POST /prompt`` ``{"prompt": <API-format graph>, "client_id", "prompt_id"?}`` (a
  client-supplied ``prompt_id`` is kept, as newer builds do) -> ``{"prompt_id",
  "number", "node_errors": {}}``. A graph without an output node, with a link to a
  missing node, or with a placeholder left in it (``"{{seed}}"``) is a 400 with
  ``error`` and ``node_errors`` in ComfyUI's shape.
- ``GET /queue``: ``queue_running`` / ``queue_pending`` as ``[number, prompt_id, prompt,
  extra_data, outputs]``; ``GET /history/{id}``: ``{}`` until done, then ``status``
  (``success`` / ``error`` with ``execution_error`` or ``execution_interrupted``) and
  ``outputs`` (core ``SaveVideo`` under ``images`` with ``animated``; VideoHelperSuite
  ``VHS_VideoCombine`` under ``gifs``).
- ``GET /view?filename=&subfolder=&type=output``: the MP4 (404 once
  ``script.output_ttl_s`` has passed, as if the file were cleaned up).
- ``POST /queue {"delete": [...]}`` drops pending prompts; ``POST /interrupt`` stops the
  running one; ``POST /upload/image`` stores an input image.

ComfyUI has no auth: this fake plays the reverse proxy in front of it and wants
``Authorization: Bearer <api_key>`` when ``api_key`` is set (``api_key=""`` turns it off).
It has no content policy: ``script.content_policy`` fails the run in a safety-checker
node. It has no callbacks, so ``script.send_callbacks`` has no effect.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vidgate.testing.fake import FakeJob, FakeScript, FakeUpstream, bearer_ok, sample_mp4

OUTPUT_NODES = ("SaveVideo", "PreviewVideo", "VHS_VideoCombine", "SaveWEBM", "SaveAnimatedWEBP")
PLACEHOLDER = re.compile(r"^\{\{\w+\}\}$")
FLAGGED = "Potential NSFW content was detected by the safety checker"


def _invalid(message: str, node_errors: dict[str, Any], kind: str) -> JSONResponse:
    error = {"type": kind, "message": message, "details": "", "extra_info": {}}
    return JSONResponse({"error": error, "node_errors": node_errors}, 400)


def _node_error(class_type: str, message: str, details: str) -> dict[str, Any]:
    error = {"type": "value_not_valid", "message": message, "details": details, "extra_info": {}}
    return {"errors": [error], "dependent_outputs": [], "class_type": class_type}


def validate(graph: Any) -> JSONResponse | None:
    """ComfyUI's 400 for a graph it would refuse, or None."""
    if not isinstance(graph, dict) or not graph:
        return _invalid("Invalid prompt", {}, "invalid_prompt")
    errors: dict[str, Any] = {}
    for node_id, node in graph.items():
        inputs = node.get("inputs") if isinstance(node, dict) else None
        class_type = node.get("class_type") if isinstance(node, dict) else None
        if not isinstance(class_type, str) or not isinstance(inputs, dict):
            return _invalid("Invalid prompt", {}, "invalid_prompt")
        for name, value in inputs.items():
            if isinstance(value, list) and len(value) == 2 and str(value[0]) not in graph:
                errors[node_id] = _node_error(class_type, "Missing node", f"{name}: {value[0]}")
            elif isinstance(value, str) and PLACEHOLDER.match(value):
                errors[node_id] = _node_error(class_type, "Value not valid", f"{name}: {value}")
    if not any(n["class_type"] in OUTPUT_NODES for n in graph.values()):
        return _invalid("Prompt has no outputs", {}, "prompt_no_outputs")
    if errors:
        return _invalid("Prompt outputs failed validation", errors, "prompt_outputs_failed_validation")
    return None


class ComfyUIFake(FakeUpstream):
    """A ComfyUI server with a clock; see the module docstring."""

    name = "comfyui"
    chaos_exempt = (r"\.mp4$", r"/view$")  # media and tokens are not API calls

    def __init__(
        self, *, api_key: str = "test-key", script: FakeScript | None = None, **options: Any
    ) -> None:
        super().__init__(api_key=api_key, script=script, **options)
        self.number = 0
        self.uploads: dict[str, bytes] = {}
        self.seen_headers: list[dict[str, str]] = []

    def routes(self) -> list[Route]:
        table = [
            ("/prompt", self._prompt, ["POST"]),
            ("/history/{prompt_id}", self._history, ["GET"]),
            ("/queue", self._queue, ["GET", "POST"]),
            ("/interrupt", self._interrupt, ["POST"]),
            ("/view", self._view, ["GET"]),
            ("/upload/image", self._upload, ["POST"]),
        ]
        return [
            Route(prefix + path, handler, methods=methods)
            for prefix in ("", "/api")
            for path, handler, methods in table
        ]

    # -------------------------------------------------------------- helpers

    async def _enter(self, request: Request, *, submit: bool) -> Response | None:
        if early := await self.preamble(request, submit=submit):
            return early
        self.seen_headers.append(dict(request.headers))
        if self.api_key and not bearer_ok(request, self.api_key):
            return JSONResponse({"error": "unauthorized"}, 401)
        return None

    def _live(self) -> list[FakeJob]:
        return [j for j in self.jobs.values() if not j.extra.get("deleted")]

    def _entry(self, job: FakeJob) -> list[Any]:
        extra_data = {"client_id": job.body.get("client_id")}
        return [job.extra["number"], job.id, job.body.get("prompt"), extra_data, []]

    def _history_entry(self, job: FakeJob, state: str) -> dict[str, Any]:
        start = ["execution_start", {"prompt_id": job.id, "timestamp": int(job.created * 1000)}]
        end_ts = int((job.completed or time.time()) * 1000)
        outputs: dict[str, Any] = {}
        if state == "succeeded":
            save_id, save = job.extra["save_node"]
            item = {"filename": job.extra["filename"], "subfolder": "video", "type": "output"}
            if save == "VHS_VideoCombine":
                outputs[save_id] = {"gifs": [{**item, "format": "video/h264-mp4", "frame_rate": 24}]}
            else:
                outputs[save_id] = {"images": [item], "animated": [True]}
            end = ["execution_success", {"prompt_id": job.id, "timestamp": end_ts}]
        elif state == "canceled":
            end = [
                "execution_interrupted",
                {"prompt_id": job.id, "node_id": "7", "timestamp": end_ts},
            ]
        else:
            end = [
                "execution_error",
                {
                    "prompt_id": job.id,
                    "node_id": "7",
                    "node_type": job.extra.get("failing_node", "KSampler"),
                    "exception_message": job.fail_reason,
                    "exception_type": "RuntimeError",
                    "traceback": ["Traceback (most recent call last): ..."],
                    "timestamp": end_ts,
                },
            ]
        status = {
            "status_str": "success" if state == "succeeded" else "error",
            "completed": state == "succeeded",
            "messages": [start, end],
        }
        return {"prompt": self._entry(job), "outputs": outputs, "status": status, "meta": {}}

    # ------------------------------------------------------------ endpoints

    async def _prompt(self, request: Request) -> Response:
        if early := await self._enter(request, submit=True):
            return early
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _invalid("Invalid JSON", {}, "invalid_prompt")
        graph = body.get("prompt") if isinstance(body, dict) else None
        if refused := validate(graph):
            return refused
        assert isinstance(graph, dict)
        self.number += 1
        wanted = body.get("prompt_id")  # newer ComfyUI builds honour a client-supplied id
        job = self.new_job(body, job_id=wanted if isinstance(wanted, str) and wanted else str(uuid.uuid4()))
        save_id = next(k for k, n in graph.items() if n["class_type"] in OUTPUT_NODES)
        job.extra.update(
            number=self.number,
            save_node=(save_id, graph[save_id]["class_type"]),
            filename=f"vidgate_{job.id[:8]}_00001_.mp4",
        )
        if self.script.content_policy:
            job.fail_reason = FLAGGED
            job.extra["failing_node"] = "SafetyChecker"
        return self.reply({"prompt_id": job.id, "number": self.number, "node_errors": {}})

    async def _history(self, request: Request) -> Response:
        if early := await self._enter(request, submit=False):
            return early
        job = self.jobs.get(request.path_params["prompt_id"])
        if job is None or job.extra.get("deleted"):
            return self.reply({})
        state = self.state_of(job)
        if state in ("queued", "running"):
            return self.reply({})
        return self.reply({job.id: self._history_entry(job, state)})

    async def _queue(self, request: Request) -> Response:
        if early := await self._enter(request, submit=False):
            return early
        if request.method == "POST":
            body = json.loads(await request.body() or b"{}")
            for prompt_id in body.get("delete", []) if isinstance(body, dict) else []:
                job = self.jobs.get(prompt_id)
                if job is not None and self.state_of(job) == "queued":
                    job.canceled = True
                    job.extra["deleted"] = True
            return Response(status_code=200)
        running = [self._entry(j) for j in self._live() if self.state_of(j) == "running"]
        pending = [self._entry(j) for j in self._live() if self.state_of(j) == "queued"]
        return self.reply({"queue_running": running, "queue_pending": pending})

    async def _interrupt(self, request: Request) -> Response:
        if early := await self._enter(request, submit=False):
            return early
        raw = await request.body()
        wanted = json.loads(raw).get("prompt_id") if raw else None
        for job in self._live():
            if self.state_of(job) == "running" and wanted in (None, job.id):
                job.canceled = True
                job.completed = time.time()
        return Response(status_code=200)

    async def _view(self, request: Request) -> Response:
        if early := await self._enter(request, submit=False):
            return early
        name = request.query_params.get("filename", "")
        job = next((j for j in self.jobs.values() if j.extra.get("filename") == name), None)
        if job is None or request.query_params.get("type", "output") != "output":
            return Response(status_code=404)
        if self.state_of(job) != "succeeded" or job.completed is None:
            return Response(status_code=404)
        ttl = self.script.output_ttl_s
        if ttl is not None and time.time() - job.completed > ttl:
            return Response(status_code=404)
        return Response(sample_mp4(self.script.video_seconds), media_type="video/mp4")

    async def _upload(self, request: Request) -> Response:
        if early := await self._enter(request, submit=False):
            return early
        async with request.form() as form:  # closes the spooled upload files
            image = form.get("image")
            if not isinstance(image, UploadFile) or not image.filename:
                return Response(status_code=400)
            subfolder = str(form.get("subfolder") or "")
            self.uploads[f"{subfolder}/{image.filename}".lstrip("/")] = await image.read()
        return self.reply({"name": image.filename, "subfolder": subfolder, "type": "input"})
