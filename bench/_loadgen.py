"""A small HTTP/1.1 keep-alive load generator for the benchmarks (not part of vidgate).

httpx costs more CPU per request than the servers under test, and on two shared cores
the client would then set the pace. This one writes pre-built request bytes on N
keep-alive connections and reads each answer by its ``Content-Length`` (every server
measured here sends one), so a request costs the client a few microseconds.

``hammer`` returns latencies, statuses, throughput and the server process's CPU time
per request (``/proc``: user + system), which is the figure that survives a shared
machine.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from _common import percentile, proc_sample

RequestMaker = Callable[[int], bytes]  # request number -> raw request bytes


def request_bytes(
    method: str,
    path: str,
    *,
    host: str,
    headers: dict[str, str] | None = None,
    body: Any = None,
    content_type: str = "application/json",
) -> bytes:
    """One raw HTTP/1.1 request (``body``: JSON-encoded when not bytes)."""
    data = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body is not None:
        lines += [f"Content-Type: {content_type}", f"Content-Length: {len(data)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


@dataclass
class LoadResult:
    concurrency: int
    requests: int = 0
    seconds: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    server_cpu_s: float = float("nan")
    server_rss_mib: float = float("nan")
    last_body: bytes = b""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.server_cpu_s / self.requests if self.requests else float("nan")

    def p(self, q: float) -> float:
        return percentile(self.latencies_ms, q)

    def summary(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "requests": self.requests,
            "rps": round(self.rps, 1),
            "p50_ms": round(self.p(50), 2),
            "p99_ms": round(self.p(99), 2),
            "cpu_ms_per_req": round(self.cpu_ms_per_request, 3),
            "server_rss_mib": round(self.server_rss_mib, 1),
            "statuses": self.statuses,
        }


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return status, body


async def hammer(
    host: str,
    port: int,
    make: RequestMaker,
    *,
    concurrency: int,
    seconds: float,
    max_requests: int = 1_000_000,
    server_pid: int | None = None,
) -> LoadResult:
    """``concurrency`` connections sending back to back until ``seconds`` or ``max_requests``."""
    result = LoadResult(concurrency)
    connections = [await asyncio.open_connection(host, port) for _ in range(concurrency)]
    sent = 0
    before = proc_sample(server_pid) if server_pid else None
    start = time.perf_counter()
    stop_at = start + seconds

    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        while sent < max_requests and time.perf_counter() < stop_at:
            number = sent
            sent += 1
            began = time.perf_counter()
            writer.write(make(number))
            status, body = await _read_response(reader)
            result.latencies_ms.append((time.perf_counter() - began) * 1000)
            result.statuses[status] = result.statuses.get(status, 0) + 1
            result.last_body = body

    try:
        await asyncio.gather(*(one(r, w) for r, w in connections))
    finally:
        result.seconds = time.perf_counter() - start
        after = proc_sample(server_pid) if server_pid else None
        for _, writer in connections:
            writer.close()
    result.requests = len(result.latencies_ms)
    if before and after:
        result.server_cpu_s = after.cpu_s - before.cpu_s
        result.server_rss_mib = after.rss_mib
    return result


def multipart(fields: dict[str, str], boundary: str = "vidgate-bench-boundary") -> tuple[bytes, str]:
    """A multipart/form-data body of text fields, and its content type."""
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    return ("".join(parts) + f"--{boundary}--\r\n").encode(), f"multipart/form-data; boundary={boundary}"
