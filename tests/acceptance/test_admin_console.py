"""The operator console (issue 16): served by ``vidgate serve`` at ``/admin`` and driven
end to end in Debian's Chromium, against live fake upstreams (Kling, then fal).

The first tests need no browser: the page and its assets are served like the
playground's, without the API's token, and never shadow the admin API. The browser
test (``-m browser``) signs in with the admin token, creates an account, tops it up,
issues a key, runs a live Thalam job with it, finds the job by its Thalam task id,
reads its events and margin, disables the route it took on the Routes page, and sees
the next job take the other route. Screenshots go to ``test-artifacts/admin/``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.acceptance.browser import REPO_ROOT, ConsoleWatch, Screenshots, chromium
from tests.acceptance.conftest import Served, start_server, stop_server
from vidgate.testing.fake import FakeScript, FakeUpstream
from vidgate.testing.fakes import fake_class
from vidgate.testing.fakes.kling import TEST_SECRET_KEY
from vidgate.testing.server import serve_in_thread

TOKEN = "console-admin-token"
ARTIFACTS = REPO_ROOT / "test-artifacts" / "admin"
MODEL = "kuaishou/kling-v3.0-pro-t2v"  # Thalam's Kling 3.0 Pro: routes kling, then fal
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def fakes() -> Iterator[dict[str, FakeUpstream]]:
    with ExitStack() as stack:
        running: dict[str, FakeUpstream] = {}
        for name in ("kling", "fal"):
            fake = fake_class(name)(api_key=f"{name}-key", script=FakeScript(latency_s=0.3, video_seconds=5))
            fake.base_url = stack.enter_context(serve_in_thread(fake.app()))
            running[name] = fake
        yield running


def _live_env(fakes: dict[str, FakeUpstream]) -> dict[str, str]:
    return {
        "VIDGATE_ADMIN_TOKEN": TOKEN,
        "VIDGATE_KLING_API_KEY": "kling-key",
        "VIDGATE_KLING_SECRET_KEY": TEST_SECRET_KEY,
        "VIDGATE_KLING_BASE_URL": fakes["kling"].base_url,
        "VIDGATE_FAL_API_KEY": "fal-key",
        "VIDGATE_FAL_BASE_URL": fakes["fal"].base_url,
    }


@pytest.fixture
def server(tmp_path: Path, database_url: str, fakes: dict[str, FakeUpstream]) -> Iterator[Served]:
    process, served = start_server(tmp_path, database_url, extra_env=_live_env(fakes))
    try:
        yield served
    finally:
        stop_server(process)


# ------------------------------------------------------------------ served, no browser


def test_console_is_served_beside_the_admin_api(server: Served) -> None:
    page = httpx.get(f"{server.base_url}/admin")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-cache"
    assets = re.findall(r'(?:src|href)="(admin/assets/[^"]+)"', page.text)
    assert {a.rsplit("/", 1)[1] for a in assets} == {"console.js", "base.css", "console.css"}
    for asset in assets:
        answer = httpx.get(f"{server.base_url}/{asset}")
        assert answer.status_code == 200, asset
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
    version = assets[0].split("/")[2]
    modules = (
        "api.js",
        "dom.js",
        "accounts.js",
        "jobs.js",
        "providers.js",
        "routes.js",
        "reports.js",
        "audit.js",
    )
    for module in modules:
        assert httpx.get(f"{server.base_url}/admin/assets/{version}/{module}").status_code == 200, module
    # Nothing is loaded from anywhere else.
    assert "http://" not in page.text and "https://" not in page.text
    slash = httpx.get(f"{server.base_url}/admin/", follow_redirects=False)
    assert slash.status_code == 308 and slash.headers["location"].endswith("/admin")
    # The API next to it still wants the token.
    assert httpx.get(f"{server.base_url}/admin/accounts").status_code == 401
    assert httpx.get(f"{server.base_url}/admin/assets/{version}/nope.js").status_code == 404


def test_console_is_absent_without_an_admin_token(tmp_path: Path, database_url: str) -> None:
    process, served = start_server(tmp_path, database_url)
    try:
        assert httpx.get(f"{served.base_url}/admin").status_code == 404
        assert httpx.get(f"{served.base_url}/admin/accounts").status_code == 404
    finally:
        stop_server(process)


# ------------------------------------------------------------------ in Chromium


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def thalam(served: Served, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{served.base_url}/thalam/v1", headers={"Authorization": f"Bearer tl-{key}"}, timeout=60
    )


def run_thalam_job(client: httpx.Client, prompt: str) -> str:
    """Submit a live Thalam task and poll it to the end (bounded); its task id."""
    created = client.post("/videos/generations", json={"model": MODEL, "prompt": prompt, "duration": 5})
    assert created.status_code == 200, created.text
    task_id: str = created.json()["task_id"]
    deadline = time.monotonic() + 90
    while True:
        task = client.get(f"/videos/tasks/{task_id}").json()["task"]
        if task["status"] in ("TASK_STATUS_SUCCEED", "TASK_STATUS_FAILED"):
            assert task["status"] == "TASK_STATUS_SUCCEED", task
            return task_id
        assert time.monotonic() < deadline, f"task {task_id} did not finish: {task}"
        time.sleep(0.2)


def fits(page: Page) -> None:
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the window"


def sign_in(page: Page, base_url: str, actor: str) -> None:
    page.goto(f"{base_url}/admin")
    page.get_by_test_id("admin-token").fill(TOKEN)
    page.get_by_test_id("actor").fill(actor)
    page.get_by_test_id("sign-in").click()
    expect(page.get_by_test_id("accounts-table")).to_be_visible()
    expect(page.get_by_test_id("actor-name")).to_have_text(f"Signed in as {actor}")


def find_job(page: Page, public_id: str) -> None:
    page.get_by_test_id("nav-jobs").click()
    page.get_by_test_id("job-search-q").fill(public_id)
    page.get_by_test_id("job-search").click()
    expect(page.get_by_test_id("job-count")).to_have_text("1 job")
    page.get_by_test_id("job-link").click()
    expect(page.get_by_test_id("job-page")).to_be_visible()


@pytest.mark.browser
@pytest.mark.timeout(400)
def test_console_end_to_end(server: Served, fakes: dict[str, FakeUpstream], browser: Browser) -> None:
    # The server (and its database) first: Playwright's sync API keeps an event loop running.
    console = ConsoleWatch()
    shots = Screenshots("desktop", ARTIFACTS)
    context = browser.new_context(viewport=DESKTOP)
    page = console.watch(context.new_page(), "desktop")
    try:
        # 1. Sign in with the admin token (the page itself loads without it).
        page.goto(f"{server.base_url}/admin")
        expect(page.get_by_test_id("admin-token")).to_be_visible()
        shots.take(page, "sign in")
        sign_in(page, server.base_url, "Ada Operator")
        assert page.evaluate("() => localStorage.length") == 0  # the token is never persisted
        shots.take(page, "accounts")

        # 2. Create an account.
        page.get_by_test_id("new-account-name").fill("northwind")
        page.get_by_test_id("create-account").click()
        expect(page.get_by_test_id("account-page")).to_be_visible()
        expect(page.get_by_role("heading", name="northwind")).to_be_visible()
        expect(page.get_by_test_id("balance-live")).to_have_text("$0.00")

        # 3. Top it up, with a reason (a ledger entry); an empty reason is refused first.
        page.get_by_test_id("topup-amount").fill("25")
        page.get_by_test_id("topup-submit").click()
        expect(page.get_by_test_id("topup-error")).to_contain_text("reason")
        page.get_by_test_id("topup-reason").fill("pilot credit, PO 4471")
        page.get_by_test_id("topup-submit").click()
        expect(page.get_by_test_id("balance-live")).to_have_text("$25.00")
        expect(page.get_by_test_id("ledger-live")).to_contain_text("pilot credit, PO 4471")

        # 4. Issue a live key: its secret is shown once.
        page.get_by_test_id("key-mode").select_option("live")
        page.get_by_test_id("key-name").fill("render farm")
        page.get_by_test_id("issue-key").click()
        secret = page.get_by_test_id("key-secret").inner_text().strip()
        assert secret.startswith("vg_live_")
        expect(page.get_by_test_id("key-row")).to_have_count(1)
        shots.take(page, "account with key")

        # 5. Run a job with that key through the Thalam dialect; it takes the first route (Kling).
        client = thalam(server, secret)
        first = run_thalam_job(client, "a paper boat on a river at dawn")

        # 6. Find it by its Thalam task id; its events and its margin.
        find_job(page, first)
        expect(page.get_by_test_id("job-status")).to_have_text("succeeded")
        expect(page.get_by_test_id("job-provider")).to_have_text("kling")
        events = page.get_by_test_id("job-events")
        expect(events).to_contain_text("video.queued")
        expect(events).to_contain_text("video.completed")
        expect(page.get_by_test_id("job-attempts")).to_contain_text("accepted")
        expect(page.get_by_test_id("job-charged")).to_have_text(re.compile(r"^\$\d+\.\d+$"))
        expect(page.get_by_test_id("job-margin")).to_have_text(re.compile(r"^−?\$\d+\.\d+$"))
        expect(page.get_by_test_id("job-ledger")).to_contain_text("capture")
        shots.take(page, "job by thalam task id")

        # 7. Disable the route it used (Kling) on the Routes page.
        page.get_by_test_id("nav-routes").click()
        page.get_by_test_id("route-filter").fill(MODEL)
        card = page.locator(f'[data-testid="route-model"][data-model="{MODEL}"]')
        expect(card).to_be_visible()
        kling = card.locator('[data-testid="route-row"][data-provider="kling"]')
        expect(kling.get_by_test_id("route-enabled")).to_be_checked()
        kling.get_by_test_id("route-enabled").uncheck()
        card.get_by_test_id("route-save").click()
        expect(card.get_by_test_id("route-saved")).to_have_text(re.compile("^Saved"))
        shots.take(page, "route disabled")

        # 8. The next job avoids it: fal takes it, and Kling saw no new submission.
        kling_posts = sum(1 for r in fakes["kling"].requests if r[0] == "POST")
        second = run_thalam_job(client, "the same boat, at night")
        assert sum(1 for r in fakes["kling"].requests if r[0] == "POST") == kling_posts
        find_job(page, second)
        expect(page.get_by_test_id("job-provider")).to_have_text("fal")
        expect(page.get_by_test_id("job-attempts")).to_contain_text("fal")

        # 9. The margin report, as a table and a chart; the providers; the audit trail names who.
        page.get_by_test_id("nav-reports").click()
        page.get_by_test_id("report-by").select_option("provider")
        page.get_by_test_id("report-mode").select_option("live")
        page.get_by_test_id("report-show").click()
        expect(page.get_by_test_id("report-row")).to_have_count(2)
        expect(page.get_by_test_id("report-table")).to_contain_text("kling")
        expect(page.get_by_test_id("report-chart")).to_be_visible()
        shots.take(page, "margin by provider")
        page.get_by_test_id("nav-providers").click()
        expect(page.get_by_test_id("provider-row")).to_have_count(2)
        kling_row = page.get_by_test_id("provider-row").filter(has_text="Kling")
        kling_row.get_by_test_id("provider-test").click()
        expect(kling_row.get_by_test_id("provider-test-result")).to_have_text(re.compile(r"^✓ "))
        shots.take(page, "providers")
        page.get_by_test_id("nav-audit").click()
        audit = page.get_by_test_id("audit-table")
        for action in ("account.create", "account.topup", "key.issue", "provider.test"):
            expect(audit).to_contain_text(action)
        expect(audit).to_contain_text("Ada Operator")
        shots.take(page, "audit trail")
        assert console.errors == []

        # 10. The same console on a phone: the job page and the account fit the screen.
        phone_shots = Screenshots("phone", ARTIFACTS)
        phone = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
        small = console.watch(phone.new_page(), "phone")
        sign_in(small, server.base_url, "Ada on the go")
        fits(small)
        phone_shots.take(small, "accounts")
        small.get_by_test_id("account-link").filter(has_text="northwind").click()
        expect(small.get_by_test_id("balance-live")).to_be_visible()
        fits(small)
        phone_shots.take(small, "account")
        find_job(small, first)
        expect(small.get_by_test_id("job-margin")).to_be_visible()
        fits(small)
        phone_shots.take(small, "job")
        small.get_by_test_id("nav-routes").click()
        small.get_by_test_id("route-filter").fill(MODEL)
        expect(small.locator(f'[data-testid="route-model"][data-model="{MODEL}"]')).to_be_visible()
        fits(small)
        phone_shots.take(small, "routes")
        phone.close()
        assert console.errors == []
    finally:
        context.close()
