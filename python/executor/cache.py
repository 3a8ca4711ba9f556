"""The policy instance cache: one instance per ``(name, version, params_hash)``.

Instances are created lazily, on the first call that needs them, because the executor does
not see route configuration; the engine's params hash makes them content-addressed, so
routes that use a policy with the same parameters share one instance. A factory may be slow
(loading a model, compiling patterns) and is run at most once per key even when many calls
for a new key arrive together; its failure is remembered and reported on every later call,
so a broken configuration cannot make the factory run once per request.

Thread safety: ``get`` may be called from any number of worker threads. A short global lock
guards the entry table; each entry has its own lock, held while its factory runs, so a slow
factory only delays calls that need the same key.

Instances live as long as the executor process: at shutdown, once no call is running,
:meth:`InstanceCache.close_all` drops them and calls each one's ``close()``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("executor")

CacheKey = tuple[str, str, str]
"""(policy name, full version, params hash)."""


class PolicyInitError(Exception):
    """The policy's factory failed for this key; the message is the cached reason."""


@dataclass
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: bool = False
    instance: Any = None
    error: str | None = None


def _is_policy(obj: object) -> bool:
    return callable(getattr(obj, "on_request", None)) and callable(getattr(obj, "on_response", None))


class InstanceCache:
    """Policy instances (or their cached factory failures) by key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[CacheKey, _Entry] = {}

    def get(self, key: CacheKey, create: Callable[[], object]) -> Any:
        """The instance for ``key``, calling ``create`` only if no call ever did.

        Raises:
            PolicyInitError: ``create`` failed (now or on an earlier call), or returned
                something without ``on_request``/``on_response``.
        """
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry()
        if not entry.done:
            with entry.lock:
                if not entry.done:
                    self._create(entry, create)
        if entry.error is not None:
            raise PolicyInitError(entry.error)
        return entry.instance

    @staticmethod
    def _create(entry: _Entry, create: Callable[[], object]) -> None:
        try:
            instance = create()
        except BaseException as error:  # a factory must never take the worker down
            entry.error = f"{type(error).__name__}: {error}"
        else:
            if _is_policy(instance):
                entry.instance = instance
            else:
                entry.error = f"get_policy returned {type(instance).__name__}, not a Policy"
        entry.done = True

    def close_all(self) -> int:
        """Drops every instance and calls its ``close()``; returns how many were closed.

        Only for when no call is running (shutdown, after the drain). A ``close()`` that
        raises is logged with its key; the others are still closed.
        """
        with self._lock:
            entries, self._entries = self._entries, {}
        closed = 0
        for (name, version, _), entry in entries.items():
            close = getattr(entry.instance, "close", None)
            if not callable(close):
                continue
            try:
                close()
                closed += 1
            except Exception as error:  # one policy's cleanup must not skip the others'
                log.error(
                    "policy instance failed to close",
                    extra={"policy": f"{name}@{version}", "error": f"{type(error).__name__}: {error}"},
                )
        return closed

    def __len__(self) -> int:
        """Number of keys seen (instances and cached failures)."""
        with self._lock:
            return len(self._entries)
