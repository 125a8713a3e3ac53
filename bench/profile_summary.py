"""Read a py-spy ``--format raw`` profile (collapsed stacks) and print where the time goes.

    python bench/profile_summary.py PROFILE.txt [--top 25]

Two lists: the frames present in the most samples (inclusive share), grouped by
``module:function``, and a per-area split (the vidgate package by sub-package, the
libraries by name). Samples of threads other than the event loop's (aiosqlite's
worker thread) are counted too: they cost the process CPU.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.+) \((?P<file>[^():]+)(?::\d+)?\)$")

AREAS = [
    ("vidgate/api/", "vidgate.api (handlers, middleware)"),
    ("vidgate/observability/", "vidgate.observability (access log, metrics)"),
    ("vidgate/service/", "vidgate.service"),
    ("vidgate/store/", "vidgate.store"),
    ("vidgate/billing/", "vidgate.billing"),
    ("vidgate/catalog/", "vidgate.catalog"),
    ("sqlalchemy/", "SQLAlchemy"),
    ("aiosqlite/", "aiosqlite (thread hop)"),
    ("asyncpg/", "asyncpg"),
    ("fastapi/", "FastAPI"),
    ("starlette/", "Starlette"),
    ("pydantic", "pydantic"),
    ("uvicorn/", "uvicorn"),
    ("limits/", "limits (rate limiter)"),
    ("logging/", "logging"),
]


def parse(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def label(frame: str) -> str:
    match = FRAME.match(frame)
    if not match:
        return frame
    return f"{match['file']}:{match['func']}"


def summary(path: Path, top: int) -> str:
    stacks = parse(path)
    total = sum(count for _, count in stacks) or 1
    inclusive: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    for frames, count in stacks:
        seen = {label(f) for f in frames}
        for name in seen:
            inclusive[name] += count
        # the innermost frame that belongs to a known area decides the sample's area
        area = "other (Python runtime, asyncio, uvicorn loop)"
        for frame in reversed(frames):
            found = next((name for key, name in AREAS if key in frame), None)
            if found:
                area = found
                break
        areas[area] += count
    lines = [f"{path.name}: {total} samples", "", "| area (innermost known frame) | share |", "|---|---|"]
    lines += [f"| {name} | {100 * n / total:.0f}% |" for name, n in areas.most_common()]
    lines += ["", "| frame (inclusive) | share |", "|---|---|"]
    skip = (
        "runpy",
        "asyncio/",
        "uvicorn/server.py",
        "uvicorn/_compat.py",
        "typer",
        "vidgate/cli.py",
        "<module>",
    )
    shown = 0
    for name, n in inclusive.most_common():
        if any(s in name for s in skip):
            continue
        lines.append(f"| `{name}` | {100 * n / total:.0f}% |")
        shown += 1
        if shown >= top:
            break
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("profiles", nargs="+")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    for path in args.profiles:
        print(summary(Path(path), args.top))
        print()


if __name__ == "__main__":
    main()
