"""A fake Luma Dream Machine API under ``/dream-machine/v1``.

Speaks the wire format of specs/upstream-protocols.md §8: Bearer auth, ``POST
/generations/video`` (what the current ``lumaai`` SDK's create calls; the older
``POST /generations`` is not served, so an adapter using it is caught) validated
against the documented enums, ``GET /generations?limit=&offset=`` (newest first),
Generation objects that go ``queued`` -> ``dreaming`` -> ``completed`` (``assets.video``)
or ``failed`` (``failure_reason``), ``DELETE /generations/{id}`` (the generation is
gone afterwards, so a GET answers 404), ``{"detail": ...}`` error bodies, and unsigned
callbacks carrying the Generation object when it starts dreaming and when it ends.
A content-policy script fails the generation with ``"Advanced moderation failed"``.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vidgate.testing.fake import FakeJob, FakeScript, FakeUpstream, bearer_ok

PREFIX = "/dream-machine/v1"
ASPECT_RATIOS = {"1:1", "16:9", "9:16", "4:3", "3:4", "21:9", "9:21"}
RESOLUTIONS = {"540p", "720p", "1080p", "4k"}
MODERATION_REASON = "Advanced moderation failed"


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, or {} (Starlette caches the body the preamble read)."""
    try:
        parsed = json.loads(await request.body() or b"null")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class LumaFake(FakeUpstream):
    """Luma's generations API with a clock; see the module docstring."""

    name = "luma"

    def __init__(
        self, *, api_key: str = "test-key", script: FakeScript | None = None, **options: Any
    ) -> None:
        super().__init__(api_key=api_key, script=script, **options)
        self.seen_headers: list[dict[str, str]] = []
        self.force_state: str | None = None  # answer polls with this state word (tests)
        self.deleted: set[str] = set()
        self._timers: set[asyncio.Task[None]] = set()

    def routes(self) -> list[Route]:
        return [
            Route(f"{PREFIX}/generations", self._list, methods=["GET"]),
            Route(f"{PREFIX}/generations/video", self._create, methods=["POST"]),
            Route(f"{PREFIX}/generations/{{gen_id}}", self._generation, methods=["GET", "DELETE"]),
        ]

    # ------------------------------------------------------------- plumbing

    def error(self, status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
        return JSONResponse({"detail": detail}, status, headers=headers)

    async def _gate(self, request: Request, *, submit: bool) -> Response | None:
        self.seen_headers.append(dict(request.headers))
        scripted = await self.preamble(request, submit=submit)
        if scripted is not None:
            retry = scripted.headers.get("retry-after")
            headers = {"retry-after": retry} if retry else None
            code = scripted.status_code
            return self.error(code, f"scripted HTTP {code}", headers)
        if not bearer_ok(request, self.api_key):
            return self.error(401, "Invalid API key")
        return None

    # ---------------------------------------------------------------- create

    async def _create(self, request: Request) -> Response:
        if (early := await self._gate(request, submit=True)) is not None:
            return early
        body = await json_body(request)
        if problem := self._invalid(body):
            return self.error(400, problem)
        callback = body.get("callback_url")
        job = self.new_job(body, callback_url=callback if isinstance(callback, str) else None)
        if self.script.content_policy:
            job.fail_reason = MODERATION_REASON
        if job.callback_url:
            self._schedule_callbacks(job, job.callback_url)
        return self.reply(self.generation(job), 201)

    def _invalid(self, body: dict[str, Any]) -> str | None:
        if body.get("aspect_ratio", "16:9") not in ASPECT_RATIOS:
            return f"Invalid aspect_ratio: {body.get('aspect_ratio')!r}"
        if body.get("resolution", "720p") not in RESOLUTIONS:
            return f"Invalid resolution: {body.get('resolution')!r}"
        duration = body.get("duration", "5s")
        if not isinstance(duration, str) or not re.fullmatch(r"\d+s", duration):
            return f"Invalid duration: {duration!r}"
        keyframes = body.get("keyframes", {})
        if not isinstance(keyframes, dict) or set(keyframes) - {"frame0", "frame1"}:
            return "keyframes may only hold frame0 and frame1"
        for frame in keyframes.values():
            if not isinstance(frame, dict) or frame.get("type") not in ("image", "generation"):
                return "a keyframe needs type 'image' (with url) or 'generation' (with id)"
            if frame["type"] == "image" and not isinstance(frame.get("url"), str):
                return "an image keyframe needs a url"
        if not body.get("prompt") and not keyframes:
            return "prompt is required"
        return None

    def _schedule_callbacks(self, job: FakeJob, url: str) -> None:
        async def dreaming() -> None:
            await asyncio.sleep(self.script.latency_s * 0.2 + 0.01)
            if self.state_of(job) == "running":
                self.call_back(url, self.generation(job))

        async def finished() -> None:
            if job.id not in self.deleted:
                self.call_back(url, self.generation(job))

        task = asyncio.get_running_loop().create_task(dreaming())
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)
        self.when_done(job, finished)

    async def _list(self, request: Request) -> Response:
        if (early := await self._gate(request, submit=False)) is not None:
            return early
        try:
            limit = max(1, min(100, int(request.query_params.get("limit", "10"))))
            offset = max(0, int(request.query_params.get("offset", "0")))
        except ValueError:
            return self.error(400, "limit and offset must be integers")
        alive = [j for j in self.jobs.values() if j.id not in self.deleted]
        newest = sorted(alive, key=lambda j: j.created, reverse=True)
        page = [self.generation(j) for j in newest[offset : offset + limit]]
        return self.reply(
            {
                "generations": page,
                "count": len(page),
                "has_more": offset + limit < len(newest),
                "limit": limit,
                "offset": offset,
            }
        )

    # ------------------------------------------------------------ generation

    async def _generation(self, request: Request) -> Response:
        if (early := await self._gate(request, submit=False)) is not None:
            return early
        gen_id = request.path_params["gen_id"]
        job = self.jobs.get(gen_id)
        if job is None or gen_id in self.deleted:
            return self.error(404, "Generation not found")
        if request.method == "DELETE":
            job.canceled = True
            self.deleted.add(gen_id)
            return Response(status_code=204)
        return self.reply(self.generation(job))

    def generation(self, job: FakeJob) -> dict[str, Any]:
        state = self.state_of(job)
        word = {"queued": "queued", "running": "dreaming", "succeeded": "completed"}.get(state, "failed")
        body = job.body
        assets: dict[str, Any] | None = None
        if state == "succeeded":
            video = self.media_url(job)
            assets = {"video": video, "image": video[:-4] + ".jpg", "progress_video": None}
        return {
            "id": job.id,
            "generation_type": "video",
            "state": self.force_state or word,
            "failure_reason": job.fail_reason if state == "failed" else None,
            "created_at": _iso(job.created),
            "model": body.get("model", "ray-2"),
            "assets": assets,
            "request": {k: v for k, v in body.items() if k != "_"},
        }
