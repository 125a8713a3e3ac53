"""The all-in-one ``vidgate serve``'s worker, run as a child process.

In one process the worker's re-hosting (download, probe, thumbnail, store) shares
the event loop and the GIL with the API, and every poll waits behind it. So
``vidgate serve`` serves HTTP in its own process and starts ``vidgate worker`` as a
child on the same settings (same environment, same data folder):

- the child dies with its parent: it watches its parent id and stops (draining its
  in-flight steps) when the parent is gone, however the parent ended;
- SIGTERM still drains both: the parent drains its requests (uvicorn), then sends
  SIGTERM to the child and waits for it to hand back or finish its steps;
- links in webhooks use the address the parent listens on (``LINK_BASE_ENV``), as
  the in-process worker learnt it from requests.

It is opt-in for now, ``VIDGATE_SERVE_WORKER=process``; the default, ``inline``, keeps
the worker in the API process as before. A child needs its own start-up (imports,
migrations check: 2 s on a quiet machine, 15-25 s on the loaded 2-core benchmark
machine), during which test-mode jobs of a just-started ``vidgate serve`` wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

PARENT_ENV = "VIDGATE_PARENT_PID"  # the child stops when its parent is no longer this pid
LINK_BASE_ENV = "VIDGATE_SERVE_BASE_URL"  # where the parent serves (for links in webhooks)
MODE_ENV = "VIDGATE_SERVE_WORKER"  # "inline" (default) or "process"
DRAIN_TIMEOUT_S = 45.0  # the worker's own drain is bounded at 30 s per loop


def wanted(environ: dict[str, str] | None = None) -> bool:
    """Whether ``vidgate serve`` runs its worker as a child process (``MODE_ENV=process``)."""
    return (environ if environ is not None else os.environ).get(MODE_ENV, "inline") == "process"


class ChildWorker:
    """``vidgate worker`` as a child of this process (see the module docstring)."""

    def __init__(self, *, data_dir: Path | None, base_url: str) -> None:
        self.data_dir = data_dir
        self.base_url = base_url
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [sys.executable, "-m", "vidgate", "worker"]
        if self.data_dir is not None:
            args += ["--data-dir", str(self.data_dir)]
        env = {**os.environ, PARENT_ENV: str(os.getpid()), LINK_BASE_ENV: self.base_url}
        # its log lines go to our stderr; its stdout (a banner) is not the parent's to print
        self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
        )
        log.info("worker started as process %d", self.process.pid)

    def stop(self, timeout_s: float = DRAIN_TIMEOUT_S) -> None:
        """SIGTERM, wait for its drain (bounded), then SIGKILL."""
        child = self.process
        if child is None or child.poll() is not None:
            return
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("the worker did not stop within %.0f s; killing it", timeout_s)
            child.kill()
            child.wait(timeout=10)


async def watch_parent(stop: Callable[[], None], interval_s: float = 0.5) -> None:
    """In the child: call ``stop`` once the parent named in ``PARENT_ENV`` is gone."""
    expected = os.environ.get(PARENT_ENV)
    if not expected or not expected.isdigit():
        return
    while os.getppid() == int(expected):  # noqa: ASYNC110 (no event tells of a parent's death)
        await asyncio.sleep(interval_s)
    log.warning("the serving process %s is gone; the worker stops", expected)
    stop()


def learnt_base_url() -> str | None:
    """The parent's address, for the child's links (None outside a child)."""
    with contextlib.suppress(KeyError):
        return os.environ[LINK_BASE_ENV] or None
    return None
