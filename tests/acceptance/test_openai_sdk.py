"""The official ``openai`` SDK against a real ``vidgate serve`` process."""

from __future__ import annotations

import io
from pathlib import Path

import av
import openai
import pytest
from openai import OpenAI

from tests.acceptance.conftest import Served


def probe(data: bytes) -> tuple[float, int, int, str]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert container.duration is not None
        return (
            container.duration / 1_000_000,
            stream.width,
            stream.height,
            stream.codec_context.name,
        )


def test_first_run_prints_a_working_demo_key(served: Served) -> None:
    assert served.demo_key.startswith("vg_test_")
    client = OpenAI(base_url=f"{served.base_url}/v1", api_key=served.demo_key)
    assert client.models.list().data  # the catalog is served


def test_create_and_poll_download_list_delete(served: Served, tmp_path: Path) -> None:
    client = OpenAI(base_url=f"{served.base_url}/v1", api_key=served.demo_key, max_retries=0)
    video = client.videos.create_and_poll(
        model="sora-2", prompt="a red fox in the snow", seconds="8", size="1280x720"
    )
    assert video.status == "completed", video
    assert video.progress == 100
    assert video.seconds == "8" and video.size == "1280x720"

    content = client.videos.download_content(video.id)
    data = content.read()
    duration, width, height, codec = probe(data)
    assert codec == "h264" and (width, height) == (1280, 720)
    assert abs(duration - 8) < 0.2

    thumb = client.videos.download_content(video.id, variant="thumbnail").read()
    assert thumb[:3] == b"\xff\xd8\xff"  # a JPEG

    assert client.videos.retrieve(video.id).id == video.id
    listed = client.videos.list(limit=10)
    assert video.id in [v.id for v in listed.data]

    deleted = client.videos.delete(video.id)
    assert deleted.deleted is True
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(video.id)


def test_portrait_and_multipart_input_reference(served: Served) -> None:
    from PIL import Image

    image = io.BytesIO()
    Image.new("RGB", (640, 360), (200, 30, 30)).save(image, format="PNG")
    client = OpenAI(base_url=f"{served.base_url}/v1", api_key=served.demo_key, max_retries=0)
    video = client.videos.create_and_poll(
        model="sora-2",
        prompt="it starts moving",
        seconds="4",
        size="720x1280",
        input_reference=("first.png", image.getvalue(), "image/png"),
    )
    assert video.status == "completed", video
    duration, width, height, _ = probe(client.videos.download_content(video.id).read())
    assert (width, height) == (720, 1280)
    assert abs(duration - 4) < 0.2


def test_failure_reports_reason_and_bad_input_is_a_clear_4xx(served: Served) -> None:
    client = OpenAI(base_url=f"{served.base_url}/v1", api_key=served.demo_key, max_retries=0)
    failed = client.videos.create_and_poll(model="sora-2", prompt="please simulate:fail", seconds="4")
    assert failed.status == "failed"
    assert failed.error is not None and "simulate:fail" in failed.error.message

    with pytest.raises(openai.BadRequestError) as bad:
        client.videos.create(model="sora-2", prompt="x", seconds="5")  # type: ignore[arg-type]
    assert "duration" in str(bad.value) or "seconds" in str(bad.value)
    with pytest.raises(openai.NotFoundError):
        client.videos.create(model="no-such-model", prompt="x")
    with pytest.raises(openai.AuthenticationError):
        OpenAI(base_url=f"{served.base_url}/v1", api_key="vg_test_wrong", max_retries=0).videos.list()


def test_remix_makes_a_new_job_from_the_same_settings(served: Served) -> None:
    client = OpenAI(base_url=f"{served.base_url}/v1", api_key=served.demo_key, max_retries=0)
    first = client.videos.create_and_poll(model="sora-2", prompt="a boat", seconds="4", size="1280x720")
    remix = client.videos.remix(first.id, prompt="a boat at night")
    assert remix.id != first.id and remix.remixed_from_video_id == first.id
    done = client.videos.poll(remix.id)
    assert done.status == "completed" and done.size == "1280x720" and done.seconds == "4"
