"""Scenario ``litellm``: vidgate and LiteLLM's proxy on one fake OpenAI-videos upstream.

    .venv/bin/python bench/vs_litellm.py [--db sqlite]     (or bench/run.py --only litellm)

One ``vidgate fake-upstream openai`` process (jobs take 60 s, so polls see
``in_progress``) serves both gateways:

- vidgate as a user starts it, ``vidgate serve`` (API + worker in one command), on
  SQLite, with the ``openai`` provider pointed at the fake and a funded live key;
  a submit is accepted and queued, the worker submits it upstream; a poll reads the
  store;
- LiteLLM ``litellm[proxy]==1.108.7`` in its own virtualenv (made on first use in
  ``$TMPDIR/vidgate-bench-litellm``; ``certifi`` is overridden to 2026.10.18 so that
  it resolves), ``litellm --config`` with a master key and one model ``sora-2`` on
  the fake; a submit and a poll are each forwarded to the upstream.

Baseline: the same poll sent to the fake directly. Figures: req/s and p50/p99 at 1
and 16 connections, server CPU per request, and RSS after the run.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import (
    bench_env,
    free_port,
    make_key,
    proc_sample,
    process,
    scratch_database,
    vidgate_command,
    wait_http,
)
from _loadgen import LoadResult, hammer, multipart, request_bytes
from _scenario import Context, Table

NAME = "litellm"
LITELLM = "litellm[proxy]==1.108.7"
VENV = Path(tempfile.gettempdir()) / "vidgate-bench-litellm"
UPSTREAM_KEY = "test-key"
MASTER_KEY = "sk-bench-master"
BODY = {"model": "sora-2", "prompt": "a paper boat on a river at dusk", "seconds": "4"}
HEADERS = [
    "gateway",
    "path",
    "clients",
    "requests",
    "req/s",
    "p50 ms",
    "p99 ms",
    "CPU ms/req",
    "RSS MiB",
    "answers",
]


def ensure_litellm() -> Path:
    """The ``litellm`` command in its own virtualenv (installed from PyPI on first use)."""
    command = VENV / "bin" / "litellm"
    if command.exists():
        return command
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "uv==0.13.8"], check=True)
    overrides = VENV / "overrides.txt"
    overrides.write_text("certifi==2026.10.18\n")
    install = ["pip", "install", "--python", str(VENV / "bin" / "python"), "--override", str(overrides)]
    subprocess.run([str(VENV / "bin" / "uv"), *install, LITELLM], check=True)
    return command


def litellm_config(folder: Path, upstream: str) -> Path:
    config = folder / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: sora-2\n"
        "    litellm_params:\n"
        "      model: openai/sora-2\n"
        f"      api_base: {upstream}/v1\n"
        f"      api_key: {UPSTREAM_KEY}\n"
        "general_settings:\n"
        f"  master_key: {MASTER_KEY}\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
    )
    return config


def row(gateway: str, path: str, result: LoadResult) -> list[Any]:
    return [
        gateway,
        path,
        result.concurrency,
        result.requests,
        result.rps,
        result.p(50),
        result.p(99),
        result.cpu_ms_per_request,
        result.server_rss_mib,
        " ".join(f"{k}x{v}" for k, v in sorted(result.statuses.items())),
    ]


async def measure(
    ctx: Context,
    name: str,
    port: int,
    pid: int | None,
    key: str,
    *,
    submit: bool = True,
    multipart_create: bool = False,
) -> list[Any]:
    host = f"127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {key}"}
    if multipart_create:  # the upstream itself takes creates as the openai SDK sends them
        form, content_type = multipart(BODY)
        create = request_bytes(
            "POST", "/v1/videos", host=host, headers=auth, body=form, content_type=content_type
        )
    else:
        create = request_bytes("POST", "/v1/videos", host=host, headers=auth, body=BODY)
    first = await hammer("127.0.0.1", port, lambda _: create, concurrency=1, seconds=30, max_requests=1)
    if first.statuses.get(200) != 1:
        raise RuntimeError(f"{name}: a create answered {first.statuses}: {first.last_body[:300]!r}")
    video_id = json.loads(first.last_body)["id"]
    poll = request_bytes("GET", f"/v1/videos/{video_id}", host=host, headers=auth)
    await hammer("127.0.0.1", port, lambda _: poll, concurrency=4, seconds=1)
    rows = []
    for path, make in (("poll", poll), ("submit", create)) if submit else (("poll", poll),):
        for clients in (1, 16):
            result = await hammer(
                "127.0.0.1",
                port,
                lambda _, m=make: m,
                concurrency=clients,
                seconds=ctx.seconds,
                server_pid=pid,
            )
            ctx.log(f"{name} {path} c={clients}: {result.summary()}")
            ctx.raw.setdefault(NAME, []).append({"gateway": name, "path": path, **result.summary()})
            rows.append(row(name, path, result))
    return rows


async def run(ctx: Context) -> list[Table]:
    litellm = await asyncio.to_thread(ensure_litellm)
    folder = ctx.folder
    fake_port, vg_port, ll_port = free_port(), free_port(), free_port()
    upstream = f"http://127.0.0.1:{fake_port}"
    fake_cmd = vidgate_command("fake-upstream", "openai", "--port", str(fake_port), "--latency", "60")
    fake_cmd += ["--api-key", UPSTREAM_KEY]
    rows: list[list[Any]] = []
    with process(fake_cmd, env=ctx.server_env(None), log=folder / "fake.log") as fake:
        wait_http(f"{upstream}/v1/videos/none", timeout_s=180, child=fake)
        # the baseline: the upstream itself
        rows += await measure(
            ctx, "fake upstream (direct)", fake_port, fake.pid, UPSTREAM_KEY, multipart_create=True
        )
        async with scratch_database("sqlite", folder) as url:
            key, _ = await make_key(url, "bench-live", mode="live", credit_usd="100000000")
            env = bench_env(
                folder / "data",
                url,
                VIDGATE_RATE_LIMIT_PER_MINUTE="0",
                VIDGATE_OPENAI_API_KEY=UPSTREAM_KEY,
                VIDGATE_OPENAI_BASE_URL=upstream,
            )
            serve = vidgate_command("serve", "--port", str(vg_port))
            with process(serve, env=ctx.server_env(env), log=folder / "vidgate.log") as server:
                wait_http(f"http://127.0.0.1:{vg_port}/healthz", timeout_s=90, child=server)
                rows += await measure(ctx, "vidgate serve", vg_port, server.pid, key)
                peak = proc_sample(server.pid)
                ctx.log(f"vidgate peak RSS {peak.peak_rss_mib if peak else float('nan'):.0f} MiB")
        config = litellm_config(folder, upstream)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VIDGATE_", "PYTHONPATH"))}
        env.update(LITELLM_LOG="ERROR", LITELLM_TELEMETRY="False", DISABLE_SCHEMA_UPDATE="true")
        args = [str(litellm), "--config", str(config), "--host", "127.0.0.1", "--port", str(ll_port)]
        with process(args, env=env, log=folder / "litellm.log") as proxy:
            wait_http(f"http://127.0.0.1:{ll_port}/health/liveliness", timeout_s=240, child=proxy)
            rows += await measure(ctx, "litellm proxy", ll_port, proxy.pid, MASTER_KEY)
            peak = proc_sample(proxy.pid)
            ctx.log(f"litellm peak RSS {peak.peak_rss_mib if peak else float('nan'):.0f} MiB")
    return [Table("vidgate and LiteLLM on one fake OpenAI-videos upstream", HEADERS, rows)]


if __name__ == "__main__":
    import _scenario

    asyncio.run(_scenario.main([sys.modules[__name__]], [*sys.argv[1:], "--only", NAME]))
