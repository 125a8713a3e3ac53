"""The packaged catalog: every seed model present, ids unique, operator files merged."""

from __future__ import annotations

from decimal import Decimal
from importlib import resources
from pathlib import Path

import pytest

from vidgate.catalog.loader import Catalog, CatalogError, load_catalog
from vidgate.errors import UnknownModel
from vidgate.providers.registry import PROVIDERS

SEED_MODELS: dict[str, set[str]] = {
    "thalam": {
        "alibaba/wan-2.5-t2v-preview",
        "alibaba/wan2.6-t2v",
        "bytedance/seedance-1.5-pro-t2v",
        "bytedance/seedance-1.5-pro-i2v",
        "kuaishou/kling-v3.0-pro-t2v",
        "kuaishou/kling-v3.0-pro-i2v",
        "kuaishou/kling-v2.6-pro-motion-control",
        "minimax/hailuo-02",
        "pixverse/pixverse-v4.5-t2v",
        "shengshu/vidu-q3-pro-t2v",
        "tencent/hunyuan-video-fast",
    },
    "venice": {"wan-2.5-preview-text-to-video", "wan-2.5-preview-image-to-video"},
    "minimax": {"T2V-01-Director", "I2V-01-Director", "S2V-01", "I2V-01", "I2V-01-live", "T2V-01"},
    "apiframe": {
        "grok-imagine-video",
        "hailuo-02",
        "hailuo-2.3",
        "hailuo-2.3-fast",
        "luma-ray-2",
        "luma-ray-flash-2",
        "kling-2.1",
        "kling-2.1-master",
        "kling-2.5-turbo-pro",
        "kling-2.6",
        "kling-3.0",
        "midjourney-video",
        "runway-gen4-turbo",
        "runway-gen4.5",
        "seedance-1-lite",
        "seedance-1-pro",
        "seedance-1-pro-fast",
        "seedance-1.5-pro",
        "seedance-2",
        "seedance-2-fast",
        "sora-2",
        "sora-2-pro",
        "veo-2",
        "veo-3",
        "veo-3-fast",
        "veo-3.1",
        "veo-3.1-fast",
        "wan-2.5",
        "wan-2.5-fast",
        "wan-2.6",
        "wan-2.6-flash",
    },
    "kyma": {
        "kling-2.5-pro",
        "kling-3-pro",
        "kling-3-pro-audio",
        "seedance-2-pro",
        "seedance-2-fast",
        "hailuo-02-512p",
        "hailuo-02-768p",
        "hailuo-02-1080p",
        "veo-3-fast",
        "veo-3",
    },
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "operator.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("namespace", sorted(SEED_MODELS))
def test_every_seed_model_is_listed_under_its_wire_name(catalog: Catalog, namespace: str) -> None:
    names = {spec.name for spec in catalog.in_namespace(namespace)}
    assert SEED_MODELS[namespace] <= names
    for name in SEED_MODELS[namespace]:
        spec = catalog.resolve(namespace, name)
        assert spec.namespace == namespace
        assert spec.name == name


def test_colliding_names_get_namespaced_ids(catalog: Catalog) -> None:
    for name in ("veo-3", "veo-3-fast", "seedance-2-fast"):
        assert catalog.resolve("apiframe", name).id == f"apiframe/{name}"
        assert catalog.resolve("kyma", name).id == f"kyma/{name}"
        assert name not in catalog
    # Venice and Apiframe both sell runway-gen4-turbo: Venice's carries the explicit id.
    assert catalog.resolve("venice", "runway-gen4-turbo").id == "venice/runway-gen4-turbo"
    assert catalog.resolve("apiframe", "runway-gen4-turbo").id == "runway-gen4-turbo"
    names = [spec.name for spec in catalog.all()]
    shared = {name for name in names if names.count(name) > 1}
    assert shared == {"veo-3", "veo-3-fast", "seedance-2-fast", "runway-gen4-turbo"}


def test_ids_default_to_names_elsewhere(catalog: Catalog) -> None:
    assert catalog.get("kling-3-pro").namespace == "kyma"
    assert catalog.get("alibaba/wan-2.5-t2v-preview").namespace == "thalam"
    assert catalog.get("kling-3.0").name == "kling-3.0"


def test_all_is_stable_and_complete(catalog: Catalog) -> None:
    again = load_catalog()
    assert [s.id for s in catalog.all()] == [s.id for s in again.all()]
    assert len(catalog) == len({s.id for s in catalog.all()})
    assert catalog.namespaces() == ["apiframe", "kyma", "minimax", "thalam", "venice"]
    assert sum(len(catalog.in_namespace(ns)) for ns in catalog.namespaces()) == len(catalog)


def test_unknown_model_names_the_id(catalog: Catalog) -> None:
    with pytest.raises(UnknownModel, match="foo/bar") as raised:
        catalog.get("foo/bar")
    assert raised.value.param == "model"
    with pytest.raises(UnknownModel, match="kling-9"):
        catalog.resolve("kyma", "kling-9")
    with pytest.raises(UnknownModel):
        catalog.resolve("thalam", "kling-3-pro")  # a Kyma name is not a Thalam one


def test_duration_ranges_are_expanded(catalog: Catalog) -> None:
    assert catalog.get("kuaishou/kling-v3.0-pro-t2v").durations == tuple(range(1, 31))
    assert catalog.get("kling-3-pro").durations == tuple(range(1, 11))
    assert catalog.get("kling-3.0").durations == tuple(range(3, 16))


def test_routes_use_registered_providers(catalog: Catalog) -> None:
    for spec in catalog.all():
        for route in spec.routes:
            assert route.provider in PROVIDERS, (spec.id, route.provider)
            assert route.provider != "simulator"


def test_models_without_upstream_have_no_routes(catalog: Catalog) -> None:
    assert catalog.get("midjourney-video").routes == ()
    assert catalog.get("shengshu/vidu-q3-pro-t2v").routes == ()


def test_direct_vendor_comes_first(catalog: Catalog) -> None:
    assert catalog.get("kling-3-pro").routes[0].provider == "kling"
    # Vertex before the Gemini API: Gemini drops seed and generateAudio (docs/upstreams.md).
    assert [r.provider for r in catalog.get("veo-3.1").routes] == ["vertex", "gemini", "fal"]
    assert catalog.get("MiniMax-Hailuo-02").routes[0].provider == "minimax"
    assert catalog.get("alibaba/wan2.6-t2v").routes[0].provider == "dashscope"
    assert catalog.get("seedance-2").routes[0].provider == "ark"
    assert catalog.get("sora-2").routes[0].provider == "openai"


def test_every_packaged_file_opens_with_a_source_comment() -> None:
    data = resources.files("vidgate.catalog").joinpath("data")
    files = [item for item in data.iterdir() if item.name.endswith(".toml")]
    assert len(files) == 5
    for item in files:
        assert item.read_text(encoding="utf-8").startswith("# "), item.name


def test_operator_override_merges_over_the_packaged_entry(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[model]]
id = "kling-3-pro"
description = "Our own Kling."
price = { amount = "0.2" }
dialect = { note = "house price" }
""",
    )
    spec = load_catalog(path).get("kling-3-pro")
    assert spec.description == "Our own Kling."
    assert spec.price is not None
    assert spec.price.amount == Decimal("0.2")
    assert spec.price.rule == "per_second"  # kept from the packaged entry
    assert spec.price.source == "operator"
    assert spec.dialect == {"seed_route": "fal", "note": "house price"}
    assert spec.namespace == "kyma"
    assert spec.durations == tuple(range(1, 11))
    assert [r.provider for r in spec.routes] == ["kling", "fal"]


def test_operator_price_with_a_new_rule_replaces_the_price(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[model]]
id = "kling-3.0"
price = { rule = "flat", amount = "9", unit = "credit" }
routes = [{ provider = "fal", model = "fal-ai/kling-video/v3/pro/text-to-video" }]
""",
    )
    spec = load_catalog(path).get("kling-3.0")
    assert spec.price is not None
    assert spec.price.rule == "flat"
    assert spec.price.variants == {}
    assert [r.provider for r in spec.routes] == ["fal"]


def test_operator_can_override_a_namespaced_id_and_make_a_model_orderable(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[model]]
id = "minimax/hailuo-02"
orderable = true
price = { rule = "per_clip", amount = "0.40", base_seconds = 6 }

[[model]]
id = "kyma/veo-3"
durations = { min = 4, max = 8 }
""",
    )
    loaded = load_catalog(path)
    assert loaded.get("minimax/hailuo-02").orderable
    assert loaded.get("kyma/veo-3").durations == (4, 5, 6, 7, 8)
    assert loaded.resolve("kyma", "veo-3").durations == (4, 5, 6, 7, 8)


def test_operator_additions_get_a_namespace_and_an_id(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[defaults]
vendor = "Our lab"

[[model]]
name = "house-model"
label = "House model"
durations = [4, 8]
default_duration = 4
price = { rule = "per_second", amount = "0.05" }
routes = [{ provider = "comfyui", model = "wan22.json" }]

[[model]]
name = "kling-3-pro"
namespace = "thalam"
label = "Kling for Thalam clients"
vendor = "Kuaishou"
id = "thalam/kling-3-pro"
durations = [5]
default_duration = 5
price = { rule = "per_clip", amount = "1" }
""",
    )
    loaded = load_catalog(path)
    house = loaded.get("house-model")
    assert house.namespace == "native"
    assert house.vendor == "Our lab"
    assert loaded.all()[-2:] == [house, loaded.get("thalam/kling-3-pro")]
    assert loaded.resolve("thalam", "kling-3-pro").id == "thalam/kling-3-pro"
    assert len(loaded) == len(load_catalog()) + 2


def test_operator_file_namespace_applies_to_additions(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
namespace = "venice"

[[model]]
name = "house-text-to-video"
label = "House"
vendor = "Us"
durations = [5]
default_duration = 5
price = { rule = "flat", amount = 0.1 }
""",
    )
    spec = load_catalog(path).resolve("venice", "house-text-to-video")
    assert spec.price is not None
    assert spec.price.amount == Decimal("0.1")


def test_duplicate_ids_name_both_entries(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[model]]
name = "twin"
label = "A"
vendor = "Us"
durations = [5]
default_duration = 5
price = { rule = "flat", amount = "1" }

[[model]]
name = "twin"
label = "B"
vendor = "Us"
durations = [5]
default_duration = 5
price = { rule = "flat", amount = "1" }
""",
    )
    with pytest.raises(CatalogError, match="duplicate model id 'twin'") as raised:
        load_catalog(path)
    assert str(raised.value).count("operator.toml") == 2


def test_a_second_name_in_one_namespace_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[model]]
id = "my-kling"
name = "kling-3-pro"
namespace = "kyma"
label = "Clash"
vendor = "Us"
durations = [5]
default_duration = 5
price = { rule = "flat", amount = "1" }
""",
    )
    with pytest.raises(CatalogError, match="kling-3-pro"):
        load_catalog(path)


def test_invalid_entries_name_the_file_and_model(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[model]]
name = "broken"
label = "Broken"
vendor = "Us"
durations = [5]
default_duration = 6
price = { rule = "flat", amount = "1" }
""",
    )
    with pytest.raises(CatalogError, match=r"operator\.toml model 'broken'.*default_duration"):
        load_catalog(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models = []", "unknown top-level key"),
        ("[[model]\n", "not valid TOML"),
        ('[[model]]\nname = "x"\ndurations = { min = 5 }\n', "a range is written"),
        ('[[model]]\nname = "x"\ndurations = { min = 9, max = 3 }\n', "0 < min <= max"),
        ("[[model]]\nlabel = 'nameless'\n", "needs a name"),
    ],
)
def test_malformed_operator_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        load_catalog(write(tmp_path, text))


def test_missing_operator_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(tmp_path / "absent.toml")


def test_a_catalog_refuses_two_entries_with_one_id(catalog: Catalog) -> None:
    spec = catalog.get("kling-3-pro")
    with pytest.raises(CatalogError, match="duplicate model id 'kling-3-pro'"):
        Catalog([spec, spec])


def test_ranges_also_work_per_resolution(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[model]]
name = "ranged"
label = "Ranged"
vendor = "Us"
durations = { min = 2, max = 12 }
default_duration = 4
resolutions = ["720p", "1080p"]
default_resolution = "720p"
durations_by_resolution = { "1080p" = { min = 2, max = 6 } }
price = { rule = "per_second", amount = "0.01" }
""",
    )
    spec = load_catalog(path).get("ranged")
    assert spec.durations == tuple(range(2, 13))
    assert spec.durations_by_resolution == {"1080p": (2, 3, 4, 5, 6)}
