"""Admin: the configured upstreams, how they are doing, and a check on demand.

* ``GET /admin/providers``: each enabled provider with its circuit breakers as this
  process sees them (breakers are per process: with separate worker processes this
  is the API process's own view), one per key of its pool (``keys``) and the
  provider's overall state (the keys' state when they agree, ``degraded`` when some
  keys' circuits are open and others not), and its submit attempts over the last ``hours``: how
  many, how many accepted, refused or of unknown outcome, the error rate and the
  last error.
* ``POST /admin/providers/{name}/test``: the provider's own cheap check (as
  ``vidgate providers check``), which buys nothing; recorded in the audit trail.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query

from vidgate.api.admin.access import Admin
from vidgate.api.context import Services
from vidgate.clock import utcnow
from vidgate.errors import NotFound
from vidgate.providers.base import UpstreamError
from vidgate.providers.registry import PROVIDERS
from vidgate.store import audit, provider_stats

router = APIRouter(prefix="/admin", tags=["admin"])


def _breakers(svc: Services, name: str) -> tuple[str, list[dict[str, str]]]:
    pool = svc.pool.keys(name)
    labels = pool.labels if pool is not None else [name]
    keys = [{"label": label, "breaker": svc.pool.breaker.state(label)} for label in labels]
    states = {k["breaker"] for k in keys}
    overall = states.pop() if len(states) == 1 else "degraded"  # keys in different states
    return overall, keys


@router.get("/providers")
async def list_providers(
    caller: Admin, hours: Annotated[int, Query(ge=1, le=24 * 30)] = 24
) -> dict[str, Any]:
    svc = caller.svc
    since = utcnow() - timedelta(hours=hours)
    async with svc.db.read() as conn:
        stats = await provider_stats.recent(conn, since=since)
    data = []
    for name in svc.pool.enabled:
        seen = stats.get(name)
        attempts = seen.attempts if seen else 0
        failures = (seen.refused + seen.unknown) if seen else 0
        info = PROVIDERS.get(name)
        overall, keys = _breakers(svc, name)
        data.append(
            {
                "name": name,
                "label": info.label if info else name,
                "breaker": overall,
                "keys": keys,
                "window_hours": hours,
                "attempts": attempts,
                "accepted": seen.accepted if seen else 0,
                "refused": seen.refused if seen else 0,
                "unknown": seen.unknown if seen else 0,
                "error_rate": round(failures / attempts, 4) if attempts else None,
                "last_error": seen.last_error if seen else None,
                "last_error_at": seen.last_error_at.isoformat() if seen and seen.last_error_at else None,
            }
        )
    return {"object": "list", "data": data}


@router.post("/providers/{name}/test")
async def test_provider(name: str, caller: Admin) -> dict[str, Any]:
    svc = caller.svc
    adapter = svc.pool.adapter(name) if name in svc.pool.enabled else None
    if adapter is None:
        raise NotFound(f"no enabled provider {name!r}", param="name")
    started = utcnow()
    try:
        async with asyncio.timeout(svc.pool.call_timeout(name)):
            proved = await adapter.check()
    except UpstreamError as exc:
        result = {"ok": False, "result": f"{exc.code}: {exc.message}"}
    except TimeoutError:
        result = {"ok": False, "result": "timeout: the provider did not answer in time"}
    else:
        result = {"ok": True, "result": "ok" if proved else "no cheap check for this upstream"}
    elapsed_ms = round((utcnow() - started).total_seconds() * 1000)
    async with svc.db.transaction() as conn:
        await audit.record(conn, actor=caller.actor, action="provider.test", target=name, at=started,
                           details={**result, "ms": elapsed_ms})  # fmt: skip
    return {"object": "provider.test", "name": name, **result, "ms": elapsed_ms}
