"""Fixtures of the fault-survival suite (marker ``fault``; not part of ``./dev test``).

Run it with ``./dev test -p no:cacheprovider -m fault tests/fault -s``. It needs the
machine's PostgreSQL (``VIDGATE_TEST_DATABASE_URL``, default
``postgresql+asyncpg://postgres@127.0.0.1:5432/test``) and Redis
(``VIDGATE_FAULT_REDIS_URL``, else ``VIDGATE_TEST_REDIS_URL``, else
``redis://127.0.0.1:6379/7``); S3 is a moto server it starts itself.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fault.cluster import Deployment, Settings
from tests.fault.infra import create_bucket, create_database, drop_database, start_moto, storage_url
from tests.fault.scenario import Run

PG_SERVER = os.environ.get("VIDGATE_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("VIDGATE_FAULT_REDIS_URL") or os.environ.get(
    "VIDGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/7"
)
FIGURES_KEY = pytest.StashKey[list[tuple[str, dict[str, Any]]]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[FIGURES_KEY] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[FAILED_KEY] = report.failed
    return report


FAILED_KEY = pytest.StashKey[bool]()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    from tests.fault.figures import report

    recorded = config.stash.get(FIGURES_KEY, [])
    if not recorded:
        return
    terminalreporter.section("fault-survival figures")
    for name, figures in recorded:
        terminalreporter.write_line(report(name, figures, Path(figures["_json"])))


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One moto S3 server process for the session (each scenario gets its own bucket)."""
    child, endpoint = start_moto(tmp_path_factory.mktemp("moto"))
    try:
        yield endpoint
    finally:
        child.stop(timeout_s=10)


@pytest.fixture
def fault_run(
    request: pytest.FixtureRequest, tmp_path: Path, s3_endpoint: str
) -> Iterator[Callable[..., Run]]:
    """``fault_run(name, database_url=None, **settings)``: a started deployment on a
    fresh database (made on the machine's server unless one is given) and a fresh bucket.

    Every process is stopped at the end, pass or fail; on failure the tail of each
    process's log is printed (the full logs stay under the test's tmp dir).
    """
    made: list[Run] = []
    scratch: list[str] = []
    recorded = request.config.stash[FIGURES_KEY]

    def record(name: str, figures: dict[str, Any]) -> None:
        figures["_json"] = str(tmp_path / f"figures-{name}.json")
        recorded.append((name, figures))

    def make(name: str, *, database_url: str | None = None, **options: Any) -> Run:
        if database_url is None:
            database_url = create_database(PG_SERVER)
            scratch.append(database_url)
        settings = Settings(
            database_url=database_url,
            storage_url=storage_url(s3_endpoint, create_bucket(s3_endpoint)),
            redis_url=REDIS,
            **options,
        )
        deployment = Deployment(settings, tmp_path)
        run = Run(name, tmp_path, database_url, deployment, record=record)
        made.append(run)
        deployment.start()
        run.startup_s = time.monotonic() - run.started
        run.started = time.monotonic()  # wall time counts from a running deployment
        return run

    try:
        yield make
    finally:
        failed = request.node.stash.get(FAILED_KEY, True)
        for run in made:
            run.deployment.close()
            if failed:
                print(f"\n===== logs of {run.name} (all under {tmp_path})\n{run.deployment.log_tails()}")
        for url in scratch:
            drop_database(url)
        if not failed:
            shutil.rmtree(tmp_path / "data", ignore_errors=True)
