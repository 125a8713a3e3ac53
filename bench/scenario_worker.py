"""Scenario ``worker`` (filled in below)."""

NAME = "worker"


async def run(ctx):  # type: ignore[no-untyped-def]
    return []
