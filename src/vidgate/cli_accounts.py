"""``vidgate keys`` and ``vidgate accounts``: issue and revoke keys, top up and show accounts."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from vidgate.cli_common import DataDir, settings_from, usd_amount

keys_app = typer.Typer(no_args_is_help=True, help="Issue and revoke API keys.")
accounts_app = typer.Typer(no_args_is_help=True, help="Accounts and their balances.")


@keys_app.command("create")
def keys_create(
    account: Annotated[str, typer.Option(help="Account name (created if new).")],
    credit: Annotated[
        str | None, typer.Option(help="Add this much USD to the key's balance (test or live).")
    ] = None,
    test: Annotated[
        bool, typer.Option("--test", help="A test-mode key: every job runs on the simulator.")
    ] = False,
    rate_limit: Annotated[
        int | None, typer.Option("--rate-limit", help="Requests per minute for the account.")
    ] = None,
    daily_cap: Annotated[str | None, typer.Option("--daily-cap", help="Spend cap per UTC day, USD.")] = None,
    total_cap: Annotated[str | None, typer.Option("--total-cap", help="Total spend cap, USD.")] = None,
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    data_dir: DataDir = None,
) -> None:
    """Issue an API key. The secret is printed once, alone on the last line."""
    from vidgate.bootstrap import create_key

    settings = settings_from(data_dir)
    issued = asyncio.run(
        create_key(
            settings,
            account=account,
            mode="test" if test else "live",
            name=name,
            credit=usd_amount(credit) if credit else None,
            rate_limit=rate_limit,
            daily_cap=usd_amount(daily_cap) if daily_cap else None,
            total_cap=usd_amount(total_cap) if total_cap else None,
        )
    )
    print(f"{issued.mode} key {issued.id} for account {issued.account_name!r} ({issued.account_id})")
    print(issued.secret)


@keys_app.command("revoke")
def keys_revoke(key_id: str, data_dir: DataDir = None) -> None:
    """Revoke a key by id (``key_...``); it stops working at once."""
    from vidgate.bootstrap import revoke

    asyncio.run(revoke(settings_from(data_dir), key_id))
    print(f"revoked {key_id}")


@accounts_app.command("topup")
def accounts_topup(
    account: Annotated[str, typer.Option(help="Account name.")],
    amount: Annotated[str, typer.Option(help="USD to add.")],
    test: Annotated[
        bool, typer.Option("--test", help="Top up the test balance instead of the live one.")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Add money to an account's live (or test) balance."""
    from vidgate.bootstrap import topup

    balance = asyncio.run(
        topup(
            settings_from(data_dir),
            account=account,
            amount=usd_amount(amount),
            mode="test" if test else "live",
        )
    )
    print(f"{account}: {'test' if test else 'live'} balance is now {balance}")


@accounts_app.command("show")
def accounts_show(account: str, data_dir: DataDir = None) -> None:
    """Balances of an account (both modes) and its keys."""
    from vidgate.bootstrap import describe

    for line in asyncio.run(describe(settings_from(data_dir), account)):
        print(line)
