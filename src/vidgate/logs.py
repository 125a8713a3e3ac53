"""Logging set-up with secrets redacted from every record, whatever logger emits it.

API keys (ours and the usual upstream shapes), bearer tokens, ``whsec_`` secrets
and ``key=``/``token=`` query parameters are masked before a record is formatted
(message, traceback and every string ``extra`` field), so neither a stray f-string
nor a library's debug line can leak one, in the text format or the JSON one.
"""

from __future__ import annotations

import logging
import re
from typing import IO, Literal

from vidgate.observability.jsonlog import JsonFormatter, TextFormatter, extras

_PATTERNS = (
    re.compile(r"(vg_(?:live|test)_)[A-Za-z0-9_\-]{6,}"),
    re.compile(r"(whsec_)[A-Za-z0-9+/=_\-]{6,}"),
    re.compile(r"((?:[Bb]earer|Key|Token)\s+)[A-Za-z0-9._~+/=\-]{8,}"),
    re.compile(r"((?:api[_-]?key|key|token|secret|signature|sig)=)[^&\s\"']+", re.IGNORECASE),
    re.compile(r"((?:sk|r8|xai|afk|ky|tl)[-_])[A-Za-z0-9_\-]{16,}"),
)


def redact(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(r"\1[REDACTED]", text)
    return text


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        for key, value in extras(record).items():
            if isinstance(value, str) and (cleaned := redact(value)) != value:
                setattr(record, key, cleaned)
        return True


LogFormat = Literal["text", "json"]


def make_handler(fmt: LogFormat = "text", stream: IO[str] | None = None) -> logging.Handler:
    """A handler writing ``fmt`` lines (stderr by default), secrets redacted."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactSecrets())
    return handler


def configure(level: str = "info", fmt: LogFormat = "text") -> None:
    """Root logging for the CLI: one format (text or JSON lines), secrets redacted,
    chatty libraries quiet; uvicorn's loggers go through the same handler."""
    root = logging.getLogger()
    root.handlers[:] = [make_handler(fmt)]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # our access layer logs each request; uvicorn's own lines go through our handler
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
