"""Unit tests of the SDK's streaming part: chunk context, chunk actions, default handlers."""

from __future__ import annotations

from typing import Any

import pytest

import sdk
from sdk.policy import (
    ChunkAction,
    ChunkContext,
    EndExchange,
    Headers,
    ImmediateResponse,
    Policy,
    PolicyMetadata,
    ReplaceChunk,
    RequestAction,
    RequestContext,
    ResponseAction,
    ResponseContext,
    SharedContext,
)


class HeadersOnly(Policy):
    def on_request(self, ctx: RequestContext, params: dict[str, Any]) -> RequestAction:
        return None

    def on_response(self, ctx: ResponseContext, params: dict[str, Any]) -> ResponseAction:
        return None


def test_the_streaming_names_are_exported_from_sdk() -> None:
    for name in ("ChunkAction", "ChunkContext", "EndExchange", "ReplaceChunk"):
        assert name in sdk.__all__
        assert getattr(sdk, name) is getattr(sdk.policy, name)


def test_chunk_context_defaults_metadata_and_plain_dict_headers() -> None:
    shared = SharedContext(metadata={"n": 1})
    ctx = ChunkContext(shared=shared, request_headers={"Accept": "text/event-stream"})  # type: ignore[arg-type]
    assert (ctx.end_of_stream, ctx.chunk_index, ctx.response_status) == (False, 0, 0)
    assert isinstance(ctx.request_headers, Headers)
    assert ctx.request_headers["accept"] == "text/event-stream"
    assert len(ctx.response_headers) == 0
    assert ctx.metadata is shared.metadata
    ctx.metadata["n"] = 2
    assert shared.metadata == {"n": 2}


def test_chunk_actions() -> None:
    assert ReplaceChunk(b"x").data == b"x"
    assert ReplaceChunk("text").data == "text"
    assert EndExchange().response is None
    answer = ImmediateResponse(status_code=413)
    assert EndExchange(answer).response is answer
    with pytest.raises(AttributeError):
        ReplaceChunk(b"x").data = b"y"  # type: ignore[misc]


def test_a_policy_without_chunk_handlers_refuses_chunks() -> None:
    policy = HeadersOnly(PolicyMetadata(), {})
    ctx = ChunkContext(shared=SharedContext())
    with pytest.raises(NotImplementedError, match="HeadersOnly does not implement on_request_chunk"):
        policy.on_request_chunk(ctx, b"x", {})
    with pytest.raises(NotImplementedError, match="streams the response body"):
        policy.on_response_chunk(ctx, b"x", {})


def test_a_streaming_policy_overrides_the_handlers() -> None:
    class Upper(HeadersOnly):
        def on_response_chunk(self, ctx: ChunkContext, chunk: bytes, params: dict[str, Any]) -> ChunkAction:
            return ReplaceChunk(chunk.upper()) if chunk else None

    policy = Upper(PolicyMetadata(), {})
    ctx = ChunkContext(shared=SharedContext(), end_of_stream=True, chunk_index=3, response_status=200)
    assert policy.on_response_chunk(ctx, b"data: hi", {}) == ReplaceChunk(b"DATA: HI")
    assert policy.on_response_chunk(ctx, b"", {}) is None
