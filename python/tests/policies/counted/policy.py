"""Each factory call appends a line to the file named by ``params["log"]``.

The tests run the executor in another process, so the file is how they count factory
calls. ``factoryDelay`` keeps the factory busy so concurrent first calls overlap;
``fail`` makes it raise and ``returnNone`` makes it return something that is not a policy.
Every instance has an id, returned as ``x-instance`` so tests can tell instances apart.
``close()`` appends the instance's tag to ``params["closeLog"]`` when it is given.
"""

from __future__ import annotations

import itertools
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

_ids = itertools.count(1)


class Counted(Policy):
    def __init__(self, metadata: PolicyMetadata, params: dict[str, Any]) -> None:
        super().__init__(metadata, params)
        self.instance_id = next(_ids)

    def on_request(self, ctx: RequestContext, params: dict[str, Any]) -> RequestAction:
        return UpstreamRequestModifications(
            set_headers={
                "x-instance": str(self.instance_id),
                "x-factory-route": self.metadata.route_name,
                "x-factory-policy": f"{self.metadata.policy_name}@{self.metadata.policy_version}",
            }
        )

    def on_response(self, ctx: ResponseContext, params: dict[str, Any]) -> ResponseAction:
        return None

    def close(self) -> None:
        if "closeLog" in self.params:
            with open(self.params["closeLog"], "a", encoding="utf-8") as log:
                log.write(f"{self.params.get('tag', '')}\n")


def get_policy(metadata: PolicyMetadata, params: dict[str, Any]) -> Policy | None:
    with open(params["log"], "a", encoding="utf-8") as log:
        log.write(f"{params.get('tag', '')}\n")
    time.sleep(params.get("factoryDelay", 0))
    if params.get("fail"):
        raise ValueError(f"bad configuration {params.get('tag', '')}")
    if params.get("returnNone"):
        return None
    return Counted(metadata, params)
