"""sse-token-count: counts the tokens of an LLM's server-sent event stream, optionally with a limit.

The engine hands the policy whole SSE events (``streaming: accumulate: sse-event``), so each
chunk holds one or more complete events. The policy keeps nothing between chunks itself:
the running count lives in the exchange's shared metadata, which the engine carries from
one chunk to the next (and shows to later policies). Parameters are checked once, in the
constructor.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

from sdk.policy import (
    ChunkAction,
    ChunkContext,
    EndExchange,
    Policy,
    PolicyMetadata,
    ReplaceChunk,
    RequestAction,
    RequestContext,
    ResponseAction,
    ResponseContext,
)

Path = tuple[str | int, ...]
LIMIT_EVENT = "tollgate.token_limit"
# The schema's defaults (the engine applies them; these serve the policy's own tests).
DEFAULT_TEXT_PATHS = ["choices.0.delta.content", "choices.0.text", "delta.text"]
DEFAULT_USAGE_PATHS = ["usage.completion_tokens", "usage.output_tokens"]


def _path(dotted: str) -> Path:
    return tuple(int(part) if part.isdigit() else part for part in dotted.split("."))


def _lookup(document: object, path: Path) -> object:
    """The value at ``path`` in a parsed JSON document, or None."""
    value = document
    for part in path:
        if isinstance(part, int) and isinstance(value, list):
            value = value[part] if part < len(value) else None
        elif isinstance(value, dict):
            value = value.get(str(part))
        else:
            return None
    return value


def _events(chunk: bytes) -> Iterator[tuple[str, str | None]]:
    """Each event of the chunk: its raw text (with its terminating blank line) and its data, if any."""
    text = chunk.decode("utf-8", errors="replace").replace("\r\n", "\n")
    for raw in text.split("\n\n"):
        if not raw.strip():
            continue
        data = [
            line[5:].removeprefix(" ")
            for line in raw.split("\n")
            if line.startswith("data:") or line == "data"
        ]
        yield raw + "\n\n", "\n".join(data) if data else None


def _is_event_stream(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() == "text/event-stream"


class SseTokenCountPolicy(Policy):
    """Counts events, streamed characters and tokens into ``metadata[metadataKey]``."""

    def __init__(self, metadata: PolicyMetadata, params: dict[str, Any]):
        """Checks and keeps the parameters."""
        super().__init__(metadata, params)
        self.max_tokens = int(params.get("maxTokens", 0))
        self.text_paths = [_path(p) for p in params.get("textPaths", DEFAULT_TEXT_PATHS)]
        self.usage_paths = [_path(p) for p in params.get("usagePaths", DEFAULT_USAGE_PATHS)]
        self.chars_per_token = float(params.get("charsPerToken", 4))
        self.key = str(params.get("metadataKey", "sseTokens"))
        if self.max_tokens < 0 or self.chars_per_token <= 0 or not self.text_paths:
            raise ValueError("maxTokens must be >= 0, charsPerToken > 0 and textPaths not empty")

    def on_request(self, ctx: RequestContext, params: dict[str, Any]) -> RequestAction:
        """Nothing to do on the request."""
        return None

    def on_response(self, ctx: ResponseContext, params: dict[str, Any]) -> ResponseAction:
        """Nothing to do on the response headers."""
        return None

    def _count(self, state: dict[str, Any], data: str | None) -> None:
        state["events"] += 1
        if data is None or data == "[DONE]":
            return
        try:
            document = json.loads(data)
        except ValueError:
            return  # not JSON: an event, but no text to count
        for path in self.text_paths:
            text = _lookup(document, path)
            if isinstance(text, str):
                state["characters"] += len(text)
                break
        for path in self.usage_paths:
            usage = _lookup(document, path)
            if isinstance(usage, int) and not isinstance(usage, bool):
                state["reported"] = usage
                break
        reported = state["reported"]
        estimate = math.ceil(state["characters"] / self.chars_per_token)
        state["tokens"] = reported if isinstance(reported, int) else estimate

    def _limit_event(self, tokens: int) -> str:
        body = {
            "error": "token_limit_exceeded",
            "message": f"the response went over its limit of {self.max_tokens} tokens",
            "limit": self.max_tokens,
            "tokens": tokens,
        }
        return f"event: {LIMIT_EVENT}\ndata: {json.dumps(body, separators=(',', ':'))}\n\n"

    def on_response_chunk(self, ctx: ChunkContext, chunk: bytes, params: dict[str, Any]) -> ChunkAction:
        """Counts the chunk's events; past the limit, sends an error event, then ends the stream."""
        if not _is_event_stream(ctx.response_headers.get("content-type")):
            return None
        state = ctx.metadata.get(self.key)
        if not isinstance(state, dict):
            state = {"events": 0, "characters": 0, "tokens": 0, "reported": None, "limited": False}
            ctx.metadata[self.key] = state
        if state["limited"]:
            return EndExchange()
        forwarded: list[str] = []
        for raw, data in _events(chunk):
            self._count(state, data)
            if self.max_tokens and state["tokens"] > self.max_tokens:
                state["limited"] = True
                return ReplaceChunk("".join(forwarded) + self._limit_event(state["tokens"]))
            forwarded.append(raw)
        return None


def get_policy(metadata: PolicyMetadata, params: dict[str, Any]) -> Policy:
    """Creates an instance for one set of parameters."""
    return SseTokenCountPolicy(metadata, params)
