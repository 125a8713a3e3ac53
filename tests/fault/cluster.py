"""A vidgate deployment as an operator runs it: a fal fake upstream, 2 API processes
(``vidgate serve --no-worker``) and 2 workers (``vidgate worker``), all on one
PostgreSQL database, one Redis and one S3 bucket, configured by ``VIDGATE_*`` only."""

from __future__ import annotations

import asyncio
import functools
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.fault.procs import VIDGATE, Child, base_env, free_port, http_ok, log_says, tail
from vidgate.bootstrap import first_run
from vidgate.config import Settings as VidgateSettings

FAL_KEY = "fault-fal-key"
# A catalog model whose first (and only usable) route is fal; any length from 1 to 30 s.
MODEL = "pixverse/pixverse-v4.5-t2v"
SECONDS = 5


@functools.cache
def fake_supports_chaos() -> bool:
    """Whether ``vidgate fake-upstream`` knows ``--chaos`` (the providers engineer adds it)."""
    help_text = subprocess.run(
        [*VIDGATE, "fake-upstream", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=base_env(COLUMNS="240", TERM="dumb", NO_COLOR="1"),
        check=False,
    ).stdout
    return "--chaos" in help_text


@dataclass
class Settings:
    """What a scenario chooses about the deployment (everything else is fixed here)."""

    database_url: str
    storage_url: str
    redis_url: str
    fake_latency_s: float = 1.5
    chaos: str | None = None  # e.g. "5xx=0.2,429=0.05,slow=0.1,malformed=0.05"
    slow_s: float = 40.0
    seed: int = 11
    apis: int = 2
    workers: int = 2
    env: dict[str, str] = field(default_factory=dict)  # extra VIDGATE_* settings


@dataclass
class Deployment:
    settings: Settings
    run_dir: Path
    fake: Child | None = None
    apis: list[Child] = field(default_factory=list)
    workers: list[Child] = field(default_factory=list)
    api_urls: list[str] = field(default_factory=list)
    fake_url: str = ""
    secret: str = ""  # the live API key the clients use
    account: str = "fault-clients"

    # ------------------------------------------------------------------ set-up

    def env(self) -> dict[str, str]:
        s = self.settings
        defaults = {
            "VIDGATE_DATA_DIR": str(self.run_dir / "data"),
            "VIDGATE_DATABASE_URL": s.database_url,
            "VIDGATE_STORAGE_URL": s.storage_url,
            "VIDGATE_REDIS_URL": s.redis_url,
            "VIDGATE_SECRET_KEY": "fault-suite-secret",
            "VIDGATE_LOG_LEVEL": "info",
            "VIDGATE_FAL_API_KEY": FAL_KEY,
            "VIDGATE_FAL_BASE_URL": self.fake_url,
            "VIDGATE_URL_ALLOWLIST": "127.0.0.1",
            "VIDGATE_RATE_LIMIT_PER_MINUTE": "0",
            "VIDGATE_JOB_TIMEOUT_S": "60",
            "VIDGATE_LEASE_S": "10",  # a killed worker's jobs come back within 10 s
            "VIDGATE_WORKER_POLL_INTERVAL_S": "0.25",
            "VIDGATE_UPSTREAM_TIMEOUT_S": "5",
        }
        return base_env(**{**defaults, **s.env})  # a scenario's own settings win

    def start(self) -> None:
        """Start everything at once (imports are most of a start-up) and wait until all are ready."""
        (self.run_dir / "data").mkdir(parents=True, exist_ok=True)
        self._start_fake()
        keys = subprocess.Popen(
            [*VIDGATE, "keys", "create", "--account", self.account, "--credit", "1000"],
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        # The first-run demo account is made here, once, so that no two APIs race to make it.
        asyncio.run(first_run(self._settings()))
        for index in range(self.settings.apis):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            child = Child(
                f"api{index}",
                [*VIDGATE, "serve", "--no-worker", "--port", str(port)],
                env=self.env(),
                log_dir=self.run_dir,
                ready=http_ok(f"{url}/healthz"),
            )
            self.apis.append(child.start(wait=False))
            self.api_urls.append(url)
        for index in range(self.settings.workers):
            self.workers.append(self.new_worker(f"worker{index}").start(wait=False))
        output, _ = keys.communicate(timeout=120)
        if keys.returncode != 0:
            raise RuntimeError(f"vidgate keys create failed:\n{output}")
        self.secret = output.strip().splitlines()[-1]
        assert self.secret.startswith("vg_live_"), output
        for child in self.children():
            child.wait_ready(timeout_s=120)

    def _settings(self) -> VidgateSettings:
        s = self.settings
        return VidgateSettings(
            data_dir=self.run_dir / "data",
            database_url=s.database_url,
            storage_url=s.storage_url,
            secret_key=self.env()["VIDGATE_SECRET_KEY"],  # every process shares the server secret
        )

    def new_worker(self, name: str) -> Child:
        return Child(
            name,
            [*VIDGATE, "worker"],
            env=self.env(),
            log_dir=self.run_dir,
            ready=log_says("vidgate worker "),
        )

    def _start_fake(self) -> None:
        s = self.settings
        port = free_port()
        self.fake_url = f"http://127.0.0.1:{port}"
        argv = [*VIDGATE, "fake-upstream", "fal", "--port", str(port), "--api-key", FAL_KEY]
        argv += ["--latency", str(s.fake_latency_s)]
        if s.chaos:
            argv += ["--chaos", s.chaos, "--slow-s", str(s.slow_s), "--seed", str(s.seed)]
        self.fake = Child(
            "fake-fal",
            argv,
            env=base_env(),
            log_dir=self.run_dir,
            ready=http_ok(f"{self.fake_url}/.well-known/jwks.json"),
        ).start(wait=False)

    # --------------------------------------------------------------- teardown

    def children(self) -> list[Child]:
        return [c for c in (*self.apis, *self.workers, self.fake) if c is not None]

    def close(self) -> None:
        """Stop every process (TERM, then KILL); called even when the scenario failed."""
        for child in [*self.workers, *self.apis]:
            child.stop(timeout_s=15)
        if self.fake is not None:
            self.fake.stop(timeout_s=10)

    def log_tails(self, lines: int = 30) -> str:
        parts = []
        for child in self.children():
            for path in child.logs:
                parts.append(f"----- {path.name} (last {lines} lines)\n{tail(path, lines)}")
        return "\n".join(parts)

    # ------------------------------------------------------------- the fake

    def upstream_submissions(self) -> tuple[list[dict[str, Any]], bool]:
        """Every submission the fake accepted, and whether it knows their status.

        ``GET /__fake/submissions`` gives ``{upstream_id, prompt, reference,
        idempotency_key, status, canceled}`` each; a fake without it is read through
        ``GET /__fake__/jobs`` (id -> body: prompts only, no status).
        """
        with httpx.Client(base_url=self.fake_url, timeout=10) as client:
            answer = client.get("/__fake/submissions")
            if answer.status_code == 200:
                return list(answer.json()), True
            jobs = client.get("/__fake__/jobs").raise_for_status().json()
        rows = [
            {"upstream_id": job_id, "prompt": body.get("prompt"), "status": None, "canceled": None}
            for job_id, body in jobs.items()
        ]
        return rows, False
