"""Admin: each model's routes, live (order, enabled, weights, policy), without a restart.

``GET /admin/routes`` lists every model that has routes; ``GET /admin/routes/{model}``
shows one; ``PUT`` replaces its settings (the list order is the new order, and it must
name exactly the model's catalog routes); ``DELETE`` goes back to the catalog's. Every
change is audited (``routes.update`` / ``routes.reset``) in the transaction that makes
it, and reaches every worker within ``service.routes.MAX_AGE_S``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from vidgate.api.admin.access import Admin
from vidgate.api.context import Services
from vidgate.catalog.models import RoutingPolicy
from vidgate.catalog.price_text import rule_text
from vidgate.catalog.routing import MAX_WEIGHT, RouteConfig, RouteSetting
from vidgate.service.routes import RouteView

router = APIRouter(prefix="/admin", tags=["admin"])


class RouteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider: str = Field(min_length=1, max_length=100)
    model: str = Field(min_length=1, max_length=300)
    enabled: bool = True
    weight: int = Field(1, ge=0, le=MAX_WEIGHT)


class RoutesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    policy: RoutingPolicy | None = None  # None: keep the model's current policy
    routes: list[RouteIn] = Field(max_length=100)


def route_json(svc: Services, view: RouteView) -> dict[str, Any]:
    catalog = {r.key: r for r in view.spec.routes}
    configured = set(svc.pool.enabled)
    routes = []
    for setting in view.config.routes:
        cost = catalog[setting.key].cost
        routes.append(
            {
                **setting.to_json(),
                "configured": setting.provider in configured,
                "cost": rule_text(cost) if cost is not None else None,
            }
        )
    return {
        "model": view.spec.id,
        "policy": view.config.policy,
        "routes": routes,
        "updated_at": view.updated_at.isoformat() if view.updated_at else None,
        "updated_by": view.updated_by,
    }


@router.get("/routes")
async def all_routes(caller: Admin) -> dict[str, Any]:
    svc = caller.svc
    return {"object": "list", "data": [route_json(svc, v) for v in await svc.routes.views()]}


@router.get("/routes/{model_id:path}")
async def one_model_routes(model_id: str, caller: Admin) -> dict[str, Any]:
    svc = caller.svc
    return route_json(svc, await svc.routes.view(model_id))


@router.put("/routes/{model_id:path}")
async def set_routes(model_id: str, body: RoutesIn, caller: Admin) -> dict[str, Any]:
    svc = caller.svc
    policy = body.policy or (await svc.routes.view(model_id)).config.policy
    config = RouteConfig(
        policy, tuple(RouteSetting(r.provider, r.model, r.enabled, r.weight) for r in body.routes)
    )
    return route_json(svc, await svc.routes.update(model_id, config, actor=caller.actor))


@router.delete("/routes/{model_id:path}")
async def reset_routes(model_id: str, caller: Admin) -> dict[str, Any]:
    svc = caller.svc
    return route_json(svc, await svc.routes.reset(model_id, actor=caller.actor))
