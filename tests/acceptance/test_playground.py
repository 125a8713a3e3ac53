"""The playground and dashboard (issue 7): served by ``vidgate serve`` itself at
``/`` and ``/playground``, and driven end to end in Debian's Chromium.

The first tests need no browser: the page and its assets are served with the
right types and caching, and nothing is loaded from anywhere else. The browser
tests (``-m browser``) save a screenshot at each step under
``test-artifacts/playground/``.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect

from tests.acceptance.browser import ConsoleWatch, Screenshots, chromium
from tests.acceptance.conftest import Served, start_server, stop_server
from tests.conftest import Gateway
from vidgate import web
from vidgate.api.errors import ErrorRouter, install_error_handlers

# The data-testids the issue promises to tests outside the project.
TEST_IDS = (
    "api-key", "sign-in", "model", "prompt", "duration", "image-input", "quote", "balance",
    "send", "job-status", "video-player", "ledger-link", "ledger-table",
)  # fmt: skip

# ------------------------------------------------------------------ served, no browser


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = FastAPI()
    errors = ErrorRouter()
    install_error_handlers(app, errors)
    web.install(app)
    with TestClient(app) as test_client:
        yield test_client


def _page_assets(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="(playground/assets/[^"]+)"', html)


def test_page_and_assets_are_served_with_types_and_caching(client: TestClient) -> None:
    pages = [client.get(path) for path in ("/", "/playground")]
    for page in pages:
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.headers["cache-control"] == "no-cache"
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert "connect-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-content-type-options"] == "nosniff"
    assert pages[0].text == pages[1].text

    assets = _page_assets(pages[0].text)
    assert {a.rsplit("/", 1)[1] for a in assets} == {"app.js", "app.css", "favicon.svg"}
    version = assets[0].split("/")[2]
    assert re.fullmatch(r"[0-9a-f]{12}", version)
    bodies: dict[str, str] = {}
    types = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
    for asset in assets:
        answer = client.get(f"/{asset}")
        assert answer.status_code == 200, asset
        suffix = asset[asset.rfind(".") :]
        assert answer.headers["content-type"] == types.get(suffix, "image/svg+xml")
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
        again = client.get(f"/{asset}", headers={"If-None-Match": answer.headers["etag"]})
        assert again.status_code == 304
        bodies[asset] = answer.text

    # The modules the page imports resolve in the same versioned folder.
    app_js = bodies[next(a for a in assets if a.endswith("app.js"))]
    imports = re.findall(r'from "\./([\w.-]+\.js)"', app_js)
    assert {"api.js", "util.js", "models.js"} <= set(imports)
    for name in imports:
        module = client.get(f"/playground/assets/{version}/{name}")
        assert module.status_code == 200
        assert module.headers["content-type"] == "text/javascript; charset=utf-8"
        bodies[name] = module.text

    # Nothing from another origin: no absolute URLs in markup, styles or module imports.
    everything = pages[0].text + "".join(bodies.values())
    assert not re.search(r'(?:src|href)="(?:https?:)?//', everything)
    assert not re.search(r'(?:from|import)\s*\(?\s*"(?:https?:)?//', everything)
    assert "@import" not in everything

    # Every promised test id is in the page or created by its script.
    script = "".join(bodies.values())
    for test_id in TEST_IDS:
        assert f'data-testid="{test_id}"' in pages[0].text or f'"data-testid": "{test_id}"' in script


def test_asset_versions_heads_redirects_and_unknown_names(client: TestClient) -> None:
    version = _page_assets(client.get("/").text)[0].split("/")[2]
    stale = client.get("/playground/assets/000000000000/app.css")
    assert stale.status_code == 200
    assert stale.headers["cache-control"] == "no-cache"  # an old page gets today's file, revalidated

    head = client.head(f"/playground/assets/{version}/app.js")
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) > 1000

    missing = client.get(f"/playground/assets/{version}/nope.js")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"

    slash = client.get("/playground/", follow_redirects=False)
    assert slash.status_code == 308
    assert slash.headers["location"].endswith("/playground")
    assert client.get("/favicon.ico").headers["content-type"] == "image/svg+xml"


async def test_the_app_factory_serves_the_playground(gateway: Gateway) -> None:
    page = await gateway.client.get("/")
    assert page.status_code == 200
    assert 'data-testid="api-key"' in page.text
    assert (await gateway.client.get("/playground")).text == page.text
    assert (await gateway.client.get("/healthz")).status_code == 200


# ------------------------------------------------------------------ in Chromium

# Records every value the job progress bars take, from before the page's own script runs.
PROGRESS_RECORDER = """
window.__progress = [];
new MutationObserver((records) => {
  for (const record of records) {
    const bar = record.target;
    if (bar.dataset && bar.dataset.testid === "job-progress") {
      const card = bar.closest("[data-job-id]");
      window.__progress.push([card ? card.dataset.jobId : null, Number(bar.getAttribute("aria-valuenow"))]);
    }
  }
}).observe(document, {subtree: true, attributes: true, attributeFilter: ["aria-valuenow"]});
"""

VIDEO_DURATION = """
(video) => new Promise((resolve, reject) => {
  if (video.readyState >= 1 && Number.isFinite(video.duration)) return resolve(video.duration);
  video.addEventListener("loadedmetadata", () => resolve(video.duration), {once: true});
  video.addEventListener("error", () => reject(new Error("the video failed to load")), {once: true});
})
"""

VIDEO_FETCHES = """
(id) => performance.getEntriesByType("resource")
  .filter((e) => e.initiatorType === "fetch")
  .map((e) => ({path: new URL(e.name).pathname + new URL(e.name).search, start: e.startTime, end: e.responseEnd}))
  .filter((e) => e.path === "/v1/videos" || e.path === "/v1/videos/" + id)
"""


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:  # skips (or fails, if required) before a server starts
        yield launched


@pytest.fixture
def server(browser: Browser, tmp_path: Any, database_url: str) -> Iterator[Served]:
    process, served = start_server(tmp_path, database_url)
    try:
        yield served
    finally:
        stop_server(process)


def usd(amount: str) -> str:
    """The page's money format: "0.162" -> "$0.162", "10.5" -> "$10.50"."""
    whole, _, fraction = amount.lstrip("-").partition(".")
    return f"${int(whole):,}.{fraction.ljust(2, '0')}"


def fresh_test_key(served: Served, account: str, credit: str = "10") -> str:
    created = served.cli("keys", "create", "--account", account, "--test", "--credit", credit)
    key = created.stdout.strip().splitlines()[-1].strip()
    assert key.startswith("vg_test_"), created.stdout
    return key


def api(served: Served, key: str) -> httpx.Client:
    return httpx.Client(base_url=served.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def png(width: int = 320, height: int = 180) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (36, 64, 120))
    ImageDraw.Draw(image).ellipse((130, 60, 190, 120), fill=(240, 200, 80))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def choose_models(models: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any], int]:
    """An image-to-video model, a text-to-video one with several durations, and a short one."""
    i2v = next(m for m in models if m["orderable"] and "i2v" in m["modes"] and "t2v" not in m["modes"])
    t2v = next(
        m for m in models
        if m["orderable"] and m["modes"] == ["t2v"] and len(m["constraints"]["duration"]) >= 2
    )  # fmt: skip
    durations = t2v["constraints"]["duration"]
    duration = 3 if 3 in durations else min(durations)
    return i2v, t2v, duration


def options_of(page: Page, test_id: str) -> list[str]:
    values: list[str] = (
        page.get_by_test_id(test_id)
        .locator("option")
        .evaluate_all("(options) => options.map((o) => o.value)")
    )
    return values


def sign_in(page: Page, key: str) -> None:
    page.get_by_test_id("api-key").fill(key)
    page.get_by_test_id("sign-in").click()
    expect(page.get_by_test_id("send")).to_be_visible()


def wait_video(page: Page) -> float:
    player = page.get_by_test_id("video-player")
    expect(player).to_be_visible(timeout=60_000)
    duration: float = player.evaluate(VIDEO_DURATION)
    return duration


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_playground_end_to_end(browser: Browser, server: Served) -> None:
    key = fresh_test_key(server, "pw")
    http = api(server, key)
    models = http.get("/v1/models").json()["data"]
    i2v, t2v, duration = choose_models(models)

    console = ConsoleWatch()
    shots = Screenshots("desktop")
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    context.add_init_script(PROGRESS_RECORDER)
    page = console.watch(context.new_page(), "desktop")
    hints: list[tuple[str, str, int | None]] = []  # (method, path, openai-poll-after-ms)

    def on_response(response: Any) -> None:
        path = httpx.URL(response.url).path
        if re.fullmatch(r"/v1/videos(/[\w-]+)?", path):
            value = response.headers.get("openai-poll-after-ms")
            hints.append((response.request.method, path, int(value) if value else None))

    page.on("response", on_response)
    try:
        # 1. Sign in with a fresh test key: the test-mode badge, the balance.
        page.goto(f"{server.base_url}/")
        expect(page.get_by_test_id("api-key")).to_be_visible()
        shots.take(page, "sign in")
        sign_in(page, key)
        expect(page.get_by_test_id("test-mode")).to_be_visible()
        expect(page.get_by_test_id("balance")).to_have_text("$10.00")
        assert "vidgate.playground.key" in page.evaluate("() => Object.keys(sessionStorage)")
        assert page.evaluate("() => localStorage.length") == 0  # the key is never persisted
        shots.take(page, "signed in")

        # Unavailable models are offered greyed out, with the reason.
        for model in models:
            option = page.get_by_test_id("model").locator(f'option[value="{model["id"]}"]')
            if not model["orderable"]:
                expect(option).to_be_disabled()
                expect(option).to_contain_text(model["unavailable_reason"])

        # 2. An image-to-video model: the image input appears and takes an upload.
        page.get_by_test_id("model").select_option(i2v["id"])
        expect(page.get_by_test_id("image-input")).to_be_visible()
        page.get_by_test_id("image-input").set_input_files(
            files=[{"name": "first-frame.png", "mimeType": "image/png", "buffer": png()}]
        )
        expect(page.get_by_test_id("image-preview")).to_be_visible()
        expect(page.get_by_test_id("quote")).to_have_text(re.compile(r"^\$\d"))
        shots.take(page, "image to video model")

        # 3. A text-to-video model: no image input; only its allowed values are offered.
        page.get_by_test_id("model").select_option(t2v["id"])
        expect(page.get_by_test_id("image-input")).to_be_hidden()
        constraints = t2v["constraints"]
        assert options_of(page, "duration") == [str(d) for d in constraints["duration"]]
        if constraints["resolution"]:
            assert options_of(page, "resolution") == constraints["resolution"]
        else:
            expect(page.get_by_test_id("resolution")).to_be_hidden()
        if constraints["aspect_ratio"]:
            assert options_of(page, "aspect-ratio") == constraints["aspect_ratio"]
        if set(constraints["audio"]) == {True, False}:
            expect(page.get_by_test_id("audio")).to_be_attached()
        else:
            expect(page.get_by_test_id("audio")).to_be_hidden()
        prompt = "A drone shot over a desert at golden hour."
        page.get_by_test_id("prompt").fill(prompt)
        expect(page.get_by_test_id("prompt-counter")).to_have_text(re.compile(rf"^{len(prompt)} / [\d,]+$"))

        # 4. Set a duration and see the live quote: the gateway's own price.
        page.get_by_test_id("duration").select_option(str(duration))
        quoted = http.post("/v1/quotes", json={"model": t2v["id"], "prompt": prompt, "duration": duration})
        amount = quoted.json()["amount"]
        expect(page.get_by_test_id("quote")).to_have_attribute("data-amount", amount)
        expect(page.get_by_test_id("quote")).to_have_text(usd(amount))
        shots.take(page, "text to video quoted")

        # 5. Send: the job shows its status and a progress bar, then the player.
        page.get_by_test_id("send").click()
        status = page.get_by_test_id("job-status")
        expect(status).to_be_visible()
        job_id = page.locator("[data-testid=output] [data-job-id]").get_attribute("data-job-id")
        assert job_id and job_id.startswith("video_")
        shots.take(page, "job running")
        played = wait_video(page)
        expect(status).to_have_attribute("data-status", "completed")
        job = http.get(f"/v1/videos/{job_id}").json()
        assert job["status"] == "completed" and job["duration"] == duration
        assert abs(played - duration) < 0.25, (played, duration)
        assert abs(played - job["media"]["duration_s"]) < 0.25
        expect(page.get_by_test_id("download")).to_have_attribute("href", re.compile(r"/media/"))
        page.wait_for_timeout(300)  # let the progress bar's transition settle for the picture
        shots.take(page, "video ready")

        # The bar moved with the job, up to 100, never backwards.
        seen = [value for jid, value in page.evaluate("() => window.__progress") if jid == job_id]
        assert seen and seen[-1] == 100 and seen == sorted(seen), seen

        # Polling honoured openai-poll-after-ms: each next look waited at least that long.
        fetches = page.evaluate(VIDEO_FETCHES, job_id)
        mine = [h for h in hints if h[1] in ("/v1/videos", f"/v1/videos/{job_id}")]
        assert len(fetches) == len(mine) >= 2, (fetches, mine)
        for (_, _, hint), done, following in zip(mine, fetches, fetches[1:], strict=False):
            assert hint is not None
            assert following["start"] - done["end"] >= hint - 25, (hint, done, following)

        # The seekable player: the media answers byte ranges, and seeking works.
        page.get_by_test_id("video-player").evaluate("(v) => { v.currentTime = v.duration / 2; }")
        expect(page.get_by_test_id("video-player")).to_have_js_property("seeking", False)
        ranged = httpx.get(job["video_url"], headers={"Range": "bytes=0-99"}, timeout=30)
        assert ranged.status_code == 206

        # 6. The ledger: balance, held, the hold and the capture, linked to the job.
        page.get_by_test_id("ledger-link").click()
        table = page.get_by_test_id("ledger-table")
        hold = table.locator(f'tr[data-kind="hold"][data-job-id="{job_id}"]')
        capture = table.locator(f'tr[data-kind="capture"][data-job-id="{job_id}"]')
        expect(hold).to_be_visible()
        expect(capture).to_be_visible()
        expect(table.locator('tr[data-kind="topup"]')).to_have_count(1)
        expect(hold).to_contain_text(usd(job["cost"]["estimated"]))
        account = http.get("/v1/account").json()
        expect(page.get_by_test_id("ledger-balance")).to_have_text(usd(account["balance"]))
        expect(page.get_by_test_id("ledger-held")).to_have_text(usd(account["held"]))
        shots.take(page, "ledger hold and capture")

        # Entries link to their jobs.
        capture.get_by_test_id("ledger-job-link").click()
        expect(page).to_have_url(re.compile(rf"#/jobs/{job_id}$"))
        expect(page.get_by_test_id("job-status")).to_have_attribute("data-status", "completed")
        expect(page.get_by_test_id("job-ledger").locator("li")).to_have_count(2)
        wait_video(page)
        shots.take(page, "job page")

        # 7. A failing job: the reason, the refund, and the release in the ledger.
        page.get_by_test_id("playground-link").click()
        page.get_by_test_id("prompt").fill("A lighthouse in a storm. simulate:fail")
        page.get_by_test_id("send").click()
        expect(page.get_by_test_id("job-status")).to_have_attribute("data-status", "failed", timeout=60_000)
        fail_id = page.locator("[data-testid=output] [data-job-id]").get_attribute("data-job-id")
        assert fail_id and fail_id != job_id
        failed = http.get(f"/v1/videos/{fail_id}").json()
        expect(page.get_by_test_id("job-error")).to_be_visible()
        expect(page.get_by_test_id("job-error")).to_contain_text(failed["error"]["message"])
        expect(page.get_by_test_id("job-refund")).to_contain_text(
            f"Refunded {usd(failed['cost']['refunded'])}"
        )
        expect(page.get_by_test_id("video-player")).to_have_count(0)
        shots.take(page, "job failed and refunded")

        page.get_by_test_id("ledger-link").click()
        expect(table.locator(f'tr[data-kind="release"][data-job-id="{fail_id}"]')).to_be_visible()
        expect(table.locator(f'tr[data-kind="hold"][data-job-id="{fail_id}"]')).to_be_visible()
        expect(table.locator(f'tr[data-kind="capture"][data-job-id="{fail_id}"]')).to_have_count(0)
        expect(page.get_by_test_id("ledger-balance")).to_have_text(
            usd(http.get("/v1/account").json()["balance"])
        )
        shots.take(page, "ledger release")

        # 8. History: newest first, with status, model, duration, cost; click to open.
        page.get_by_test_id("history-link").click()
        rows = page.get_by_test_id("history-row")
        expect(rows).to_have_count(2)
        expect(rows.nth(0)).to_have_attribute("data-job-id", fail_id)
        expect(rows.nth(1)).to_have_attribute("data-job-id", job_id)
        expect(rows.nth(1)).to_contain_text(t2v["id"])
        expect(rows.nth(1)).to_contain_text(f"{duration} s")
        expect(rows.nth(1)).to_contain_text(usd(job["cost"]["charged"]))
        expect(rows.nth(1).locator("img.thumb")).to_be_visible()
        expect(rows.nth(0)).to_contain_text("refunded")
        shots.take(page, "history")
        rows.nth(1).click()
        expect(page).to_have_url(re.compile(rf"#/jobs/{job_id}$"))
        wait_video(page)
    except BaseException:
        shots.take(page, "failure state")
        raise
    finally:
        context.close()
        http.close()
    assert console.errors == []


@pytest.mark.browser
@pytest.mark.timeout(240)
def test_playground_on_a_phone_by_keyboard(browser: Browser, server: Served) -> None:
    key = fresh_test_key(server, "phone")
    http = api(server, key)
    done = http.post(
        "/v1/videos", json={"model": "sora-2", "prompt": "A red fox in the snow", "seconds": "4"}
    )
    assert done.status_code == 200, done.text

    console = ConsoleWatch()
    shots = Screenshots("phone")
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    page = console.watch(context.new_page(), "phone")

    def fits() -> None:
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow}px wider than the phone"

    try:
        page.goto(f"{server.base_url}/playground")
        expect(page.get_by_test_id("api-key")).to_be_visible()
        shots.take(page, "sign in")
        fits()

        # Keyboard only: Tab to the key field, type it, Enter.
        for _ in range(10):
            page.keyboard.press("Tab")
            if page.evaluate("() => document.activeElement.dataset.testid") == "api-key":
                break
        else:
            pytest.fail("Tab never reached the API key field")
        page.keyboard.type(key)
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("send")).to_be_visible()
        expect(page.get_by_test_id("test-mode")).to_be_visible()
        expect(page.get_by_test_id("quote")).to_have_text(re.compile(r"^\$\d"))
        shots.take(page, "playground")
        fits()

        # Every control on the way to Send is reachable with Tab, and visible when focused.
        page.get_by_test_id("model").focus()
        reached: list[str] = []
        for _ in range(40):
            page.keyboard.press("Tab")
            focused = page.evaluate(
                "() => { const e = document.activeElement; const r = e.getBoundingClientRect();"
                " return [e.dataset.testid || e.tagName, r.width > 0 && r.height > 0]; }"
            )
            assert focused[1], f"{focused[0]} has focus but is not visible"
            reached.append(focused[0])
            if focused[0] == "send":
                break
        assert {"prompt", "duration", "send"} <= set(reached), reached

        # Ctrl+Enter in the prompt sends.
        page.get_by_test_id("prompt").fill("Waves on a black-sand beach at dawn")
        page.get_by_test_id("prompt").press("Control+Enter")
        wait_video(page)
        page.wait_for_timeout(300)
        shots.take(page, "video ready", full_page=False)  # what the phone shows: scrolled to it
        fits()

        page.get_by_test_id("history-link").click()
        expect(page.get_by_test_id("history-row")).to_have_count(2)
        shots.take(page, "history")
        fits()

        page.get_by_test_id("ledger-link").click()
        expect(page.get_by_test_id("ledger-table").locator('tr[data-kind="capture"]')).to_have_count(2)
        shots.take(page, "ledger")
        fits()
    except BaseException:
        shots.take(page, "failure state")
        raise
    finally:
        context.close()
        http.close()
    assert console.errors == []


@pytest.mark.browser
@pytest.mark.timeout(240)
def test_history_and_ledger_are_paged(browser: Browser, server: Served) -> None:
    key = fresh_test_key(server, "pages")
    http = api(server, key)
    created = [
        http.post(
            "/v1/videos", json={"model": "sora-2", "prompt": f"take {n} simulate:fail", "seconds": "4"}
        ).json()["id"]
        for n in range(21)
    ]
    listed: list[dict[str, Any]] = []
    for _ in range(300):
        listed = http.get("/v1/videos", params={"limit": 100}).json()["data"]
        if len(listed) == 21 and all(v["status"] == "failed" for v in listed):
            break
        time.sleep(0.1)
    newest_first = [v["id"] for v in listed]
    assert sorted(newest_first) == sorted(created)

    console = ConsoleWatch()
    shots = Screenshots("paging")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = console.watch(context.new_page(), "paging")
    try:
        page.goto(f"{server.base_url}/playground#/history")
        page.get_by_test_id("api-key").fill(key)
        page.get_by_test_id("sign-in").click()  # returns to the page asked for
        rows = page.get_by_test_id("history-row")
        expect(rows).to_have_count(20)
        assert rows.evaluate_all("(rs) => rs.map((r) => r.dataset.jobId)") == newest_first[:20]
        expect(page.get_by_test_id("history-newer")).to_be_disabled()
        shots.take(page, "history page 1")
        page.get_by_test_id("history-older").click()
        expect(rows).to_have_count(1)
        expect(rows.first).to_have_attribute("data-job-id", newest_first[20])
        expect(page.get_by_test_id("history-older")).to_be_disabled()
        page.get_by_test_id("history-newer").click()
        expect(rows).to_have_count(20)

        page.get_by_test_id("ledger-link").click()
        entries = page.get_by_test_id("ledger-row")
        expect(entries).to_have_count(25)  # a top-up, then a hold and a release per job: 43
        shots.take(page, "ledger page 1")
        page.get_by_test_id("ledger-older").click()
        expect(entries).to_have_count(18)
        expect(page.get_by_test_id("ledger-table").locator('tr[data-kind="topup"]')).to_have_count(1)
        page.get_by_test_id("ledger-newer").click()
        expect(entries).to_have_count(25)
    except BaseException:
        shots.take(page, "failure state")
        raise
    finally:
        context.close()
        http.close()
    assert console.errors == []
