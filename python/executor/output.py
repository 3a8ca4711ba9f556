"""What policy code prints: logged as text attributed to the policy, never as the executor's records.

The engine parses the executor's stderr as its structured log channel (JSON lines) and logs
its stdout verbatim as text. Policies share the process, so whatever they print must never
reach stderr as it is: a policy printing a JSON line could otherwise forge a record with any
level and message. ``redirect`` therefore, once at startup,

- keeps a private copy of fd 2 for the executor's own log handler,
- points fd 2 at stdout, so writes below ``sys.stderr`` (C extensions, ``os.write(2, ...)``,
  child processes) land on the plain-text channel, and
- replaces ``sys.stdout`` and ``sys.stderr`` with writers that turn each printed line into a
  record ``{"msg": "policy output", "policy": <the policy running on this thread>, "text": ...}``.

Which policy is running is a context variable set around each import and call (``running``).
"""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
from contextvars import ContextVar
from typing import TextIO

log = logging.getLogger("executor.output")

current_policy: ContextVar[str | None] = ContextVar("tollgate_current_policy", default=None)
"""The registry key of the policy whose code runs on this thread, if any."""

POLICY_OUTPUT = "policy output"
"""The message of every record made from printed text (the engine recognises it)."""


class running:  # noqa: N801 (used as a function: ``with running(key):``)
    """Attributes what is printed and logged in this block to the policy ``key``.

    A class rather than a generator: it is entered around every policy call.
    """

    __slots__ = ("_key", "_token")

    def __init__(self, key: str) -> None:
        self._key = key

    def __enter__(self) -> None:
        self._token = current_policy.set(self._key)

    def __exit__(self, *_: object) -> None:
        # A line printed without its newline belongs to this policy, not to the next one.
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, PolicyOutput):
                stream.flush()
        current_policy.reset(self._token)


class PolicyOutput(io.TextIOBase):
    """A text stream whose lines become ``policy output`` log records."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self._name = name
        self._local = threading.local()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        """Text is logged as it is; libraries that ask get UTF-8."""
        return "utf-8"

    def writable(self) -> bool:
        """Always writable."""
        return True

    def write(self, text: str) -> int:
        """Buffers ``text`` per thread and logs each complete line."""
        lines = (getattr(self._local, "partial", "") + str(text)).split("\n")
        self._local.partial = lines.pop()
        for line in lines:
            self._emit(line)
        return len(text)

    def flush(self) -> None:
        """Logs this thread's unfinished line, if any."""
        partial = getattr(self._local, "partial", "")
        self._local.partial = ""
        if partial:
            self._emit(partial)

    def _emit(self, line: str) -> None:
        # A failing log handler reports on sys.stderr, which is this writer: never recurse.
        if getattr(self._local, "emitting", False) or not line.strip():
            return
        self._local.emitting = True
        try:
            log.info(
                POLICY_OUTPUT,
                extra={"policy": current_policy.get() or "", "stream": self._name, "text": line},
            )
        finally:
            self._local.emitting = False


def redirect() -> TextIO:
    """Separates the executor's log channel from what policies print; returns the log stream."""
    sys.stdout.flush()
    sys.stderr.flush()
    log_fd = os.dup(2)  # not inheritable: child processes of policies never get the log channel
    os.dup2(1, 2)
    stream = os.fdopen(log_fd, "w", buffering=1, encoding="utf-8", errors="backslashreplace")
    sys.stdout = PolicyOutput("stdout")
    sys.stderr = PolicyOutput("stderr")
    return stream
