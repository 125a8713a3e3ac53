"""Fixtures for the catalog tests: the packaged catalog and a request builder."""

from __future__ import annotations

from typing import Any

import pytest

from vidgate.catalog.loader import Catalog, load_catalog
from vidgate.catalog.models import ModelSpec
from vidgate.domain.request import GenerationRequest, ImageInput

IMAGE = "https://example.test/frame.png"


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


def request_for(spec: ModelSpec, **fields: Any) -> GenerationRequest:
    """A request that satisfies the entry's input requirements, plus ``fields``."""
    images: list[ImageInput] = []
    if spec.image == "required":
        images.append(ImageInput(url=IMAGE))
    if set(spec.modes) == {"reference"}:
        images.append(ImageInput(url=IMAGE, role="reference"))
    values: dict[str, Any] = {"model": spec.id, "prompt": "a lighthouse in a storm"}
    values["images"] = tuple(images)
    values.update(fields)
    return GenerationRequest(**values)
