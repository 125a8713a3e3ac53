"""A small synchronous Python client for vidgate's native API (used by ``vidgate generate``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx


class ClientError(Exception):
    """The gateway answered with an error (its message is the gateway's)."""


class Client:
    def __init__(self, base_url: str, api_key: str, *, timeout: float = 60.0) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/v1",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
        )
        self.last_poll_after_s = 1.0

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        if response.is_error:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:300]
            raise ClientError(f"HTTP {response.status_code}: {message}")
        after = response.headers.get("openai-poll-after-ms")
        if after and after.isdigit():
            self.last_poll_after_s = int(after) / 1000
        data: dict[str, Any] = response.json()
        return data

    def create(self, **fields: Any) -> dict[str, Any]:
        return self._json(self._http.post("/videos", json=fields))

    def retrieve(self, video_id: str) -> dict[str, Any]:
        return self._json(self._http.get(f"/videos/{video_id}"))

    def quote(self, **fields: Any) -> dict[str, Any]:
        return self._json(self._http.post("/quotes", json=fields))

    def download(self, video_id: str, path: Path, *, variant: str = "video") -> int:
        written = 0
        with self._http.stream("GET", f"/videos/{video_id}/content", params={"variant": variant}) as response:
            if response.is_error:
                response.read()
                self._json(response)
            with path.open("wb") as handle:
                for chunk in response.iter_bytes():
                    handle.write(chunk)
                    written += len(chunk)
        return written
