"""JSON log lines, one object per line, each with the request id of the request it belongs to.

The request id travels in a context variable set by the middleware, so any module's logger
call made while serving a request carries it without passing it around.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import sys
import time
from typing import Any

import orjson

__all__ = ["REQUEST_ID", "JsonFormatter", "configure_logging", "utc_stamp"]

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def utc_stamp(epoch: float) -> str:
    """``epoch`` as ``2026-03-16T10:15:30.120Z`` (UTC, milliseconds, truncated)."""
    whole = int(epoch)
    return f"{_seconds(whole)}.{int((epoch - whole) * 1000):03d}Z"


@functools.lru_cache(maxsize=4)  # a log line's second is nearly always the last one's
def _seconds(whole: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))


class JsonFormatter(logging.Formatter):
    """One JSON object a line; ``fields`` are added to every line (a worker's number)."""

    def __init__(self, fields: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.fields = dict(fields or {})

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": utc_stamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **self.fields,
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            line["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure_logging(level: str = "INFO", **fields: Any) -> None:
    """JSON lines on standard error at ``level``; ``fields`` on every line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(fields))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # No line says which source line, thread or process logged it (the formatter above
    # writes none of them), so skip finding them for every record: the logging
    # documentation's own advice for code that logs on a hot path.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # aiohttp's access log would duplicate our exchange line.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
