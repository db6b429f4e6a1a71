"""Structured logs for every daemon: one JSON object per line on stderr (or ``key=value`` text for
people), configured once on the root logger so the project's loggers and the libraries' (uvicorn,
web3) all come out in the same shape.

Every record is an event name plus typed fields: ``log_event(logger, "proof.signed", kind=...)``.
Nothing here knows about keys, and callers never pass key material: a test greps the logs.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Literal

_FIELDS = "fields"

LogFormat = Literal["json", "text"]


class JsonFormatter(logging.Formatter):
    """``{"ts": ..., "level": ..., "logger": ..., "event": ..., <fields>}`` per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        entry.update(getattr(record, _FIELDS, {}))
        if record.exc_info and record.exc_info[1] is not None:
            entry["error"] = f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
        return json.dumps(entry, default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """``<ts> <level> <event> key=value ...`` per line."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, _FIELDS, {})
        parts = [_timestamp(record.created), record.levelname.lower(), record.getMessage()]
        parts += [f"{k}={v}" for k, v in fields.items()]
        if record.exc_info and record.exc_info[1] is not None:
            parts.append(f"error={type(record.exc_info[1]).__name__}: {record.exc_info[1]}")
        return " ".join(parts)


def _timestamp(created: float) -> str:
    millis = int(created * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{millis:03d}Z"


def configure(
    level: str = "info", fmt: LogFormat = "json", quiet: tuple[str, ...] = ()
) -> logging.Handler:
    """Send every logger's records to stderr in the chosen format, replacing any handlers the
    root logger had; loggers named in ``quiet`` only pass warnings and worse. Returns the
    handler (uvicorn's loggers are pointed at it by ``log_config=None``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one structured event."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={_FIELDS: fields})
