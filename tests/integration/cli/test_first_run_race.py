"""API replicas starting at once on one database make one demo account, and none fails."""

from __future__ import annotations

import asyncio
from pathlib import Path

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
