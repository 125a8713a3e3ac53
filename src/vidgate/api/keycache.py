"""A short-lived, per-database memory of API keys: one read of the store per key per second.

Every request used to read its key from the store twice (the rate limiter, then
authentication). Both now ask this cache, which remembers what the store said about
a key digest (the principal, or that the key is unknown, revoked or inactive) for
``ttl_s`` seconds (1 s by default). So a revocation, made by any process, is seen
by every process within that second, and a busy key costs one indexed read per
second instead of one per request. Entries are bounded in number (oldest first out).

A change made through this process (an admin revoking a key, disabling it, changing
an account's limit) is seen at once: a write to ``api_keys`` or ``accounts`` through
the ``Database`` bumps its generation, when executed and again when committed, and an
entry from an older generation is not used. Other processes are bounded by the TTL.

One cache per ``Database`` object (a process normally has one), kept beside it in a
weak map, so that tests and several apps in one process never share answers.
"""

from __future__ import annotations

import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.dml import Update, UpdateBase

from vidgate.billing.keys import same_hash
from vidgate.domain.job import Principal
from vidgate.store import accounts as account_store
from vidgate.store.engine import Database

DEFAULT_TTL_S = 1.0
MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class KeyState:
    """What the store said about one key digest."""

    principal: Principal | None  # None: no such key, or revoked
    inactive: bool = False  # the key exists but is disabled
    legacy_id: str | None = None  # stored as a plain digest: re-key it, and do not remember it


class KeyCache:
    """Digest -> ``KeyState`` for ``ttl_s`` seconds (see the module docstring)."""

    def __init__(self, ttl_s: float = DEFAULT_TTL_S, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.generation = 0  # bumped by every local write to keys or accounts
        self._entries: OrderedDict[str, tuple[float, int, KeyState]] = OrderedDict()

    async def state(self, db: Database, digest: str) -> KeyState:
        now = time.monotonic()
        hit = self._entries.get(digest)
        if hit is not None and hit[0] > now and hit[1] == self.generation:
            return hit[2]
        generation = self.generation
        async with db.read(point=True) as conn:
            found = await account_store.key_by_hash(conn, digest)
        state = _state(found, digest)
        if self.ttl_s > 0 and state.legacy_id is None:
            self._entries[digest] = (now + self.ttl_s, generation, state)
            self._entries.move_to_end(digest)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return state

    def forget(self) -> None:
        """Drop every entry (after a change this process made and must see at once)."""
        self._entries.clear()


def _state(found: tuple[account_store.KeyRow, account_store.AccountRow] | None, digest: str) -> KeyState:
    if found is None or not same_hash(found[0].secret_hash, digest) or found[0].revoked_at is not None:
        return KeyState(None)
    key, account = found
    principal = Principal(
        account_id=account.id,
        account_name=account.name,
        key_id=key.id,
        mode="test" if key.mode == "test" else "live",
        rate_limit_per_minute=account.rate_limit_per_minute,
        secret_hash=key.secret_hash,
    )
    return KeyState(principal, inactive=key.disabled, legacy_id=key.id if key.legacy else None)


_CACHES: weakref.WeakKeyDictionary[Database, KeyCache] = weakref.WeakKeyDictionary()


def key_cache(db: Database) -> KeyCache:
    """The cache that belongs to ``db`` (made on first use, watching ``db``'s writes)."""
    found = _CACHES.get(db)
    if found is None:
        found = _CACHES[db] = KeyCache()
        for engine in db.writing_engines:
            _watch(engine.sync_engine, weakref.ref(found))
    return found


_WATCHED = frozenset({"api_keys", "accounts"})
_DIRTY = "vidgate_keys_changed"
# What every create writes to the key (its spend) is not what the cache remembers.
_UNREMEMBERED = frozenset({"spent_total_micros"})


def _changes_keys(clause: Any) -> bool:
    """Whether a statement may change what the cache remembers (when unsure: yes)."""
    if not isinstance(clause, UpdateBase) or getattr(clause.table, "name", None) not in _WATCHED:
        return False
    values = getattr(clause, "_values", None)  # an UPDATE's SET columns, when given as a dict
    if not values or not isinstance(clause, Update):
        return True
    return not {str(getattr(column, "key", column)) for column in values} <= _UNREMEMBERED


def _watch(engine: Engine, cache: weakref.ref[KeyCache]) -> None:
    def bump() -> None:
        if (found := cache()) is not None:
            found.generation += 1

    def after_execute(conn: Connection, clause: Any, *_: Any) -> None:
        if _changes_keys(clause):
            conn.info[_DIRTY] = True
            bump()

    def on_commit(conn: Connection) -> None:
        if conn.info.pop(_DIRTY, False):
            bump()

    event.listen(engine, "after_execute", after_execute)
    event.listen(engine, "commit", on_commit)
