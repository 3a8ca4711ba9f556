"""Sleeps, then echoes the request's ``x-id`` header back as ``x-echo-id``.

``startedFile`` names a file created when the call starts, so a test can act while the
call is surely in progress. It also reports how many calls were inside ``on_request`` when it started
(``x-in-flight``), which shows calls really run at the same time without relying on
timing thresholds.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sdk.policy import (
    Policy,
    PolicyMetadata,
    RequestAction,
    RequestContext,
    ResponseAction,
    ResponseContext,
    UpstreamRequestModifications,
)

_lock = threading.Lock()
_in_flight = 0


class Sleepy(Policy):
    def on_request(self, ctx: RequestContext, params: dict[str, Any]) -> RequestAction:
        global _in_flight
        with _lock:
            _in_flight += 1
            seen = _in_flight
        if "startedFile" in params:
            with open(params["startedFile"], "w", encoding="utf-8"):
                pass
        try:
            time.sleep(params.get("seconds", 0.2))
        finally:
            with _lock:
                _in_flight -= 1
        return UpstreamRequestModifications(
            set_headers={"x-echo-id": ctx.headers.get("x-id", ""), "x-in-flight": str(seen)}
        )

    def on_response(self, ctx: ResponseContext, params: dict[str, Any]) -> ResponseAction:
        time.sleep(params.get("seconds", 0.2))
        return None


def get_policy(metadata: PolicyMetadata, params: dict[str, Any]) -> Policy:
    return Sleepy(metadata, params)
