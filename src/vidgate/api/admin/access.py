"""Who may use the admin API, and who they say they are.

The token comes only as ``Authorization: Bearer <token>`` (the scheme in any case)
and is compared in constant time. Without ``VIDGATE_ADMIN_TOKEN`` every admin route
answers 404, as if it did not exist. The token is shared, so the audit trail names
the person by the ``X-Vidgate-Actor`` header the console and CLI send (a name the
operator gave, at most 120 printable characters), or ``admin`` without one.

No admin input may carry a NUL character (in the path, the query or a JSON body):
PostgreSQL text cannot hold one, so it is refused up front as a 400 instead of
failing in the database.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncConnection

from vidgate.api.auth import bearer_token
from vidgate.api.context import Services, services
from vidgate.clock import utcnow
from vidgate.errors import AuthenticationFailed, InvalidRequest, NotFound
from vidgate.store import audit

DEFAULT_ACTOR = "admin"


@dataclass(frozen=True, slots=True)
class AdminCaller:
    svc: Services
    actor: str

    async def audit(
        self, conn: AsyncConnection, action: str, target: str, details: dict[str, Any] | None = None
    ) -> None:
        """Put this caller's ``action`` on ``target`` in the audit trail, now, in ``conn``'s
        transaction (the one that carries the action out)."""
        await audit.record(conn, actor=self.actor, action=action, target=target, at=utcnow(), details=details)


def actor_name(header: str | None) -> str:
    if not header:
        return DEFAULT_ACTOR
    cleaned = "".join(ch for ch in header if ch.isprintable()).strip()[:120]
    return cleaned or DEFAULT_ACTOR


async def admin(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_vidgate_actor: Annotated[str | None, Header()] = None,
) -> AdminCaller:
    svc = services(request)
    token = svc.settings.admin_token
    if not token:
        raise NotFound(f"no route for {request.method} {request.url.path}")
    given = bearer_token(authorization)
    if given is None or not hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), token.encode("utf-8", "surrogatepass")
    ):
        raise AuthenticationFailed("invalid admin token", code="invalid_admin_token")
    await _refuse_nul(request)
    return AdminCaller(svc=svc, actor=actor_name(x_vidgate_actor))


async def _refuse_nul(request: Request) -> None:
    query = request.query_params.multi_items()
    if "\x00" in request.scope["path"] or any("\x00" in k or "\x00" in v for k, v in query):
        raise InvalidRequest("the path or query holds a NUL character", code="invalid_text")
    body = await request.body()
    if b"\x00" in body or b"\\u0000" in body:
        raise InvalidRequest("the body holds a NUL character", code="invalid_text")


Admin = Annotated[AdminCaller, Depends(admin)]
