"""Child processes for the fault suite: started with a log file, waited on by condition,
killed by their own pid (SIGKILL or SIGTERM), and always reaped.

Nothing here sleeps and hopes: every wait polls a condition against a deadline and
fails with the process's log tail when the deadline passes or the process dies.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

VIDGATE = (sys.executable, "-m", "vidgate")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    what: str, condition: Callable[[], bool], *, timeout_s: float, interval_s: float = 0.05
) -> float:
    """Poll ``condition`` until it holds; returns the seconds it took, or raises after ``timeout_s``."""
    start = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - start
        if time.monotonic() - start > timeout_s:
            raise TimeoutError(f"{what}: not true after {timeout_s:.0f} s")
        time.sleep(interval_s)


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


class Child:
    """One child process and its log; ``start()`` may be called again after it ended."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: dict[str, str],
        log_dir: Path,
        ready: Callable[[Child], bool] | None = None,
        user: str | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.log_dir = log_dir
        self.ready = ready
        self.user = user
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.logs: list[Path] = []

    @property
    def log(self) -> Path:
        return self.logs[-1]

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, *, timeout_s: float = 90, wait: bool = True) -> Child:
        assert not self.alive, f"{self.name} is already running"
        self.starts += 1
        path = self.log_dir / f"{self.name}.{self.starts}.log"
        self.logs.append(path)
        with path.open("wb") as out:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C at the terminal reaches pytest only
            )
        if wait and self.ready is not None:
            self.wait_ready(timeout_s=timeout_s)
        return self

    def wait_ready(self, *, timeout_s: float) -> None:
        assert self.ready is not None

        def up() -> bool:
            if not self.alive:
                raise RuntimeError(f"{self.name} exited before it was ready:\n{tail(self.log)}")
            return self.ready(self) if self.ready else True

        try:
            wait_until(f"{self.name} ready", up, timeout_s=timeout_s, interval_s=0.1)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{tail(self.log)}") from None

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def signal(self, sig: signal.Signals) -> None:
        if self.alive:
            assert self.process is not None
            self.process.send_signal(sig)

    def kill(self, *, timeout_s: float = 10) -> None:
        """SIGKILL, then wait for it to be gone (no goodbye: leases and sockets are left as they are)."""
        self.signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=timeout_s)

    def stop(self, *, timeout_s: float = 20) -> None:
        """SIGTERM, then SIGKILL if it outlives ``timeout_s``."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def http_ok(url: str) -> Callable[[Child], bool]:
    def check(_child: Child) -> bool:
        try:
            return httpx.get(url, timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    return check


def log_says(text: str) -> Callable[[Child], bool]:
    def check(child: Child) -> bool:
        return text in child.log_text()

    return check


def base_env(**values: str) -> dict[str, str]:
    """The parent's environment without any VIDGATE_* setting, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDGATE_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(values)
    return env
