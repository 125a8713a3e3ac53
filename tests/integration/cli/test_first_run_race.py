"""API replicas starting at once on one database make one demo account, and none fails."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from vidgate.bootstrap import first_run
from vidgate.config import Settings
from vidgate.store import accounts as account_store
from vidgate.store.engine import open_database


async def test_replicas_starting_together_make_one_demo_account(tmp_path: Path, database_url: str) -> None:
    replicas = [  # replicas of one deployment share the server secret, as they must
        Settings(data_dir=tmp_path / f"replica-{n}", database_url=database_url, secret_key="race-secret")
        for n in range(4)
    ]
    issued = await asyncio.gather(*(first_run(settings) for settings in replicas))
    made = [key for key in issued if key is not None]
    assert len(made) == 1
    db = open_database(replicas[0], null_pool=True)
    try:
        async with db.read() as conn:
            account = await account_store.account_by_name(conn, "demo")
            assert account is not None
            assert len(await account_store.keys_of(conn, account.id)) == 1
    finally:
        await db.dispose()


async def test_a_replica_whose_look_up_missed_the_demo_account_makes_no_second_key(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The PostgreSQL interleaving, made deterministic: replica B looks the demo account up
    just before replica A commits it (B sees none), and A has committed by B's next
    statement. B must lose on the unique name, not find A's account and key it again."""
    replicas = [
        Settings(data_dir=tmp_path / f"replica-{n}", database_url=database_url, secret_key="race-secret")
        for n in range(2)
    ]
    assert await first_run(replicas[0]) is not None  # replica A, committed
    real = account_store.account_by_name
    looked: list[str] = []

    async def before_a_committed(conn: Any, name: str) -> Any:
        looked.append(name)
        return None if len(looked) == 1 else await real(conn, name)

    monkeypatch.setattr(account_store, "account_by_name", before_a_committed)
    assert await first_run(replicas[1]) is None  # replica B
    monkeypatch.undo()
    assert looked[:1] == ["demo"]
    db = open_database(replicas[0], null_pool=True)
    try:
        async with db.read() as conn:
            account = await account_store.account_by_name(conn, "demo")
            assert account is not None
            assert len(await account_store.keys_of(conn, account.id)) == 1
    finally:
        await db.dispose()
