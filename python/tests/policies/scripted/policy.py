"""A policy driven by its parameters.

It appends what it saw to ``metadata["trace"]`` (so tests can check what each policy of a
batch was given), optionally writes metadata, then does what ``params`` say: return header,
body, path, method or status changes, answer immediately, raise, or return something
invalid.
"""

from __future__ import annotations

from typing import Any

from sdk.policy import (
    ImmediateResponse,
    Policy,
    PolicyMetadata,
    RequestAction,
    RequestContext,
    ResponseAction,
    ResponseContext,
    UpstreamRequestModifications,
    UpstreamResponseModifications,
)

from .snapshot import snapshot


async def _not_synchronous() -> None:
    """What an ``async def on_request`` would return."""


class Scripted(Policy):
    def _act(self, ctx: RequestContext | ResponseContext, params: dict[str, Any]) -> Any:
        metadata = ctx.shared.metadata
        if params.get("trace", True):
            seen = snapshot(params.get("label", "?"), ctx)
            seen["metadataTypes"] = {k: type(v).__name__ for k, v in metadata.items() if k != "trace"}
            seen["paramTypes"] = {k: type(v).__name__ for k, v in params.items()}
            metadata.setdefault("trace", []).append(seen)
        metadata.update(params.get("metadata", {}))
        if "metadataNotJson" in params:
            metadata[params["metadataNotJson"]] = {1, 2, 3}
        if "replaceMetadata" in params:
            ctx.shared.metadata = params["replaceMetadata"]
        if "raise" in params:
            raise RuntimeError(params["raise"])
        if params.get("returnValue") == "coroutine":
            return _not_synchronous()
        if "returnValue" in params:
            return {
                "int": 42,
                "string": "not an action",
                "requestMods": UpstreamRequestModifications(set_headers={"x-a": "1"}),
                "responseMods": UpstreamResponseModifications(set_headers={"x-a": "1"}),
                "badHeaderName": UpstreamRequestModifications(set_headers={"bad name": "1"}),
                "badHeaderValue": UpstreamRequestModifications(set_headers={"x-a": "1\r\nx-b: 2"}),
                "badStatus": ImmediateResponse(status_code=99),
                "badPath": UpstreamRequestModifications(path="no-slash"),
                "analyticsNotJson": UpstreamRequestModifications(analytics_metadata={"x": object()}),
            }[params["returnValue"]]
        if "immediate" in params:
            spec = params["immediate"]
            return ImmediateResponse(
                status_code=spec.get("status", 500),
                headers=spec.get("headers", {}),
                body=spec.get("body"),
                analytics_metadata=spec.get("analytics", {}),
            )
        if not any(k in params for k in ("set", "append", "remove", "body", "path", "method", "status")):
            return None
        common: dict[str, Any] = {
            "set_headers": params.get("set", {}),
            "append_headers": params.get("append", {}),
            "remove_headers": params.get("remove", []),
            "body": params.get("body"),
            "analytics_metadata": params.get("analytics", {}),
        }
        if isinstance(ctx, RequestContext):
            return UpstreamRequestModifications(
                path=params.get("path"), method=params.get("method"), **common
            )
        return UpstreamResponseModifications(status_code=params.get("status"), **common)

    def on_request(self, ctx: RequestContext, params: dict[str, Any]) -> RequestAction:
        result: RequestAction = self._act(ctx, params)
        return result

    def on_response(self, ctx: ResponseContext, params: dict[str, Any]) -> ResponseAction:
        result: ResponseAction = self._act(ctx, params)
        return result


def get_policy(metadata: PolicyMetadata, params: dict[str, Any]) -> Policy:
    return Scripted(metadata, params)
