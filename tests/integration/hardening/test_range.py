"""``Range`` numbers of any length, on every route that serves media: a start past the
end is 416, an end or suffix past the end is the whole file, never a 500 (issue 14)."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Gateway, auth
from tests.integration.dialects.test_minimax import create, wait_done

HUGE = "9" * 4300


@pytest.fixture
async def media_urls(gateway: Gateway) -> tuple[str, list[tuple[str, dict[str, str] | None]]]:
    """A finished job's media, reachable by the three routes that serve it: (key, [(url, params)])."""
    key, _ = await gateway.account(credit="10")
    created = await gateway.client.post(
        "/v1/videos", headers=auth(key), json={"model": "sora-2", "prompt": "range", "seconds": "4"}
    )
    assert created.status_code == 200, created.text
    done = await gateway.wait_terminal(f"/v1/videos/{created.json()['id']}", key)
    assert done["vidgate_status"] == "succeeded", done
    task = (await create(gateway, key, {"model": "T2V-01", "prompt": "range"}))["task_id"]
    finished = await wait_done(gateway, key, task)
    assert finished["status"] == "Success", finished
    return key, [
        (done["video_url"].replace("http://testserver", ""), None),  # the signature is in the query
        (f"/v1/videos/{done['id']}/content", None),
        ("/minimax/v1/files/retrieve_content", {"file_id": finished["file_id"]}),
    ]


async def test_long_range_numbers_are_read_with_bounds(
    gateway: Gateway, media_urls: tuple[str, list[tuple[str, dict[str, str] | None]]]
) -> None:
    key, urls = media_urls
    for url, params in urls:
        whole = await gateway.client.get(url, params=params, headers=auth(key))
        assert whole.status_code == 200, (url, whole.text)
        size = len(whole.content)

        async def get(
            spec: str | bytes, url: str = url, params: dict[str, str] | None = params
        ) -> httpx.Response:
            return await gateway.client.get(url, params=params, headers={**auth(key), "Range": spec})

        past = await get(f"bytes={HUGE}-")
        assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{size}", url
        past_both = await get(f"bytes={HUGE}-{HUGE}")
        assert past_both.status_code == 416, url
        open_end = await get(f"bytes=10-{HUGE}")
        assert open_end.status_code == 206 and open_end.content == whole.content[10:], url
        assert open_end.headers["content-range"] == f"bytes 10-{size - 1}/{size}"
        suffix = await get(f"bytes=-{HUGE}")
        assert suffix.status_code == 206 and suffix.content == whole.content, url
        padded = await get("bytes=" + "0" * 5000 + "5-" + "0" * 5000 + "9")
        assert padded.status_code == 206 and padded.content == whole.content[5:10], url
        for odd in (
            "bytes=\xb2-\xb3".encode("latin-1"),
            f"bytes={HUGE}",
            "bytes=1-2,3-4",
            "items=0-1",
            "bytes=--1",
        ):
            answer = await get(odd)
            assert answer.status_code == 200 and answer.content == whole.content, (url, odd)
