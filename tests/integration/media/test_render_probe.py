"""The simulator's renderer, checked by the prober: real H.264 MP4s of the asked shape."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest
from PIL import Image

from vidgate.media.probe import NotAVideo, make_thumbnail, probe
from vidgate.media.render import render_simulation

PROMPT = "A corgi surfing a huge wave at sunset, cinematic lighting, 35mm film grain"


@pytest.mark.parametrize(
    ("width", "height", "duration_s", "fps"),
    [
        (1280, 720, 2, 24),
        (720, 1280, 1, 24),
        (1920, 1080, 1, 24),
        (480, 480, 2, 30),
        (640, 360, 3, 12),
    ],
)
def test_render_then_probe(tmp_path: Path, width: int, height: int, duration_s: int, fps: int) -> None:
    path = tmp_path / "sim.mp4"
    render_simulation(path, prompt=PROMPT, duration_s=duration_s, width=width, height=height, fps=fps)
    info = probe(path)
    assert (info.width, info.height) == (width, height)
    assert abs(info.duration_s - duration_s) <= 1 / fps
    assert info.codec == "h264"
    assert info.container == "mp4"
    assert info.bytes == path.stat().st_size
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert sum(1 for _ in container.decode(stream)) == duration_s * fps


def test_odd_sizes_are_made_even(tmp_path: Path) -> None:
    path = tmp_path / "odd.mp4"
    render_simulation(path, prompt="odd", duration_s=1, width=481, height=359, fps=8)
    info = probe(path)
    assert (info.width, info.height) == (480, 358)


def test_moov_comes_first_for_progressive_playback(tmp_path: Path) -> None:
    path = tmp_path / "fast.mp4"
    render_simulation(path, prompt="fast start", duration_s=1, width=320, height=240, fps=8)
    head = path.read_bytes()
    assert 0 <= head.find(b"moov") < head.find(b"mdat")


def test_the_picture_moves(tmp_path: Path) -> None:
    path = tmp_path / "moving.mp4"
    render_simulation(path, prompt="motion", duration_s=1, width=320, height=240, fps=12)
    with av.open(str(path)) as container:
        frames = [bytes(frame.planes[0]) for frame in container.decode(video=0)]
    assert len(set(frames)) == len(frames)


def test_long_prompts_and_tiny_frames_render(tmp_path: Path) -> None:
    path = tmp_path / "tiny.mp4"
    render_simulation(path, prompt="word " * 2000 + "x" * 500, duration_s=1, width=64, height=36, fps=4)
    assert (probe(path).width, probe(path).height) == (64, 36)
    render_simulation(path, prompt="", duration_s=1, width=2, height=2, fps=4, label="")
    assert probe(path).width == 2


@pytest.mark.parametrize(
    "kwargs",
    [{"duration_s": 0}, {"fps": 0}, {"width": 0}, {"height": 100_000}],
)
def test_render_refuses_impossible_requests(tmp_path: Path, kwargs: dict[str, int]) -> None:
    args: dict[str, int] = {"duration_s": 1, "width": 64, "height": 64, "fps": 4, **kwargs}
    with pytest.raises(ValueError):
        render_simulation(tmp_path / "x.mp4", prompt="p", **args)


@pytest.mark.parametrize(
    ("width", "height", "max_width", "expected"),
    [
        (1280, 720, 640, (640, 360)),
        (720, 1280, 640, (640, 1138)),
        (320, 240, 640, (320, 240)),  # never upscaled
        (480, 480, 100, (100, 100)),
    ],
)
def test_thumbnail_keeps_the_aspect(
    tmp_path: Path, width: int, height: int, max_width: int, expected: tuple[int, int]
) -> None:
    video, thumb = tmp_path / "v.mp4", tmp_path / "t.jpg"
    render_simulation(video, prompt=PROMPT, duration_s=2, width=width, height=height, fps=8)
    make_thumbnail(video, thumb, max_width=max_width)
    with Image.open(thumb) as image:
        assert image.format == "JPEG"
        assert image.size == expected


def test_thumbnail_of_a_short_clip(tmp_path: Path) -> None:
    video, thumb = tmp_path / "v.mp4", tmp_path / "t.jpg"
    render_simulation(video, prompt="short", duration_s=1, width=320, height=180, fps=6)
    make_thumbnail(video, thumb)
    with Image.open(thumb) as image:
        assert image.size == (320, 180)


def test_thumbnail_refuses_garbage(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x01not a video" * 100)
    with pytest.raises(NotAVideo):
        make_thumbnail(garbage, tmp_path / "t.jpg")


# ------------------------------------------------------------------ refusals


def _image_file(tmp_path: Path, fmt: str) -> Path:
    path = tmp_path / f"picture.{fmt.lower()}"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(path, format=fmt)
    return path


def _audio_only(tmp_path: Path) -> Path:
    path = tmp_path / "audio.m4a"
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("aac", rate=44100)
        for index in range(20):
            frame = av.AudioFrame(format="fltp", layout="mono", samples=1024)
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
            frame.sample_rate = 44100
            frame.pts = index * 1024
            frame.time_base = Fraction(1, 44100)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def test_probe_refuses_garbage_and_empty(tmp_path: Path) -> None:
    garbage, empty = tmp_path / "garbage.mp4", tmp_path / "empty.mp4"
    garbage.write_bytes(bytes(range(256)) * 40)
    empty.write_bytes(b"")
    for path in (garbage, empty):
        with pytest.raises(NotAVideo):
            probe(path)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP", "BMP"])
def test_probe_refuses_images(tmp_path: Path, fmt: str) -> None:
    with pytest.raises(NotAVideo, match="image"):
        probe(_image_file(tmp_path, fmt))


def test_probe_refuses_audio_only(tmp_path: Path) -> None:
    with pytest.raises(NotAVideo, match="no video stream"):
        probe(_audio_only(tmp_path))


def test_probe_refuses_a_truncated_header(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    render_simulation(video, prompt="cut", duration_s=1, width=320, height=240, fps=8)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(video.read_bytes()[:600])
    with pytest.raises(NotAVideo):
        probe(cut)


def test_probe_error_does_not_leak_the_path(tmp_path: Path) -> None:
    garbage = tmp_path / "secret-location.mp4"
    garbage.write_bytes(b"\xff" * 4096)
    with pytest.raises(NotAVideo) as caught:
        probe(garbage)
    assert "secret-location" not in str(caught.value)


def test_probe_of_a_missing_file_is_a_bug_not_bad_media(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        probe(tmp_path / "missing.mp4")


def test_probe_reads_the_fake_upstreams_sample(tmp_path: Path) -> None:
    from vidgate.testing.fake import sample_mp4

    path = tmp_path / "sample.mp4"
    path.write_bytes(sample_mp4(2))
    info = probe(path)
    assert (info.width, info.height, info.codec) == (320, 240, "h264")
    assert abs(info.duration_s - 2) <= 1 / 12
    assert info.bytes == len(sample_mp4(2))
