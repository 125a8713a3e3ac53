"""The README's generated tables match the code (regenerate with `vidgate docs NAME`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidgate.catalog.loader import load_catalog
from vidgate.docs import render

README = Path(__file__).parents[3] / "README.md"


@pytest.mark.parametrize("name", ["providers", "routes"])
def test_readme_embeds_the_current_table(name: str) -> None:
    assert render(name, load_catalog()) in README.read_text(), (
        f"run `vidgate docs {name}` and update README.md"
    )
