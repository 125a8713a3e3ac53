"""Clients as real ones behave: a bounded pool of tasks, each submitting jobs with an
``Idempotency-Key`` (the same key again on a connection error, a timeout, a 429 or a
5xx, with backoff and jitter, on the other API process), then polling each job until
it ends. Every answer is counted; every 5xx is kept with the time it was seen."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.fault.cluster import MODEL, SECONDS

TERMINAL = frozenset({"succeeded", "failed", "expired", "canceled"})
HUNG_S = 10.0  # an answer slower than this counts as a hung request
MAX_SUBMIT_TRIES = 12


@dataclass
class Answer:
    at: float  # time.monotonic() when the answer (or the error) arrived
    api: int
    method: str
    status: int | None  # None: no HTTP answer (refused, reset, timed out)
    took_s: float
    retry_after: str | None = None
    error: str | None = None


@dataclass
class JobRecord:
    index: int
    prompt: str
    idempotency_key: str
    job_id: str | None = None
    submit_tries: int = 0
    replayed: bool = False
    status: str | None = None  # the last vidgate_status seen
    gave_up: str | None = None  # why the client stopped trying to create it


@dataclass
class Load:
    api_urls: list[str]
    secret: str
    jobs: int
    clients: int = 16
    spread_s: float = 12.0  # job i is submitted no earlier than i * spread_s / jobs after start
    poll_s: float = 1.0
    deadline_s: float = 100.0  # from start: clients stop waiting after this
    label: str = "fault"
    records: list[JobRecord] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0

    def __post_init__(self) -> None:
        run = uuid.uuid4().hex[:8]
        self.records = [
            JobRecord(i, f"{self.label} run {run} job {i}", f"{self.label}-{run}-{i}")
            for i in range(self.jobs)
        ]
        self._next = 0

    # ---------------------------------------------------------------- figures

    @property
    def accepted(self) -> int:
        return sum(1 for r in self.records if r.job_id)

    def server_errors(self) -> Counter[int]:
        return Counter(a.status for a in self.answers if a.status is not None and a.status >= 500)

    def summary(self) -> dict[str, Any]:
        statuses = Counter(str(a.status) if a.status is not None else "no answer" for a in self.answers)
        unavailable = [a for a in self.answers if a.status == 503]
        return {
            "requests": len(self.answers),
            "answers_by_status": dict(sorted(statuses.items())),
            "http_5xx": sum(self.server_errors().values()),
            "http_5xx_by_status": {str(k): v for k, v in sorted(self.server_errors().items())},
            "http_503_with_retry_after": sum(1 for a in unavailable if a.retry_after),
            "http_503_without_retry_after": sum(1 for a in unavailable if not a.retry_after),
            "no_answer": sum(1 for a in self.answers if a.status is None),
            "hung_requests": sum(1 for a in self.answers if a.took_s > HUNG_S),
            "slowest_request_s": round(max((a.took_s for a in self.answers), default=0.0), 2),
            "idempotent_replays": sum(1 for r in self.records if r.replayed),
            "client_gave_up": sum(1 for r in self.records if r.gave_up),
            "client_gave_up_reasons": dict(Counter(r.gave_up for r in self.records if r.gave_up)),
        }

    # -------------------------------------------------------------------- run

    async def run(self) -> None:
        """Submit every job through ``clients`` tasks, while as many pollers follow each
        accepted job until it ends (or the deadline passes)."""
        self.started = time.monotonic()
        limits = httpx.Limits(max_connections=self.clients * 4, max_keepalive_connections=self.clients * 2)
        timeout = httpx.Timeout(15.0, connect=3.0)
        headers = {"Authorization": f"Bearer {self.secret}"}
        self._watch: asyncio.Queue[tuple[float, JobRecord]] = asyncio.Queue()
        self._submitting = self.clients
        async with httpx.AsyncClient(timeout=timeout, limits=limits, headers=headers) as http:
            await asyncio.gather(
                *(self._client(http, c) for c in range(self.clients)),
                *(self._poller(http, c) for c in range(self.clients)),
            )
        self.finished = time.monotonic()

    def _take(self) -> JobRecord | None:
        if self._next >= len(self.records):
            return None
        record = self.records[self._next]
        self._next += 1
        return record

    def _late(self) -> bool:
        return time.monotonic() - self.started > self.deadline_s

    async def _client(self, http: httpx.AsyncClient, number: int) -> None:
        api = number % len(self.api_urls)
        try:
            while (record := self._take()) is not None:
                due = self.started + record.index * self.spread_s / max(1, self.jobs)
                if (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                if self._late():
                    record.gave_up = "never sent: the run's deadline had passed"
                    continue
                api = await self._submit(http, record, api)
                if record.job_id:
                    self._watch.put_nowait((time.monotonic() + self.poll_s, record))
        finally:
            self._submitting -= 1

    async def _poller(self, http: httpx.AsyncClient, number: int) -> None:
        """Take the job due soonest-ish (FIFO), look at it, put it back unless it ended."""
        api = number % len(self.api_urls)
        tries = 0
        while not self._late():
            try:
                due, record = await asyncio.wait_for(self._watch.get(), timeout=0.5)
            except TimeoutError:
                if self._submitting == 0 and self._watch.empty() and self._all_followed():
                    return
                continue
            if (wait := due - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            response = await self._call(http, api, "GET", f"/v1/videos/{record.job_id}")
            if response is not None and response.status_code == 200:
                tries = 0
                record.status = response.json()["vidgate_status"]
                if record.status not in TERMINAL:
                    self._watch.put_nowait((time.monotonic() + self.poll_s, record))
                continue
            tries += 1
            if response is None or response.status_code >= 500:
                api = (api + 1) % len(self.api_urls)
            self._watch.put_nowait((time.monotonic() + self.poll_s, record))
            await self._backoff(tries, response.headers.get("retry-after") if response else None)

    def _all_followed(self) -> bool:
        return all(r.status in TERMINAL for r in self.records if r.job_id)

    async def _call(
        self, http: httpx.AsyncClient, api: int, method: str, path: str, **kwargs: Any
    ) -> httpx.Response | None:
        start = time.monotonic()
        try:
            response = await http.request(method, f"{self.api_urls[api]}{path}", **kwargs)
        except httpx.HTTPError as exc:
            now = time.monotonic()
            self.answers.append(Answer(now, api, method, None, now - start, error=type(exc).__name__))
            return None
        now = time.monotonic()
        retry_after = response.headers.get("retry-after")
        self.answers.append(Answer(now, api, method, response.status_code, now - start, retry_after))
        return response

    async def _backoff(self, tries: int, retry_after: str | None = None) -> None:
        delay = min(4.0, 0.2 * 2 ** min(tries, 5)) * random.uniform(0.5, 1.0)
        if retry_after and retry_after.isdigit():
            delay = max(delay, min(float(retry_after), 5.0))
        await asyncio.sleep(delay)

    async def _submit(self, http: httpx.AsyncClient, record: JobRecord, api: int) -> int:
        body = {"model": MODEL, "prompt": record.prompt, "duration": SECONDS}
        headers = {"Idempotency-Key": record.idempotency_key}
        while True:
            record.submit_tries += 1
            response = await self._call(http, api, "POST", "/v1/videos", json=body, headers=headers)
            if response is not None and response.status_code == 200:
                record.job_id = response.json()["id"]
                record.replayed = response.headers.get("idempotent-replayed") == "true"
                return api
            retryable = response is None or response.status_code == 429 or response.status_code >= 500
            if not retryable:
                assert response is not None
                record.gave_up = f"HTTP {response.status_code}: {response.text[:200]}"
                return api
            if record.submit_tries >= MAX_SUBMIT_TRIES or self._late():
                record.gave_up = f"no success after {record.submit_tries} tries"
                return api
            if response is None or response.status_code >= 500:
                api = (api + 1) % len(self.api_urls)  # as a load balancer would
            await self._backoff(
                record.submit_tries, response.headers.get("retry-after") if response else None
            )
