"""Scenario ``litellm`` (filled in below)."""

NAME = "litellm"


async def run(ctx):  # type: ignore[no-untyped-def]
    return []
