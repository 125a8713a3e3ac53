"""``/docs`` renders in Debian's Chromium with the network switched off: every request
that is not to the local server is aborted, and Swagger UI still draws every operation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Route, expect

from tests.acceptance.browser import ConsoleWatch, Screenshots, chromium
from tests.acceptance.conftest import Served, start_server, stop_server

LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Served]:
    process, served = start_server(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'docs.db'}")
    try:
        yield served
    finally:
        stop_server(process)


@pytest.mark.browser
@pytest.mark.timeout(180)
def test_docs_render_with_no_network(server: Served) -> None:
    blocked: list[str] = []
    served: list[str] = []

    def only_local(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname in LOCAL_HOSTS or url.startswith(("data:", "blob:")):
            served.append(url)
            route.continue_()
        else:
            blocked.append(url)
            route.abort("internetdisconnected")

    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, offline=False)
        context.route("**/*", only_local)
        console = ConsoleWatch()
        page = console.watch(context.new_page(), "docs")
        page.goto(f"{server.base_url}/docs", wait_until="load")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("vidgate", timeout=30_000)
        operations = page.locator(".opblock")
        expect(operations.first).to_be_visible(timeout=30_000)
        assert operations.count() > 30
        expect(page.locator(".btn.authorize")).to_be_visible()  # the security schemes
        page.locator(".opblock-summary-path", has_text="/v1/videos").first.click()
        expect(page.locator(".opblock-body").first).to_be_visible()
        Screenshots("docs").take(page, "docs offline")
        context.close()

    assert blocked == [], blocked
    assert any(url.endswith("/openapi.json") for url in served)
    assert any("/docs/assets/" in url and url.endswith(".js") for url in served)
    assert console.errors == [], console.errors
