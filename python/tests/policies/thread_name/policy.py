"""Reports which thread ran it (``x-thread``): the event loop's or a worker's."""

from __future__ import annotations

import threading
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


class ThreadName(Policy):
    def on_request(self, ctx: RequestContext, params: dict[str, Any]) -> RequestAction:
        return UpstreamRequestModifications(set_headers={"x-thread": threading.current_thread().name})

    def on_response(self, ctx: ResponseContext, params: dict[str, Any]) -> ResponseAction | None:
        return None


def get_policy(metadata: PolicyMetadata, params: dict[str, Any]) -> Policy:
    return ThreadName(metadata, params)
