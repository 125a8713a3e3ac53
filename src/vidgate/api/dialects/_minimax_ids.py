"""MiniMax's numeric ids: ``task_id`` and ``file_id`` that fit in a signed 64-bit integer.

MiniMax's OpenAPI types ``file_id`` as int64 and real ids have 15 to 19 digits, so
clients in Go, Java or Rust (and JavaScript's ``Number()``) parse them as numbers.
A task created here gets a random 63-bit task number ``n`` (18 or 19 digits), and
its job id carries it: ``video_`` + ``TASK_TAG`` + ``n`` as 16 hex digits (still a
UUID-shaped id, so every other dialect reads the job as usual). The ``file_id`` is
``n`` under a fixed 63-bit XOR mask, so both lead back to the job without a table.

Jobs created through another API have 128-bit random ids; they read here under
their 39-digit decimal form (the job id as a number), as they always did. The two
ranges cannot meet: a random job id's number is far above 2**63.
"""

from __future__ import annotations

import secrets

from vidgate.ids import JOB_PREFIX, job_hex, job_id_from_number, job_id_to_number

TASK_TAG = "6d696e696d617800"  # "minimax\0" in hex: the first half of a MiniMax-made job id
LOWEST = 10**17  # task numbers have 18 or 19 digits, like MiniMax's own
INT63 = 1 << 63
_FILE_MASK = 0x2F1D6B9E3A5C7841  # file_id = task number XOR this (within 63 bits)
_LEGACY_FILE_MASK = 0x9E3779B97F4A7C15F39CC0605CEDC834  # for the 128-bit numbers


def new_job_id() -> str:
    """A job id carrying a fresh random 63-bit task number."""
    number = LOWEST + secrets.randbelow(INT63 - LOWEST)
    return f"{JOB_PREFIX}{TASK_TAG}{number:016x}"


def _number(job_id: str) -> int | None:
    tail = job_hex(job_id)
    if tail is None or not tail.startswith(TASK_TAG):
        return None
    return int(tail[len(TASK_TAG) :], 16)


def task_id(job_id: str) -> str:
    number = _number(job_id)
    return str(number) if number is not None else job_id_to_number(job_id)


def job_id_of_task(value: str) -> str | None:
    if not value.isdigit() or len(value) > 40:
        return None
    number = int(value)
    if number < INT63:
        return f"{JOB_PREFIX}{TASK_TAG}{number:016x}"
    return job_id_from_number(value)


def file_id(job_id: str) -> str:
    number = _number(job_id)
    if number is not None:
        return str(number ^ _FILE_MASK)
    tail = job_hex(job_id)
    if tail is None:
        raise ValueError(f"not a job id: {job_id!r}")
    return str(int(tail, 16) ^ _LEGACY_FILE_MASK)


def job_id_of_file(value: str) -> str | None:
    if not value.isdigit() or len(value) > 40:
        return None
    number = int(value)
    if number < INT63:
        return f"{JOB_PREFIX}{TASK_TAG}{number ^ _FILE_MASK:016x}"
    if number >= 1 << 128:
        return None
    return job_id_from_number(str(number ^ _LEGACY_FILE_MASK))
