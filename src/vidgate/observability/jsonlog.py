"""Log formats: one JSON object per record, or one readable line; and the job fields.

JSON (``VIDGATE_LOG_FORMAT=json``): ``time`` (UTC, ISO 8601), ``level``, ``logger``,
``message``, every ``extra`` field of the record, and ``exception`` when there is
one. Text: ``time level logger: message``, followed by the job and request fields
of ``extra`` that the message does not already show.

Secrets are masked before either formatter runs (``vidgate.logs.RedactSecrets``
on the handler), in the message, the traceback and every string ``extra`` field.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys() | {"message", "asctime", "taskName"}
)

JOB_KEYS = ("job_id", "account", "provider", "upstream_id")
TEXT_KEYS = (*JOB_KEYS, "request_id")


def extras(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a caller passed as ``extra=`` (private ``_`` names left out)."""
    return {k: v for k, v in record.__dict__.items() if k not in STANDARD_ATTRS and not k.startswith("_")}


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return str(value)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in extras(record).items():
            entry.setdefault(key, _jsonable(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        fields = extras(record)
        shown = [
            f"{key}={fields[key]}"
            for key in TEXT_KEYS
            if fields.get(key) is not None and f"{key}=" not in record.message
        ]
        return f"{line} [{' '.join(shown)}]" if shown else line
