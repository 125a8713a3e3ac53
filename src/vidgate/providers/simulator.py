"""The built-in simulator: what every test-mode job runs on.

It behaves like an upstream (queueing, progress, latency, failures) and renders a
real H.264 MP4 of the requested duration and frame size, showing the prompt over
moving graphics and labelled as a simulation. It keeps no state of its own: the
timeline lives in the ``UpstreamRef``, so any worker process can poll any job.

Prompt switches (test mode only, since only test keys reach the simulator):
``simulate:fail`` ends the job failed with a reason; ``simulate:hang`` never
finishes, so the job's deadline expires it; ``simulate:policy`` is refused at
submit as a content-policy violation.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from vidgate.domain.frames import frame_size
from vidgate.domain.request import GenerationRequest
from vidgate.providers.adapter import AdapterBase
from vidgate.providers.base import (
    Capability,
    ProviderContext,
    Route,
    SubmitAttempt,
    UpstreamContentPolicy,
    UpstreamOutput,
    UpstreamRef,
    UpstreamRejected,
    UpstreamStatus,
)

SIMULATOR_ROUTE = Route(provider="simulator", model="vidgate-simulator")
FAIL_REASON = "simulated failure: the prompt asked for simulate:fail"
CHUNK = 256 * 1024


class SimulatorAdapter(AdapterBase):
    name = "simulator"
    capabilities = frozenset({Capability.CANCEL, Capability.IMAGE_INPUT, Capability.AUDIO})

    def __init__(self, ctx: ProviderContext) -> None:
        super().__init__(ctx)
        self.ctx = ctx
        self.latency_s = float(ctx.options.get("latency_s", "4"))

    async def submit(self, req: GenerationRequest, route: Route, attempt: SubmitAttempt) -> UpstreamRef:
        if "simulate:policy" in req.prompt:
            raise UpstreamContentPolicy("simulated content-policy refusal (simulate:policy)")
        if "simulate:reject" in req.prompt:
            raise UpstreamRejected("simulated upstream rejection (simulate:reject)")
        width, height = frame_size(req.resolution, req.aspect_ratio)
        state: dict[str, Any] = {
            "t0": time.time(),
            "latency_s": self.latency_s,
            "fail": "simulate:fail" in req.prompt,
            "hang": "simulate:hang" in req.prompt,
            "seconds": req.duration_s or 5,
            "width": width,
            "height": height,
            "prompt": req.prompt[:500],
            "model": req.model,
            "outputs": max(1, min(8, int(route.params.get("outputs", 1)))),
        }
        return UpstreamRef(id=f"sim-{int(state['t0'] * 1000)}-{os.getpid()}", request_id=None, state=state)

    async def poll(self, ref: UpstreamRef) -> UpstreamStatus:
        state = ref.state
        latency = float(state["latency_s"])
        elapsed = time.time() - float(state["t0"])
        fraction = 1.0 if latency <= 0 else elapsed / latency
        if state.get("hang"):
            return UpstreamStatus("running", progress=min(90, int(fraction * 50)), raw_status="hanging")
        if fraction < 0.15:
            return UpstreamStatus(
                "queued",
                progress=0,
                eta_s=max(0.0, latency - elapsed),
                queue_position=1,
                raw_status="queued",
            )
        if fraction < 1.0:
            return UpstreamStatus(
                "running",
                progress=int(fraction * 100),
                eta_s=latency - elapsed,
                raw_status="rendering",
            )
        if state.get("fail"):
            return UpstreamStatus("failed", error=UpstreamRejected(FAIL_REASON), raw_status="failed")
        takes = int(state.get("outputs", 1))
        outputs = tuple(
            UpstreamOutput(
                url="simulator://render?"
                + urlencode(
                    {k: state[k] for k in ("seconds", "width", "height", "model")}
                    | {"prompt": state["prompt"] + (f" (take {take + 1} of {takes})" if takes > 1 else "")}
                ),
                content_type="video/mp4",
            )
            for take in range(takes)
        )
        return UpstreamStatus("succeeded", progress=100, outputs=outputs, raw_status="done")

    async def cancel(self, ref: UpstreamRef) -> None:
        return None

    async def stream_output(self, output: UpstreamOutput) -> AsyncIterator[bytes]:
        params = {k: v[0] for k, v in parse_qs(urlparse(output.url).query).items()}
        spec: dict[str, Any] = {
            "prompt": params.get("prompt", ""),
            "duration_s": int(params.get("seconds", "5")),
            "width": int(params.get("width", "1280")),
            "height": int(params.get("height", "720")),
        }
        from vidgate.media.render import render_simulation  # PyAV: only where a video is made

        with tempfile.TemporaryDirectory(prefix="vidgate-sim-") as folder:
            path = Path(folder) / "simulation.mp4"
            await asyncio.to_thread(
                render_simulation,
                path,
                label=f"SIMULATION · {params.get('model', '')} · vidgate test mode",
                **spec,
            )
            with path.open("rb") as handle:
                while chunk := await asyncio.to_thread(handle.read, CHUNK):
                    yield chunk
