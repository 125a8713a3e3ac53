"""``/healthz``, ``/readyz`` and ``/metrics``, the same in every process role.

- ``GET /healthz``: the process is alive and its event loop answers. Touches nothing.
- ``GET /readyz``: every dependency answers (the database, storage, and Redis when
  configured), each check bounded in time; 503 with a JSON body naming what failed.
  It is re-checked on each call, so a process becomes ready again by itself when
  a dependency comes back.
- ``GET /metrics``: the Prometheus text format. The store gauges come from the last
  background read (``StoreGauges.run``): a scrape never touches the database.

The checks are injected (``Probe``): this package does not know the store.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vidgate import __version__
from vidgate.observability.metrics import CONTENT_TYPE, Metrics
from vidgate.observability.store_gauges import StoreGauges

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Probe:
    """One readiness check: ``check()`` returns when the dependency answers, raises otherwise."""

    name: str
    check: Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    ms: float
    error: str | None = None


class Readiness:
    """Runs every probe at once, each bounded by ``timeout_s``."""

    def __init__(self, probes: list[Probe], *, timeout_s: float = 2.0) -> None:
        self.probes = probes
        self.timeout_s = timeout_s
        self._was_ready: bool | None = None

    async def check(self) -> list[CheckResult]:
        results = list(await asyncio.gather(*(self._run(p) for p in self.probes)))
        ready = all(r.ok for r in results)
        if ready != self._was_ready:  # log changes only, not every probe
            if ready:
                log.info("ready: %s answer", ", ".join(r.name for r in results) or "nothing to check")
            else:
                failed = "; ".join(f"{r.name}: {r.error}" for r in results if not r.ok)
                log.warning("not ready: %s", failed)
            self._was_ready = ready
        return results

    async def _run(self, probe: Probe) -> CheckResult:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout_s):
                await probe.check()
        except TimeoutError:
            error = f"no answer within {self.timeout_s:g} s"
        except Exception as exc:  # noqa: BLE001 (any failure of a dependency is "not ready", named)
            error = _short(exc)
        else:
            return CheckResult(probe.name, True, _ms(started))
        return CheckResult(probe.name, False, _ms(started), error)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    return f"{name}: {text[:200]}" if text else name


@dataclass
class Ops:
    """What the operational routes need from one process."""

    metrics: Metrics
    readiness: Readiness
    gauges: StoreGauges | None = None
    _closers: list[Callable[[], Awaitable[object]]] = field(default_factory=list)

    def on_close(self, closer: Callable[[], Awaitable[object]]) -> None:
        self._closers.append(closer)

    async def aclose(self) -> None:
        for closer in self._closers:
            try:
                await closer()
            except Exception:
                log.debug("closing an ops resource failed", exc_info=True)
        self._closers.clear()

    async def render_metrics(self) -> bytes:
        return self.metrics.render()


OpsGetter = Callable[[Request], "Ops | None"]


def routes(ops: OpsGetter) -> list[Route]:
    """The three routes, for any Starlette or FastAPI app (``app.router.routes.extend``)."""

    async def healthz(request: Request) -> Response:  # noqa: ARG001 (Starlette handler signature)
        return JSONResponse({"status": "ok", "version": __version__}, headers={"cache-control": "no-store"})

    async def readyz(request: Request) -> Response:
        found = ops(request)
        if found is None:
            return _not_ready({"starting": "the process has not finished starting"})
        results = await found.readiness.check()
        checks = {r.name: {"ok": r.ok, "ms": r.ms} | ({"error": r.error} if r.error else {}) for r in results}
        failed = [r.name for r in results if not r.ok]
        if failed:
            return JSONResponse(
                {"status": "unavailable", "failed": failed, "checks": checks},
                status_code=503,
                headers={"cache-control": "no-store"},
            )
        return JSONResponse({"status": "ready", "checks": checks}, headers={"cache-control": "no-store"})

    async def metrics(request: Request) -> Response:
        found = ops(request)
        if found is None:
            return Response("# the process has not finished starting\n", status_code=503)
        return Response(await found.render_metrics(), media_type=CONTENT_TYPE)

    return [
        Route("/healthz", healthz, methods=["GET"], include_in_schema=False),
        Route("/readyz", readyz, methods=["GET"], include_in_schema=False),
        Route("/metrics", metrics, methods=["GET"], include_in_schema=False),
    ]


def _not_ready(reasons: dict[str, str]) -> Response:
    return JSONResponse(
        {"status": "unavailable", "failed": list(reasons), "checks": reasons},
        status_code=503,
        headers={"cache-control": "no-store"},
    )
