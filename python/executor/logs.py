"""JSON-lines logging on stderr, one object per line, like the engine's own logs.

The engine (or the container's entrypoint) forwards the executor's stderr; structured lines
let the same tools parse both processes' logs. Only the executor writes there: what policies
print goes through ``executor.output``. Fields passed with ``extra=`` become
top-level keys next to ``time``, ``level``, ``logger`` and ``msg``.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from executor.output import current_policy

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
"""Accepted ``--log-level`` values."""

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line (without the newline)."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        # Records logged while policy code runs (its own logging included) name that policy.
        policy = current_policy.get()
        if policy is not None:
            entry["policy"] = policy
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=repr, ensure_ascii=False)


def configure(level: str, stream: TextIO = sys.stderr) -> None:
    """Sends every log record at ``level`` or above to ``stream`` as JSON lines."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level])
    # asyncio logs every event-loop lookup at debug level, which buries our own debug lines;
    # its warnings and errors still come through.
    logging.getLogger("asyncio").setLevel(max(LEVELS[level], logging.INFO))
