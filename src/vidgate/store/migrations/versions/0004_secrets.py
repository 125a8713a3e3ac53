"""secrets at rest: API-key hashes keyed with the server secret, webhook secrets sealed

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 13:00:00.000000

Before 0004 ``api_keys.secret_hash`` was the plain SHA-256 of the key, which is also
Apiframe's webhook signing key, and webhook secrets were stored in the clear. Run
by ``vidgate.store.migrate`` on a ``Database`` that has a keyring, every key is
re-keyed (``HMAC(k, digest)``, with the digest sealed into the new ``signing_key``)
and every webhook secret is sealed, without knowing any key. Without a keyring the
rows stay as they were: keys are then found by their plain digest once and re-keyed
(``store.accounts.upgrade_key``), and unsealed secrets are read as they are.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

from vidgate.keyring import Keyring, is_sealed
from vidgate.store.engine import maybe_keyring

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

log = logging.getLogger(__name__)

_accounts = sa.table("accounts", sa.column("id", sa.String), sa.column("webhook_secret", sa.String))
_endpoints = sa.table("webhook_endpoints", sa.column("id", sa.String), sa.column("secret", sa.String))
_keys = sa.table(
    "api_keys",
    sa.column("id", sa.String),
    sa.column("secret_hash", sa.String),
    sa.column("signing_key", sa.String),
)


def _widen(table: str, column: str, old: int, new: int) -> None:
    if op.get_bind().dialect.name == "sqlite":
        return  # SQLite does not enforce VARCHAR lengths; rebuilding a referenced table is not worth it
    op.alter_column(
        table,
        column,
        existing_type=sa.String(length=old),
        type_=sa.String(length=new),
        existing_nullable=False,
    )


def upgrade() -> None:
    _widen("accounts", "webhook_secret", 100, 400)
    _widen("webhook_endpoints", "secret", 100, 400)
    op.add_column("api_keys", sa.Column("signing_key", sa.String(length=400), nullable=True))
    bind = op.get_bind()
    keyring = maybe_keyring(bind)
    if keyring is None:
        if bind.execute(sa.select(sa.func.count()).select_from(_keys)).scalar():
            log.warning("0004: no keyring; API keys will be re-keyed on first use")
        return
    _seal_secrets(bind, keyring)
    rows = bind.execute(sa.select(_keys.c.id, _keys.c.secret_hash).where(_keys.c.signing_key.is_(None)))
    for key_id, digest in rows.all():
        bind.execute(
            _keys.update()
            .where(_keys.c.id == key_id)
            .values(secret_hash=keyring.key_hash(digest), signing_key=keyring.seal(digest))
        )


def _seal_secrets(bind: sa.Connection, keyring: Keyring) -> None:
    for table, column in ((_accounts, _accounts.c.webhook_secret), (_endpoints, _endpoints.c.secret)):
        for row_id, value in bind.execute(sa.select(table.c.id, column)).all():
            if not is_sealed(value):
                bind.execute(
                    table.update().where(table.c.id == row_id).values({column.name: keyring.seal(value)})
                )


def downgrade() -> None:
    bind = op.get_bind()
    keyring = maybe_keyring(bind)
    sealed_keys = bind.execute(
        sa.select(_keys.c.id, _keys.c.signing_key).where(_keys.c.signing_key.is_not(None))
    ).all()
    if keyring is None and sealed_keys:
        raise RuntimeError("downgrading 0004 needs the server secret (run it through vidgate migrate)")
    if keyring is not None:
        for key_id, sealed in sealed_keys:
            bind.execute(_keys.update().where(_keys.c.id == key_id).values(secret_hash=keyring.open(sealed)))
        for table, column in ((_accounts, _accounts.c.webhook_secret), (_endpoints, _endpoints.c.secret)):
            for row_id, value in bind.execute(sa.select(table.c.id, column)).all():
                if is_sealed(value):
                    bind.execute(
                        table.update().where(table.c.id == row_id).values({column.name: keyring.open(value)})
                    )
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("signing_key")
