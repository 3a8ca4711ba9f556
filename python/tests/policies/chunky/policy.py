"""A streaming policy driven by its parameters, for the chunk path's tests.

It appends what it saw to ``metadata["chunks"]`` (its label, the chunk as text, the chunk
context and the thread it ran on), then does what ``params`` say: append text to the chunk,
repeat it, replace it, hold it back, end the exchange (with or without a response), raise, sleep,
return something invalid, or put a non-JSON value in the metadata. ``count`` keeps a
per-exchange counter in the metadata, the way a real streaming policy keeps state across
chunks.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sdk.policy import (
    ChunkAction,
    ChunkContext,
    EndExchange,
    ImmediateResponse,
    Policy,
    PolicyMetadata,
    ReplaceChunk,
    RequestAction,
    RequestContext,
    ResponseAction,
    ResponseContext,
)


async def _not_synchronous() -> None:
    """What an ``async def on_response_chunk`` would return."""


class Chunky(Policy):
    def on_request(self, ctx: RequestContext, params: dict[str, Any]) -> RequestAction:
        return None

    def on_response(self, ctx: ResponseContext, params: dict[str, Any]) -> ResponseAction:
        return None

    def _act(self, phase: str, ctx: ChunkContext, chunk: bytes, params: dict[str, Any]) -> Any:
        label = params.get("label", "?")
        ctx.metadata.setdefault("chunks", []).append(
            {
                "label": label,
                "phase": phase,
                "data": chunk.decode("utf-8", "replace"),
                "index": ctx.chunk_index,
                "end": ctx.end_of_stream,
                "requestHeaders": ctx.request_headers.to_dict(),
                "path": ctx.request_path,
                "method": ctx.request_method,
                "status": ctx.response_status,
                "responseHeaders": ctx.response_headers.to_dict(),
                "requestId": ctx.shared.request_id,
                "thread": threading.current_thread().name,
            }
        )
        if params.get("count"):
            counts = ctx.metadata.setdefault("counts", {})
            counts[label] = counts.get(label, 0) + 1
        if "metadataNotJson" in params:
            ctx.metadata[params["metadataNotJson"]] = {1, 2, 3}
        if "sleep" in params:
            time.sleep(params["sleep"])
        if "raise" in params:
            raise RuntimeError(params["raise"])
        if "returnValue" in params:
            if params["returnValue"] == "coroutine":
                return _not_synchronous()
            return {
                "int": 42,
                "immediate": ImmediateResponse(status_code=403),
                "replaceNone": ReplaceChunk(None),  # type: ignore[arg-type]
                "replaceInt": ReplaceChunk(7),  # type: ignore[arg-type]
                "endBadStatus": EndExchange(ImmediateResponse(status_code=99)),
                "endNotResponse": EndExchange("403"),  # type: ignore[arg-type]
            }[params["returnValue"]]
        if "end" in params:
            spec = params["end"]
            if spec is None:
                return EndExchange()
            return EndExchange(
                ImmediateResponse(
                    status_code=spec.get("status", 500),
                    headers=spec.get("headers", {}),
                    body=spec.get("body"),
                )
            )
        if "append" in params:
            return ReplaceChunk(chunk + params["append"].encode("utf-8"))
        if "repeat" in params:
            return ReplaceChunk(chunk * params["repeat"])
        if "replace" in params:
            return ReplaceChunk(params["replace"])
        return None

    def on_request_chunk(self, ctx: ChunkContext, chunk: bytes, params: dict[str, Any]) -> ChunkAction:
        result: ChunkAction = self._act("request", ctx, chunk, params)
        return result

    def on_response_chunk(self, ctx: ChunkContext, chunk: bytes, params: dict[str, Any]) -> ChunkAction:
        result: ChunkAction = self._act("response", ctx, chunk, params)
        return result


def get_policy(metadata: PolicyMetadata, params: dict[str, Any]) -> Policy:
    return Chunky(metadata, params)
