"""A fake Kling video API (specs/upstream-protocols.md §6).

- ``POST /v1/videos/text2video`` and ``/v1/videos/image2video`` ->
  ``{"code": 0, "message": "SUCCEED", "request_id", "data": {"task_id", "task_status"}}``
- ``GET /v1/videos/{endpoint}/{task_id}`` (the endpoint must match the creating one):
  ``submitted`` -> ``processing`` -> ``succeed`` (``task_result.videos[].url``) or
  ``failed`` (``task_status_msg``).

Auth checks the HS256 JWT the way Kling does (signature with the secret key, ``iss`` =
access key, ``nbf``/``exp``) and answers 401 with codes 1000-1004. Bad parameters are
400/1201 (``duration`` is a string: "3" to "15" on kling-v3, "5" or "10" before it;
``sound`` is "on"/"off" and only kling-v2-6 and later take it; an image must be a URL
or raw base64, never a ``data:`` URL), a reused ``external_task_id`` is refused
(1201, as Kling keeps it unique per account), ``GET /v1/videos/{endpoint}?pageNum=
&pageSize=`` lists the newest tasks with their ``task_info.external_task_id``,
``script.content_policy`` is 400/1301, scripted 429s carry 1302 and scripted 5xx
carry 5000-5002. With a ``callback_url`` the final task object is POSTed there,
unsigned, as Kling does.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vidgate.testing.fake import FakeJob, FakeScript, FakeUpstream

KINDS = ("text2video", "image2video")
STATUS_WORDS = {
    "queued": "submitted",
    "running": "processing",
    "succeeded": "succeed",
    "failed": "failed",
}
ASPECT_RATIOS = ("16:9", "9:16", "1:1")
V3_LENGTHS = tuple(str(n) for n in range(3, 16))
SOUND_MODELS = ("kling-v2-6", "kling-v3")
SERVER_CODES = {500: 5000, 503: 5001, 504: 5002}
TEST_SECRET_KEY = "test-secret-0123456789abcdef01234567"  # noqa: S105 (a fake's own key)


def kling_error(status: int, code: int, message: str) -> Response:
    body = {"code": code, "message": message, "request_id": str(uuid.uuid4())}
    return JSONResponse(body, status)


def _length_and_sound(body: dict[str, Any]) -> str | None:
    model = str(body.get("model_name", "kling-v1"))
    lengths = V3_LENGTHS if model.startswith("kling-v3") else ("5", "10")
    if body.get("duration", "5") not in lengths:
        return (
            f"duration value {body.get('duration')!r} is invalid for {model}; use one of {', '.join(lengths)}"
        )
    if "sound" not in body:
        return None
    if not model.startswith(SOUND_MODELS):
        return f"sound is not supported by {model}"
    return None if body["sound"] in ("on", "off") else 'sound must be "on" or "off"'


def _problem(kind: str, body: dict[str, Any]) -> str | None:
    for key in ("prompt", "negative_prompt"):
        if key in body and (not isinstance(body[key], str) or len(body[key]) > 2500):
            return f"{key} must be a string of at most 2500 characters"
    if body.get("mode", "std") not in ("std", "pro"):
        return "mode must be std or pro"
    if problem := _length_and_sound(body):
        return problem
    cfg = body.get("cfg_scale", 0.5)
    if not isinstance(cfg, int | float) or not 0 <= cfg <= 1:
        return "cfg_scale must be between 0 and 1"
    if kind == "text2video":
        if not body.get("prompt"):
            return "prompt is required"
        if body.get("aspect_ratio", "16:9") not in ASPECT_RATIOS:
            return "aspect_ratio must be 16:9, 9:16 or 1:1"
        return None
    if "aspect_ratio" in body:
        return "aspect_ratio is not a field of image2video (the video follows the image)"
    if not body.get("image") and not body.get("image_tail"):
        return "image or image_tail is required"
    for key in ("image", "image_tail"):
        if str(body.get(key, "")).startswith("data:"):
            return f"{key} must be a URL or raw base64 without the data: prefix"
    return None


class KlingFake(FakeUpstream):
    """Kling's text2video / image2video tasks with JWT auth and unsigned callbacks."""

    name = "kling"

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        script: FakeScript | None = None,
        secret_key: str = TEST_SECRET_KEY,
        **options: Any,
    ) -> None:
        super().__init__(api_key=api_key, script=script, **options)
        self.secret_key = secret_key
        self.seen_headers: list[dict[str, str]] = []  # headers of each API call, for tests

    def routes(self) -> list[Route]:
        return [
            Route("/v1/videos/{kind}", self.create, methods=["POST"]),
            Route("/v1/videos/{kind}", self.list_tasks, methods=["GET"]),
            Route("/v1/videos/{kind}/{task_id}", self.query, methods=["GET"]),
        ]

    async def preamble(self, request: Request, *, submit: bool) -> Response | None:
        self.seen_headers.append(dict(request.headers))
        scripted = await super().preamble(request, submit=submit)
        if scripted is None:
            return None
        status = scripted.status_code
        if status == 429:
            message = "The API request rate is too high, please reduce the frequency"
            answer = kling_error(429, 1302, message)
            answer.headers["retry-after"] = scripted.headers.get("retry-after", "1")
            return answer
        if status >= 500:
            return kling_error(status, SERVER_CODES.get(status, 5000), "Server internal error")
        return kling_error(status, 1200, f"scripted HTTP {status}")

    def _auth_error(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        if not header:
            return kling_error(401, 1001, "Authorization is empty")
        if not header.startswith("Bearer "):
            return kling_error(401, 1002, "Authorization is invalid")
        try:
            claims = jwt.decode(
                header[7:],
                self.secret_key,
                algorithms=["HS256"],
                options={"require": ["iss", "exp", "nbf"]},
            )
        except jwt.ExpiredSignatureError:
            return kling_error(401, 1004, "Authorization is expired")
        except jwt.ImmatureSignatureError:
            return kling_error(401, 1003, "Authorization is not yet valid")
        except jwt.PyJWTError:
            return kling_error(401, 1002, "Authorization is invalid")
        if claims["iss"] != self.api_key:
            return kling_error(401, 1000, "Authentication failed")
        return None

    async def create(self, request: Request) -> Response:
        if failure := await self.preamble(request, submit=True) or self._auth_error(request):
            return failure
        kind = request.path_params["kind"]
        if kind not in KINDS:
            return kling_error(404, 1202, "Invalid request method")
        try:
            body = await request.json()
        except ValueError:
            return kling_error(400, 1200, "Invalid request body")
        if not isinstance(body, dict):
            return kling_error(400, 1200, "Invalid request body")
        if problem := _problem(kind, body):
            return kling_error(400, 1201, f"Invalid request parameters: {problem}")
        external = body.get("external_task_id")
        if external is not None and any(
            j.body.get("external_task_id") == external for j in self.jobs.values()
        ):
            return kling_error(
                400, 1201, f"Invalid request parameters: external_task_id {external} already exists"
            )
        if self.script.content_policy:
            return kling_error(400, 1301, "Trigger the content security policy of the platform")
        callback = body.get("callback_url")
        job = self.new_job(body, job_id=str(uuid.uuid4().int % 10**18), callback_url=callback)
        job.extra["kind"] = kind
        if callback:

            async def final() -> None:
                self.call_back(str(callback), self._task(job))

            self.when_done(job, final)
        return self.reply(self._envelope(self._task(job)))

    async def list_tasks(self, request: Request) -> Response:
        if failure := await self.preamble(request, submit=False) or self._auth_error(request):
            return failure
        kind = request.path_params["kind"]
        try:
            page = max(1, int(request.query_params.get("pageNum", "1")))
            size = max(1, min(500, int(request.query_params.get("pageSize", "30"))))
        except ValueError:
            return kling_error(400, 1201, "Invalid request parameters: pageNum and pageSize are integers")
        mine = sorted(
            (j for j in self.jobs.values() if j.extra.get("kind") == kind), key=lambda j: -j.created
        )
        tasks = [self._task(j) for j in mine[(page - 1) * size : page * size]]
        return self.reply({"code": 0, "message": "SUCCEED", "request_id": str(uuid.uuid4()), "data": tasks})

    async def query(self, request: Request) -> Response:
        if failure := await self.preamble(request, submit=False) or self._auth_error(request):
            return failure
        job = self.jobs.get(request.path_params["task_id"])
        if job is None or job.extra.get("kind") != request.path_params["kind"]:
            return kling_error(404, 1203, "Requested resource does not exist")
        return self.reply(self._envelope(self._task(job)))

    @staticmethod
    def _envelope(data: dict[str, Any]) -> dict[str, Any]:
        return {"code": 0, "message": "SUCCEED", "request_id": str(uuid.uuid4()), "data": data}

    def _task(self, job: FakeJob) -> dict[str, Any]:
        """The task object: the ``data`` of a query answer and the body of a callback."""
        state = self.state_of(job)
        created = int(job.created * 1000)
        data: dict[str, Any] = {
            "task_id": job.id,
            "task_status": STATUS_WORDS[state],
            "task_status_msg": job.fail_reason if state == "failed" else "",
            "created_at": created,
            "updated_at": int((job.completed or time.time()) * 1000),
            "task_info": {},
        }
        if external := job.body.get("external_task_id"):
            data["task_info"]["external_task_id"] = external
        if state == "succeeded":
            duration = job.body.get("duration", "5")
            video = {"id": str(uuid.uuid4()), "url": self.media_url(job), "duration": duration}
            data.update(final_unit_deduction="1", task_result={"videos": [video]})
        return data
