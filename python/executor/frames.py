"""The wire format between the engine and the executor: length-prefixed protobuf frames.

One frame is a 5-byte header, the payload's length (4 bytes, big-endian) and its kind (1 byte),
then the payload: an ``executor.proto`` message serialized as protobuf (empty for GOING_AWAY).
Execute and chunk calls and health checks share one connection: calls are correlated by ``call_id``,
health answers come back in the order the requests were sent. The engine side is
``src/python/frames.ts``; both must agree on every constant here.
"""

from __future__ import annotations

import asyncio
import struct
from enum import IntEnum

HEADER = struct.Struct(">IB")
"""Payload length, message kind."""


class Kind(IntEnum):
    """What a frame's payload is."""

    EXECUTE_REQUEST = 1
    EXECUTE_RESPONSE = 2
    HEALTH_REQUEST = 3
    HEALTH_RESPONSE = 4
    GOING_AWAY = 5
    """Sent by the executor before it closes a connection because it is shutting down."""
    CHUNK_REQUEST = 6
    """One chunk of a streamed body for a batch of streaming policies."""
    CHUNK_RESPONSE = 7


class FrameError(Exception):
    """The peer broke the framing (unknown kind, oversized frame): the connection must close."""


def encode(kind: Kind, payload: bytes) -> bytes:
    """One frame."""
    return HEADER.pack(len(payload), kind) + payload


async def read_frame(reader: asyncio.StreamReader, max_bytes: int) -> tuple[Kind, bytes] | None:
    """The next frame, or None at a clean end of stream (between frames).

    Raises:
        FrameError: for a frame larger than ``max_bytes`` or of an unknown kind.
        asyncio.IncompleteReadError: when the stream ends inside a frame.
    """
    try:
        header = await reader.readexactly(HEADER.size)
    except asyncio.IncompleteReadError as error:
        if not error.partial:
            return None
        raise
    length, kind = HEADER.unpack(header)
    if length > max_bytes:
        raise FrameError(f"a frame of {length} bytes is over the {max_bytes}-byte limit")
    return check_kind(kind), await reader.readexactly(length)


_KINDS = {kind.value: kind for kind in Kind}


def check_kind(kind: int) -> Kind:
    """The frame kind numbered ``kind``; ``FrameError`` for a number no kind has."""
    known = _KINDS.get(kind)
    if known is None:
        raise FrameError(f"unknown frame kind {kind}")
    return known
