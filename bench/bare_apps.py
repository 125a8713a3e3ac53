"""The floors a poll is compared with: a bare FastAPI app and a bare Starlette app.

    python bench/bare_apps.py fastapi|starlette --port N --video FILE

Both answer ``GET /v1/videos/{id}`` with the JSON in FILE (a video object vidgate
served, captured by the benchmark) and ``GET /healthz`` with ``{"status": "ok"}``, on
the same uvicorn settings as ``vidgate serve`` (no access log, log level warning).
No authentication, no database: the cost of the framework and the server alone.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def fastapi_app(video: dict[str, Any]) -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/v1/videos/{video_id}")
    async def retrieve(video_id: str) -> dict[str, Any]:
        return {**video, "id": video_id}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def starlette_app(video: dict[str, Any]) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def retrieve(request: Request) -> JSONResponse:
        return JSONResponse({**video, "id": request.path_params["video_id"]})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/v1/videos/{video_id}", retrieve), Route("/healthz", healthz)])


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["fastapi", "starlette"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--video", required=True, help="a JSON file with the video object to serve")
    args = parser.parse_args()
    video = json.loads(Path(args.video).read_text())
    app = fastapi_app(video) if args.kind == "fastapi" else starlette_app(video)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
