"""Reading the catalog: the packaged TOML files, then an operator's own file.

File format (every ``vidgate/catalog/data/*.toml`` and the operator's file)::

    namespace = "kyma"            # the dialect namespace of every entry below
    [defaults]                    # optional: keys applied under every entry
    prompt_max = 4000
    [[model]]                     # one ModelSpec; ``id`` defaults to ``name``
    name = "kling-3-pro"
    durations = { min = 1, max = 10 }   # a range is expanded to [1, 2, ..., 10]
    ...

Routes without their own ``cost`` get their upstream's price from the packaged
upstream price lists (``vidgate.catalog.upstream_prices``).

An operator's ``[[model]]`` whose ``id`` (or, without one, ``name``) matches a
packaged entry overrides it: its keys are merged over the packaged entry, tables
key by key, lists and plain values replaced; a ``price`` table that names a new
``rule`` replaces the packaged price whole, and a price the operator touches is
marked ``source = "operator"`` unless it says otherwise. Any other entry is an
addition (namespace from the entry, the file, or ``native``). The operator file's
``[defaults]`` apply to its additions only, never over a packaged entry.

Two entries with one ``id`` (or one namespace and name) are a load error naming
both. Loading keeps no cache: every call reads the files again.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vidgate.catalog.models import ModelSpec
from vidgate.catalog.upstream_prices import PriceListError, packaged_prices, with_costs
from vidgate.errors import UnknownModel

OPERATOR_NAMESPACE = "native"
_FILE_KEYS = frozenset({"namespace", "defaults", "model"})

RawEntry = dict[str, Any]


class CatalogError(ValueError):
    """A catalog file cannot be loaded; the message names the file and the entry."""


class Catalog:
    """Every model the gateway knows, looked up by native id or by (namespace, name)."""

    def __init__(self, models: Iterable[ModelSpec]) -> None:
        self._models: tuple[ModelSpec, ...] = tuple(models)
        self._by_id: dict[str, ModelSpec] = {}
        self._by_name: dict[tuple[str, str], ModelSpec] = {}
        for spec in self._models:
            if spec.id in self._by_id:
                raise CatalogError(f"duplicate model id {spec.id!r}")
            key = (spec.namespace, spec.name)
            if key in self._by_name:
                other = self._by_name[key].id
                raise CatalogError(
                    f"models {other!r} and {spec.id!r} both use the name "
                    f"{spec.name!r} in namespace {spec.namespace!r}"
                )
            self._by_id[spec.id] = spec
            self._by_name[key] = spec

    def get(self, model_id: str) -> ModelSpec:
        """The entry with native id ``model_id``; raises UnknownModel."""
        try:
            return self._by_id[model_id]
        except KeyError:
            raise UnknownModel(f"unknown model {model_id!r}", param="model") from None

    def resolve(self, namespace: str, name: str) -> ModelSpec:
        """The entry a dialect calls ``name``; raises UnknownModel."""
        try:
            return self._by_name[(namespace, name)]
        except KeyError:
            raise UnknownModel(f"unknown model {name!r} (namespace {namespace!r})", param="model") from None

    def all(self) -> list[ModelSpec]:
        """Every entry in load order: packaged files by file name, then the operator's."""
        return list(self._models)

    def in_namespace(self, namespace: str) -> list[ModelSpec]:
        """The entries of one dialect namespace, in load order."""
        return [spec for spec in self._models if spec.namespace == namespace]

    def namespaces(self) -> list[str]:
        """The namespaces present, in order of first appearance."""
        return list(dict.fromkeys(spec.namespace for spec in self._models))

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._by_id

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self._models)

    def __len__(self) -> int:
        return len(self._models)


@dataclass(slots=True)
class _Pending:
    """One raw entry on its way to a ModelSpec, with where it came from."""

    raw: RawEntry
    origin: str


def load_catalog(extra: Path | None = None) -> Catalog:
    """The packaged catalog, with ``extra`` (an operator's TOML file) merged over it."""
    pending: dict[str, _Pending] = {}
    for source_name, text in _packaged_files():
        for entry in _entries(_parse(text, source_name), source_name, packaged=True):
            _add(pending, entry)
    if extra is not None:
        _apply_operator_file(pending, extra)
    try:
        prices = packaged_prices()
    except PriceListError as exc:
        raise CatalogError(str(exc)) from exc
    return Catalog(_build(_Pending(with_costs(item.raw, prices), item.origin)) for item in pending.values())


def _packaged_files() -> list[tuple[str, str]]:
    data: Traversable = resources.files("vidgate.catalog").joinpath("data")
    files = sorted(
        (item for item in data.iterdir() if item.name.endswith(".toml") and item.is_file()),
        key=lambda item: item.name,
    )
    return [(item.name, item.read_text(encoding="utf-8")) for item in files]


def _parse(text: str, source_name: str) -> dict[str, Any]:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{source_name}: not valid TOML: {exc}") from exc
    unknown = sorted(set(document) - _FILE_KEYS)
    if unknown:
        raise CatalogError(
            f"{source_name}: unknown top-level key(s) {', '.join(unknown)}; "
            "expected namespace, defaults and [[model]] tables"
        )
    return document


def _entries(document: Mapping[str, Any], source_name: str, *, packaged: bool) -> list[_Pending]:
    """The file's ``[[model]]`` tables. Packaged entries get the file's defaults,
    namespace and id now; operator entries come back as written, because what they
    get depends on whether they override a packaged entry."""
    namespace = document.get("namespace")
    if packaged and not isinstance(namespace, str):
        raise CatalogError(f'{source_name}: a packaged catalog file needs namespace = "..."')
    defaults = document.get("defaults", {})
    models = document.get("model", [])
    if not isinstance(defaults, dict) or not isinstance(models, list):
        raise CatalogError(f"{source_name}: [defaults] must be a table and model an array")
    result: list[_Pending] = []
    for position, entry in enumerate(models, start=1):
        if not isinstance(entry, dict):
            raise CatalogError(f"{source_name}: model #{position} is not a table")
        label = entry.get("id") or entry.get("name") or f"#{position}"
        origin = f"{source_name} model {label!r}"
        if packaged:
            raw = _merge(defaults, entry)
            raw.setdefault("namespace", namespace)
            if raw["namespace"] != namespace:
                raise CatalogError(f"{origin}: namespace differs from the file's {namespace!r}")
            _fill_id(raw, origin)
            result.append(_Pending(raw, origin))
        else:
            result.append(_Pending(dict(entry), origin))
    return result


def _fill_id(raw: RawEntry, origin: str) -> None:
    if "id" not in raw:
        if not isinstance(raw.get("name"), str):
            raise CatalogError(f"{origin}: an entry needs a name (or an id)")
        raw["id"] = raw["name"]


def _add(pending: dict[str, _Pending], item: _Pending) -> None:
    model_id = item.raw["id"]
    if model_id in pending:
        raise CatalogError(f"duplicate model id {model_id!r}: {pending[model_id].origin} and {item.origin}")
    pending[model_id] = item


def _apply_operator_file(pending: dict[str, _Pending], path: Path) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read the operator catalog: {exc}") from exc
    document = _parse(text, str(path))
    namespace = document.get("namespace", OPERATOR_NAMESPACE)
    if not isinstance(namespace, str):
        raise CatalogError(f"{path}: namespace must be a string")
    defaults = document.get("defaults", {})
    seen: dict[str, str] = {}
    for item in _entries(document, str(path), packaged=False):
        entry = item.raw
        target = entry.get("id", entry.get("name"))
        if not isinstance(target, str):
            raise CatalogError(f"{item.origin}: an entry needs a name (or an id)")
        if target in seen:
            raise CatalogError(f"duplicate model id {target!r}: {seen[target]} and {item.origin}")
        seen[target] = item.origin
        if target in pending:
            base = pending[target]
            pending[target] = _Pending(_override(base.raw, entry), f"{base.origin} (+ {path})")
            continue
        raw = _merge(defaults, entry)
        raw.setdefault("namespace", namespace)
        _fill_id(raw, item.origin)
        _add(pending, _Pending(raw, item.origin))


def _override(base: RawEntry, change: Mapping[str, Any]) -> RawEntry:
    change = dict(change)
    price = change.get("price")
    if isinstance(price, dict):
        price = dict(price)
        price.setdefault("source", "operator")
        if "rule" in price:
            merged = _merge(base, {k: v for k, v in change.items() if k != "price"})
            merged["price"] = price
            return merged
        change["price"] = price
    return _merge(base, change)


def _merge(base: Mapping[str, Any], change: Mapping[str, Any]) -> dict[str, Any]:
    """``change`` over ``base``: tables merged key by key, everything else replaced."""
    merged = dict(base)
    for key, value in change.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            merged[key] = _merge(current, value)
        else:
            merged[key] = value
    return merged


def _build(item: _Pending) -> ModelSpec:
    try:
        raw = _normalised(item.raw, item.origin)
        return ModelSpec.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'entry'}: {error['msg']}"
            for error in exc.errors()
        )
        raise CatalogError(f"{item.origin}: {problems}") from exc


def _normalised(raw: RawEntry, origin: str) -> RawEntry:
    result = dict(raw)
    if "durations" in result:
        result["durations"] = _durations(result["durations"], f"{origin}: durations")
    by_resolution = result.get("durations_by_resolution")
    if isinstance(by_resolution, dict):
        result["durations_by_resolution"] = {
            res: _durations(value, f"{origin}: durations_by_resolution.{res}")
            for res, value in by_resolution.items()
        }
    price = result.get("price")
    if isinstance(price, dict):
        result["price"] = _exact_price(price)
    routes = result.get("routes")
    if isinstance(routes, list):
        result["routes"] = [
            {**route, "cost": _exact_price(route["cost"])}
            if isinstance(route, dict) and isinstance(route.get("cost"), dict)
            else route
            for route in routes
        ]
    return result


def _durations(value: Any, where: str) -> Any:
    """A ``{min, max}`` range as the list of whole seconds it covers; lists unchanged."""
    if not isinstance(value, dict):
        return value
    if set(value) != {"min", "max"}:
        raise CatalogError(f"{where}: a range is written {{ min = 1, max = 30 }}")
    low, high = value["min"], value["max"]
    if not (isinstance(low, int) and isinstance(high, int)) or not 0 < low <= high:
        raise CatalogError(f"{where}: a range needs whole seconds with 0 < min <= max")
    return list(range(low, high + 1))


def _exact_price(price: Mapping[str, Any]) -> dict[str, Any]:
    """TOML floats read through their shortest decimal form, so 0.1 stays 0.1."""
    result = dict(price)
    if isinstance(result.get("amount"), float):
        result["amount"] = Decimal(repr(result["amount"]))
    variants = result.get("variants")
    if isinstance(variants, dict):
        result["variants"] = {
            key: Decimal(repr(value)) if isinstance(value, float) else value
            for key, value in variants.items()
        }
    return result
