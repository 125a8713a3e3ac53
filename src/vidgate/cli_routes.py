"""``vidgate routes``: each model's routes, shown and changed live, as ``/admin/routes`` does.

A change goes through the same validation and is audited the same way (the actor is
``--actor``, else ``cli``); running workers follow it within seconds, no restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Annotated, cast

import typer

from vidgate.catalog.models import RoutingPolicy
from vidgate.catalog.price_text import rule_text
from vidgate.catalog.routing import POLICIES, RouteConfig, RouteSetting
from vidgate.cli_common import DataDir, settings_from
from vidgate.config import Settings
from vidgate.errors import GatewayError
from vidgate.service.routes import RouteSettings, RouteView
from vidgate.startup import OperatorError, check_data_dir, check_database
from vidgate.store.engine import open_database
from vidgate.store.migrate import migrate

RouteNames = Annotated[
    list[str] | None,
    typer.Option(help="provider/upstream-model, e.g. fal/fal-ai/kling-video/v3/pro/text-to-video"),
]


def routes(
    model: Annotated[
        str | None, typer.Argument(help="A model id; without one, every model is listed.")
    ] = None,
    enable: RouteNames = None,
    disable: RouteNames = None,
    weight: Annotated[list[str] | None, typer.Option(help="provider/upstream-model=N")] = None,
    first: Annotated[str | None, typer.Option(help="provider/upstream-model to try first")] = None,
    policy: Annotated[str | None, typer.Option(help=" | ".join(POLICIES))] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Back to the catalog's routing.")] = False,
    actor: Annotated[str, typer.Option(help="Who makes the change, for the audit trail.")] = "cli",
    data_dir: DataDir = None,
) -> None:
    """Show the models' routes, or change one model's: enable, disable, weigh, reorder, policy."""
    changing = bool(enable or disable or weight or first or policy)
    if model is None and (changing or reset):
        raise typer.BadParameter("name the model to change")
    if reset and changing:
        raise typer.BadParameter("--reset goes alone")

    async def run() -> list[str]:
        async with _route_settings(settings_from(data_dir)) as settings:
            if model is None:
                return [_summary(v) for v in await settings.views()]
            if reset:
                return _detail(await settings.reset(model, actor=actor))
            view = await settings.view(model)
            if changing:
                config = _changed(view.config, enable or [], disable or [], weight or [], first, policy)
                view = await settings.update(model, config, actor=actor)
            return _detail(view)

    for line in asyncio.run(run()):
        print(line)


@asynccontextmanager
async def _route_settings(settings: Settings) -> AsyncIterator[RouteSettings]:
    from vidgate.catalog.loader import load_catalog

    check_data_dir(settings)
    await check_database(settings)
    db = open_database(settings, null_pool=True)
    try:
        await migrate(db)
        yield RouteSettings(db, load_catalog(settings.catalog))
    except GatewayError as exc:  # an unknown model, a route it does not have...
        raise OperatorError(exc.message) from exc
    finally:
        await db.dispose()


def _key(text: str) -> tuple[str, str]:
    provider, _, model = text.partition("/")
    if not provider or not model:
        raise OperatorError(f"{text!r}: name a route as provider/upstream-model")
    return provider, model


def _changed(
    config: RouteConfig,
    enable: list[str],
    disable: list[str],
    weights: list[str],
    first: str | None,
    policy: str | None,
) -> RouteConfig:
    routes = {s.key: s for s in config.routes}

    def setting(text: str) -> RouteSetting:
        key = _key(text)
        if key not in routes:
            known = ", ".join(f"{p}/{m}" for p, m in routes)
            raise OperatorError(f"the model has no route {text!r}; its routes are {known}")
        return routes[key]

    for text in enable:
        routes[_key(text)] = replace(setting(text), enabled=True)
    for text in disable:
        routes[_key(text)] = replace(setting(text), enabled=False)
    for text in weights:
        name, _, number = text.rpartition("=")
        if not number.isdigit():
            raise OperatorError(f"{text!r}: give a weight as provider/upstream-model=N")
        routes[_key(name)] = replace(setting(name), weight=int(number))
    order = list(routes.values())
    if first is not None:
        chosen = setting(first)
        order = [routes[chosen.key]] + [s for s in order if s.key != chosen.key]
    if policy is not None and policy not in POLICIES:
        raise OperatorError(f"policy must be one of {', '.join(POLICIES)}")
    return RouteConfig(cast(RoutingPolicy, policy or config.policy), tuple(order))


def _summary(view: RouteView) -> str:
    routes = ", ".join(
        f"{s.provider}/{s.model}" + ("" if s.enabled else " (off)") for s in view.config.routes
    )
    changed = f"  [by {view.updated_by}]" if view.updated_by else ""
    return f"{view.spec.id}  {view.config.policy}  {routes}{changed}"


def _detail(view: RouteView) -> list[str]:
    who = (
        f"changed by {view.updated_by} at {view.updated_at:%Y-%m-%d %H:%M} UTC"
        if view.updated_at
        else "catalog's"
    )
    lines = [f"{view.spec.id}: {view.config.policy} ({who})"]
    costs = {r.key: r.cost for r in view.spec.routes}
    for n, s in enumerate(view.config.routes, 1):
        cost = costs.get(s.key)
        lines.append(
            f"  {n}. {s.provider}/{s.model}  {'on' if s.enabled else 'off'}  weight {s.weight}"
            + (f"  {rule_text(cost)}" if cost is not None else "")
        )
    return lines
