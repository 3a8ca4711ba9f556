"""Which worker threads are running a call past its budget.

Python cannot interrupt a thread, so a policy that never returns keeps its worker for good.
Once every worker is in that state the executor answers health checks but can run nothing;
The health answer reports the count so that the engine can replace the executor.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class RunningCalls:
    """The deadlines of the calls that worker threads are running right now."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = itertools.count()
        self._deadlines: dict[int, float] = {}

    def run(self, deadline: float, work: Callable[[], T]) -> T:
        """Runs ``work`` on the calling worker thread, known as running until ``deadline``.

        Args:
            deadline: ``clock()`` value after which the call is overdue; ``math.inf`` for none.
            work: The call.
        """
        with self._lock:
            token = next(self._tokens)
            self._deadlines[token] = deadline
        try:
            return work()
        finally:
            with self._lock:
                del self._deadlines[token]

    def overdue(self) -> int:
        """How many running calls are past their deadline."""
        now = self._clock()
        with self._lock:
            return sum(1 for deadline in self._deadlines.values() if deadline < now)


def call_deadline(received_at: float, budget_ms: int) -> float:
    """When a call received at ``received_at`` with ``budget_ms`` (0: none) is overdue."""
    return received_at + budget_ms / 1000 if budget_ms > 0 else math.inf
