"""One scenario's run: a deployment on fresh storage, the client load in a background
thread (its own event loop), and the figures at the end."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text

from tests.fault import figures as figures_module
from tests.fault.clients import Load
from tests.fault.cluster import Deployment
from tests.fault.procs import Child, wait_until
from vidgate.store.engine import Database


class Background:
    """``load.run()`` on its own event loop in a thread; ``join`` re-raises its error."""

    def __init__(self, load: Load) -> None:
        self.load = load
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name="fault-clients", daemon=True)

    def _main(self) -> None:
        try:
            asyncio.run(self.load.run())
        except BaseException as exc:
            self.error = exc

    def start(self) -> Background:
        self.thread.start()
        return self

    @property
    def done(self) -> bool:
        return not self.thread.is_alive()

    def join(self, timeout_s: float) -> None:
        self.thread.join(timeout_s)
        if self.thread.is_alive():
            raise TimeoutError(f"the clients did not finish within {timeout_s:.0f} s")
        if self.error is not None:
            raise self.error


@dataclass
class Run:
    name: str
    dir: Path
    database_url: str
    deployment: Deployment
    started: float = field(default_factory=time.monotonic)
    startup_s: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)
    record: Callable[[str, dict[str, Any]], None] | None = None

    def wait_accepted(self, load: Load, count: int, *, timeout_s: float) -> bool:
        """Until ``count`` jobs are accepted, or ``timeout_s`` passed (then False: a
        gateway that accepts slowly still gets its fault, at that moment)."""
        try:
            wait_until(f"{count} jobs accepted", lambda: load.accepted >= count, timeout_s=timeout_s)
        except TimeoutError:
            return False
        return True

    def kill_worker_mid_submit(self, worker: Child, *, within_s: float = 10) -> str:
        """SIGKILL ``worker`` at a moment it holds a lease on a job being submitted
        (the window where an upstream job can exist that we have no record of);
        after ``within_s`` without such a moment, kill it anyway. Says which it was."""
        pid = worker.pid

        async def watch() -> str:
            db = Database(self.database_url, null_pool=True)
            try:
                async with db.engine.connect() as conn:
                    deadline = time.monotonic() + within_s
                    while time.monotonic() < deadline:
                        found = (
                            await conn.execute(
                                text(
                                    "SELECT id FROM jobs WHERE status = 'submitting' AND lease_owner LIKE :owner"
                                ),
                                {"owner": f"%:{pid}:%"},
                            )
                        ).first()
                        await conn.rollback()
                        if found:
                            worker.kill()
                            return f"killed while submitting {found[0]}"
                        await asyncio.sleep(0.01)
            finally:
                await db.dispose()
            worker.kill()
            return "killed (no submit in flight was seen)"

        return asyncio.run(watch())

    def collect(self, load: Load) -> dict[str, Any]:
        self.figures = figures_module.collect(
            self.deployment, load, database_url=self.database_url, wall_s=time.monotonic() - self.started
        )
        self.figures["startup_s"] = round(self.startup_s, 1)
        return self.figures

    def report(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        self.figures.update(extra or {})
        table = figures_module.report(self.name, self.figures, self.dir / f"figures-{self.name}.json")
        print("\n" + table, flush=True)
        if self.record is not None:
            self.record(self.name, self.figures)
        return self.figures


def expect(checks: dict[str, tuple[bool, Any]]) -> None:
    """Fail with every unmet figure at once (name: (holds, what was seen))."""
    unmet = [f"  {name}: saw {seen}" for name, (holds, seen) in checks.items() if not holds]
    if unmet:
        raise AssertionError("figures not met:\n" + "\n".join(unmet))
