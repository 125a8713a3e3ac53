"""``vidgate routes``: the admin API's route settings from the command line, audited the same way."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from vidgate.cli import main
from vidgate.store import audit
from vidgate.store.engine import Database

FAL = "fal/fal-ai/kling-video/v3/pro/text-to-video"


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def vidgate(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Ran]:
    """``vidgate routes ARGS`` in this process (as ``main`` runs it), with its exit status and output."""
    monkeypatch.setenv("VIDGATE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VIDGATE_DATABASE_URL", database_url)
    monkeypatch.setenv("VIDGATE_SECRET_KEY", "cli-secret")

    def run(*args: str) -> Ran:
        capsys.readouterr()
        try:
            main(["routes", *args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


def _trail(database_url: str) -> list[tuple[str, str]]:
    async def read() -> list[tuple[str, str]]:
        db = Database(database_url, null_pool=True)
        try:
            async with db.read() as conn:
                return [(e.actor, e.action) for e in await audit.recent(conn, target="kling-3-pro")]
        finally:
            await db.dispose()

    return asyncio.run(read())


def test_routes_are_shown_changed_and_reset_from_the_command_line(
    vidgate: Callable[..., Ran], database_url: str
) -> None:
    changed = vidgate("kling-3-pro", "--disable", "kling/kling-v3", "--first", FAL, "--actor", "ops-carol")
    assert changed.returncode == 0, changed.stderr
    lines = changed.stdout.splitlines()
    assert lines[0].startswith("kling-3-pro: ordered (changed by ops-carol")
    assert lines[1].split() == ["1.", FAL, "on", "weight", "1"]
    assert lines[2].split() == ["2.", "kling/kling-v3", "off", "weight", "1"]
    assert _trail(database_url) == [("ops-carol", "routes.update")]

    listed = vidgate()
    assert listed.returncode == 0, listed.stderr
    line = next(li for li in listed.stdout.splitlines() if li.startswith("kling-3-pro "))
    assert f"{FAL}, kling/kling-v3 (off)" in line and "[by ops-carol]" in line

    wrong = vidgate("kling-3-pro", "--disable", "acme/x")
    assert wrong.returncode == 2 and "has no route 'acme/x'" in wrong.stderr
    unknown = vidgate("no-such-model")
    assert unknown.returncode == 2 and "no-such-model" in unknown.stderr

    reset = vidgate("kling-3-pro", "--reset")
    assert reset.returncode == 0, reset.stderr
    assert "(catalog's)" in reset.stdout and "1. kling/kling-v3  on" in reset.stdout
    assert _trail(database_url) == [("cli", "routes.reset"), ("ops-carol", "routes.update")]
