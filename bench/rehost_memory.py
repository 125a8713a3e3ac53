"""Re-hosting a large upstream output: memory stays flat, and how fast it goes.

    python bench/rehost_memory.py [--sizes 64,1024] [--cache-dir DIR]

A real, playable H.264 MP4 of each size (MiB) is made once and cached (``--cache-dir``,
default ``$TMPDIR/vidgate-bench-cache``): 640x360 frames of noise, encoded losslessly
as all-keyframe H.264, then repeated packet by packet until the file is big enough
(1 GiB is about 1,950 frames: an 81 s clip at ~105 Mbit/s). A plain ``http.server``
process serves the folder on a loopback port.

Each size is then re-hosted in a FRESH child process through the worker's own path:
a live job is created (hold placed) and left in ``fetching`` with the file's URL as
its fal output; ``Worker.drain`` leases it and runs ``Worker._fetch``, which streams
the download to a temporary file through ``FalAdapter.stream_output``, probes it with
PyAV, makes a thumbnail, copies it into ``LocalStorage`` and captures the hold. The
child samples its own RSS every 20 ms; peak RSS is the kernel's high-water mark
(VmHWM). A flat profile means the peak does not grow with the file size.

For reference the table also shows a plain ``httpx`` streaming download of the same
file to nowhere (the ceiling of the server and loopback link on this machine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx
from _common import (
    free_port,
    machine,
    make_key,
    print_machine,
    print_table,
    proc_sample,
    process,
    scratch_database,
    temp_folder,
    wait_http,
    write_json,
)

WIDTH, HEIGHT, FPS = 640, 360, 24
UNIQUE_FRAMES = 48  # encoded once, then repeated


# ================================================================ the test file


def large_mp4(folder: Path, mib: int) -> Path:
    """A playable MP4 of at least ``mib`` MiB in ``folder`` (made once, then reused)."""
    path = folder / f"large-{mib}MiB.mp4"
    if path.exists():
        return path
    import av

    folder.mkdir(parents=True, exist_ok=True)
    seed = folder / "seed.mp4"
    if not seed.exists():
        with av.open(str(seed), mode="w", format="mp4") as out:
            stream = out.add_stream("libx264", rate=FPS)
            stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
            stream.codec_context.time_base = Fraction(1, FPS)
            stream.options = {"preset": "ultrafast", "qp": "0", "g": "1", "bf": "0"}
            for index in range(UNIQUE_FRAMES):
                frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
                for plane in frame.planes:
                    plane.update(os.urandom(plane.buffer_size))
                frame.pts = index
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
    target = mib * 2**20
    partial = path.with_suffix(".part")
    with av.open(str(seed)) as source:
        template = source.streams.video[0]
        packets = [(bytes(p), p.is_keyframe) for p in source.demux(template) if p.size]
        with av.open(str(partial), mode="w", format="mp4") as out:
            stream = out.add_stream_from_template(template)
            written, index = 0, 0
            while written < target:
                data, key = packets[index % len(packets)]
                packet = av.Packet(data)
                packet.stream = stream
                packet.time_base = Fraction(1, FPS)
                packet.pts = packet.dts = index
                packet.duration = 1
                packet.is_keyframe = key
                out.mux(packet)
                written += len(data)
                index += 1
    partial.replace(path)
    return path


# ===================================================================== the child


def _sampler(stop: threading.Event, samples: list[tuple[float, float]]) -> None:
    start = time.monotonic()
    while not stop.is_set():
        sample = proc_sample()
        if sample is not None:
            samples.append((time.monotonic() - start, sample.rss_mib))
        stop.wait(0.02)


async def child(config: dict[str, Any]) -> dict[str, Any]:
    """Re-host one file through Worker._fetch in this (fresh) process."""
    import logging

    from vidgate.clock import utcnow
    from vidgate.config import Settings
    from vidgate.domain.request import GenerationRequest
    from vidgate.domain.states import JobStatus
    from vidgate.runtime.services import build_runtime
    from vidgate.store import jobs as job_store

    logging.basicConfig(level=logging.WARNING)
    folder = Path(config["folder"])
    settings = Settings(
        data_dir=folder / "data",
        database_url=config["database_url"],
        secret_key="bench-secret",
        log_level="warning",
        max_output_bytes=4 * 2**30,
    )
    env = {"VIDGATE_FAL_API_KEY": "fal-key", "VIDGATE_FAL_BASE_URL": config["server"]}
    runtime = await build_runtime(settings, env=env)
    svc = runtime.services
    _secret, principal = await make_key(config["database_url"], "rehost", mode="live", credit_usd="100")
    request = GenerationRequest(model="kling-3-pro", prompt="a large output", duration_s=5)
    job = (await svc.jobs.submit(principal, request, dialect="native")).job
    output = {"url": config["url"], "headers": {}, "content_type": "video/mp4", "kind": "video"}
    now = utcnow()
    async with svc.db.transaction() as conn:
        await job_store.transition(conn, job.id, JobStatus.SUBMITTING, now=now)
        await job_store.transition(
            conn, job.id, JobStatus.RUNNING, now=now, provider="fal", upstream_id="large", upstream_state={}
        )
        await job_store.transition(conn, job.id, JobStatus.FETCHING, now=now, outputs=[output], run_at=now)

    # time the download part of the fetch (the stream ends when the last byte is written)
    adapter = svc.pool.adapter("fal")
    plain_stream = adapter.stream_output
    marks: dict[str, float] = {}

    async def stream_output(out: Any) -> Any:
        marks["download_start"] = time.perf_counter()
        async for chunk in plain_stream(out):
            yield chunk
        marks["download_end"] = time.perf_counter()

    adapter.stream_output = stream_output
    baseline = proc_sample()
    stop, samples = threading.Event(), []
    sampler = threading.Thread(target=_sampler, args=(stop, samples), daemon=True)
    sampler.start()
    start = time.perf_counter()
    await runtime.worker.drain(timeout_s=float(config["timeout_s"]))
    elapsed = time.perf_counter() - start
    stop.set()
    sampler.join()
    end = proc_sample()
    done = await svc.jobs.get(principal, job.id)
    stored = (folder / "data" / "media" / done.media.video_key).stat().st_size if done.media else 0
    await runtime.close()
    return {
        "status": done.status.value,
        "error": done.error_message,
        "stored_bytes": stored,
        "seconds": elapsed,
        "download_s": marks.get("download_end", float("nan")) - marks.get("download_start", float("nan")),
        "baseline_rss_mib": baseline.rss_mib if baseline else float("nan"),
        "peak_rss_mib": end.peak_rss_mib if end else float("nan"),
        "sampled_max_rss_mib": max((rss for _, rss in samples), default=float("nan")),
        "rss_samples": len(samples),
    }


async def child_main(config: dict[str, Any]) -> None:
    async with scratch_database("sqlite", Path(config["folder"])) as url:
        result = await child({**config, "database_url": url})
    print(json.dumps(result), flush=True)


# ==================================================================== the parent


def raw_download(url: str) -> float:
    """Seconds for a plain httpx streaming download of ``url``, bytes thrown away."""
    start = time.perf_counter()
    with httpx.stream("GET", url, timeout=120) as response:
        response.raise_for_status()
        for _ in response.iter_bytes(256 * 1024):
            pass
    return time.perf_counter() - start


def run_size(mib: int, path: Path, server: str, timeout_s: float) -> dict[str, Any]:
    url = f"{server}/{path.name}"
    size = path.stat().st_size
    raw = raw_download(url)
    with temp_folder("vg-bench-rehost-") as folder:
        config = {"folder": str(folder), "server": server, "url": url, "timeout_s": timeout_s}
        done = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps(config)],
            capture_output=True,
            text=True,
            timeout=timeout_s + 120,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"the re-host child failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    mb = size / 1e6
    result.update(
        size_mib=size / 2**20,
        file_bytes=size,
        mb_per_s=mb / result["seconds"],
        download_mb_per_s=mb / result["download_s"],
        raw_mb_per_s=mb / raw,
        growth_mib=result["peak_rss_mib"] - result["baseline_rss_mib"],
        intact=result["stored_bytes"] == size,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="64,1024", help="file sizes in MiB, comma-separated")
    parser.add_argument(
        "--cache-dir",
        default=str(Path(tempfile.gettempdir()) / "vidgate-bench-cache"),
        help="where the generated MP4s are kept between runs",
    )
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds allowed per re-host")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(child_main(json.loads(args.child)))
        return
    info = machine()
    print_machine(info)
    cache = Path(args.cache_dir)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    files = {}
    for mib in sizes:
        began = time.perf_counter()
        files[mib] = large_mp4(cache, mib)
        print(f"   {files[mib]} ready ({time.perf_counter() - began:.1f} s)", flush=True)
    port = free_port()
    server = f"http://127.0.0.1:{port}"
    results = []
    command = [
        sys.executable,
        "-m",
        "http.server",
        str(port),
        "--bind",
        "127.0.0.1",
        "--directory",
        str(cache),
    ]
    with process(command) as http_server:
        wait_http(f"{server}/", timeout_s=30, child=http_server)
        for mib in sizes:
            print(f"   re-hosting {mib} MiB ...", flush=True)
            result = run_size(mib, files[mib], server, args.timeout)
            print(
                f"   {mib} MiB: {result['status']}, {result['mb_per_s']:.0f} MB/s, "
                f"peak RSS {result['peak_rss_mib']:.0f} MiB",
                flush=True,
            )
            results.append(result)
    print_table(
        "Re-host through Worker._fetch into LocalStorage (download, probe, thumbnail, store, capture)",
        [
            "file MiB",
            "status",
            "intact",
            "total s",
            "MB/s",
            "download MB/s",
            "plain httpx MB/s",
            "RSS before MiB",
            "peak RSS MiB",
            "growth MiB",
        ],
        [
            [
                r["size_mib"],
                r["status"],
                "yes" if r["intact"] else "NO",
                r["seconds"],
                r["mb_per_s"],
                r["download_mb_per_s"],
                r["raw_mb_per_s"],
                r["baseline_rss_mib"],
                r["peak_rss_mib"],
                r["growth_mib"],
            ]
            for r in results
        ],
    )
    write_json(args.json, {"machine": info, "args": vars(args), "results": results})


if __name__ == "__main__":
    main()
