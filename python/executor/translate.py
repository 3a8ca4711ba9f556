"""Turns what a policy returned into the proto the engine receives, checking it first.

The engine checks every action the same way before applying it (header names and values,
path, method, status range). The executor must reject exactly the same actions: a batch
stops where the engine would stop, and an action the engine would reject has to fail here,
as that policy's error, so the rest of the batch follows the policy's failure rule.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import struct_pb2

from executor.jsonvalue import NotJsonError, dict_to_struct
from sdk.headers import header_values
from sdk.policy import (
    EndExchange,
    ImmediateResponse,
    ReplaceChunk,
    UpstreamRequestModifications,
    UpstreamResponseModifications,
)
from tollgate.executor.v1 import executor_pb2 as pb

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9a-z-]+$")
_BAD_VALUE = re.compile(r"[\r\n\0]")


class InvalidActionError(Exception):
    """A policy returned something the engine cannot apply; reported as an execution error."""


@dataclass(frozen=True)
class Changes:
    """Checked modifications, names lower-cased; applied in field order (remove, set, append)."""

    remove: tuple[str, ...] = ()
    set: tuple[tuple[str, tuple[str, ...]], ...] = ()
    append: tuple[tuple[str, tuple[str, ...]], ...] = ()
    body: bytes | None = None
    path: str | None = None
    method: str | None = None
    status: int | None = None
    analytics: struct_pb2.Struct | None = None

    def to_proto(self) -> pb.Modifications:
        """The ``Modifications`` message (same name twice in ``set_headers`` = multi-valued set)."""
        message = pb.Modifications(
            remove_headers=self.remove,
            set_headers=[pb.Header(name=name, value=v) for name, values in self.set for v in values],
            append_headers=[pb.Header(name=name, value=v) for name, values in self.append for v in values],
        )
        if self.body is not None:
            message.body = self.body
        if self.path is not None:
            message.path = self.path
        if self.method is not None:
            message.method = self.method
        if self.status is not None:
            message.status_code = self.status
        if self.analytics is not None:
            message.analytics_metadata.CopyFrom(self.analytics)
        return message


@dataclass(frozen=True)
class Immediate:
    """A checked immediate response."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    analytics: struct_pb2.Struct | None = field(default=None)

    def to_proto(self) -> pb.ImmediateResponse:
        """The ``ImmediateResponse`` message."""
        message = pb.ImmediateResponse(
            status_code=self.status,
            headers=[pb.Header(name=name, value=value) for name, value in self.headers],
            body=self.body,
        )
        if self.analytics is not None:
            message.analytics_metadata.CopyFrom(self.analytics)
        return message


def check_header_name(name: object) -> str:
    """``name`` lower-cased, if it is a valid HTTP field name (pseudo-headers are not)."""
    if not isinstance(name, str):
        raise InvalidActionError(f"header name {name!r}: must be a string")
    lower = name.lower()
    if not _TOKEN.match(lower):
        if lower.startswith(":"):
            raise InvalidActionError(
                f"header {name}: pseudo-headers are changed with path, method or status_code, not as headers"
            )
        raise InvalidActionError(f"header {name!r}: not a valid header name")
    return lower


def _check_values(name: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, str | list | tuple):
        raise InvalidActionError(f"header {name}: value must be a string or a list of strings")
    values = tuple(header_values(value))
    for item in values:
        if not isinstance(item, str):
            raise InvalidActionError(f"header {name}: value {item!r} is not a string")
        if _BAD_VALUE.search(item):
            raise InvalidActionError(f"header {name}: value contains CR, LF or NUL")
    return values


def _check_record(record: object, what: str) -> list[tuple[str, tuple[str, ...]]]:
    if type(record) is not dict and not isinstance(record, Mapping):  # the ABC check is the slow one
        raise InvalidActionError(f"{what} must be a mapping of header name to value(s)")
    return [(check_header_name(raw), _check_values(str(raw), value)) for raw, value in record.items()]


def _check_status(status: object, what: str) -> int:
    if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
        raise InvalidActionError(f"{what} {status!r}: must be an integer from 200 to 599")
    return status


def _check_body(body: object) -> bytes | None:
    if body is None or isinstance(body, bytes):
        return body
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    raise InvalidActionError(f"body must be bytes or str, not {type(body).__name__}")


def _check_analytics(analytics: object) -> struct_pb2.Struct | None:
    if not analytics:
        return None
    try:
        return dict_to_struct(analytics, "analytics_metadata")
    except NotJsonError as error:
        raise InvalidActionError(str(error)) from None


def _header_changes(action: UpstreamRequestModifications | UpstreamResponseModifications) -> dict[str, Any]:
    """The checked fields of ``Changes`` that both phases have."""
    if not isinstance(action.remove_headers, list | tuple):
        raise InvalidActionError("remove_headers must be a list of header names")
    remove = [check_header_name(name) for name in action.remove_headers]
    # One name given twice in a dict (different case) behaves as two successive sets: the last
    # wins. An empty list removes the header, which the proto expresses as a removal.
    to_set: dict[str, tuple[str, ...]] = {}
    for name, values in _check_record(action.set_headers, "set_headers"):
        to_set[name] = values
        if not values:
            remove.append(name)
    to_append: dict[str, tuple[str, ...]] = {}
    for name, values in _check_record(action.append_headers, "append_headers"):
        to_append[name] = to_append.get(name, ()) + values
    return {
        "remove": tuple(dict.fromkeys(remove)),
        "set": tuple((name, values) for name, values in to_set.items() if values),
        "append": tuple((name, values) for name, values in to_append.items() if values),
        "body": _check_body(action.body),
        "analytics": _check_analytics(action.analytics_metadata),
    }


def _request_changes(action: UpstreamRequestModifications) -> Changes:
    changes = _header_changes(action)
    path: Any = action.path
    if path is not None and (
        not isinstance(path, str) or not path.startswith("/") or _BAD_VALUE.search(path)
    ):
        raise InvalidActionError(f"path {path!r}: must start with '/' and have no CR/LF/NUL")
    method: Any = action.method
    if method is not None and (not isinstance(method, str) or not _TOKEN.match(method.lower())):
        raise InvalidActionError(f"method {method!r}: not a valid method")
    return Changes(**changes, path=path, method=method)


def _response_changes(action: UpstreamResponseModifications) -> Changes:
    changes = _header_changes(action)
    status = None if action.status_code is None else _check_status(action.status_code, "status_code")
    return Changes(**changes, status=status)


def _immediate(action: ImmediateResponse) -> Immediate:
    status = _check_status(action.status_code, "immediate response status_code")
    headers = tuple(
        (name, value) for name, values in _check_record(action.headers, "headers") for value in values
    )
    return Immediate(
        status=status,
        headers=headers,
        body=_check_body(action.body) or b"",
        analytics=_check_analytics(action.analytics_metadata),
    )


@dataclass(frozen=True)
class Forward:
    """A chunk handler passed its chunk on unchanged."""


@dataclass(frozen=True)
class Replace:
    """A chunk handler passed other bytes on (possibly none)."""

    data: bytes


@dataclass(frozen=True)
class End:
    """A chunk handler ended the exchange, with a checked answer or without one."""

    response: Immediate | None = None


ChunkOutcome = Forward | Replace | End
"""A checked chunk action."""


def _refuse_coroutine(action: object) -> None:
    if inspect.iscoroutine(action):
        action.close()  # never awaited: close it so Python does not warn about it
        raise InvalidActionError(
            "the handler is a coroutine function; policies run on worker threads and must be synchronous"
        )


def read_chunk_action(action: object, phase: pb.Phase) -> ChunkOutcome:
    """Checks what ``on_request_chunk``/``on_response_chunk`` returned.

    ``None`` forwards the chunk. Raises ``InvalidActionError`` for anything else than
    ``ReplaceChunk`` (bytes or text) and ``EndExchange`` (with an ``ImmediateResponse`` or
    nothing).
    """
    if action is None:
        return Forward()
    _refuse_coroutine(action)
    if isinstance(action, ReplaceChunk):
        data = _check_body(action.data)
        if data is None:
            raise InvalidActionError("ReplaceChunk data must be bytes or str, not None (b'' holds it back)")
        return Replace(data)
    if isinstance(action, EndExchange):
        response: object = action.response  # typed, but policies are not type-checked at run time
        if response is None:
            return End()
        if not isinstance(response, ImmediateResponse):
            kind = type(response).__name__
            raise InvalidActionError(f"EndExchange response must be an ImmediateResponse or None, not {kind}")
        return End(_immediate(response))
    handler = "on_request_chunk" if phase == pb.PHASE_REQUEST else "on_response_chunk"
    hint = " (wrap it: EndExchange(ImmediateResponse(...)))" if isinstance(action, ImmediateResponse) else ""
    raise InvalidActionError(
        f"{handler} returned {type(action).__name__}; expected ReplaceChunk, EndExchange or None{hint}"
    )


def read_action(action: object, phase: pb.Phase) -> Changes | Immediate:
    """Checks what ``on_request``/``on_response`` returned for ``phase``.

    ``None`` means "continue unchanged". Raises ``InvalidActionError`` for anything the
    engine could not apply, including the other phase's modifications.
    """
    if action is None:
        return Changes()
    _refuse_coroutine(action)
    if isinstance(action, ImmediateResponse):
        return _immediate(action)
    request_phase = phase == pb.PHASE_REQUEST
    if request_phase and isinstance(action, UpstreamRequestModifications):
        return _request_changes(action)
    if not request_phase and isinstance(action, UpstreamResponseModifications):
        return _response_changes(action)
    handler = "on_request" if request_phase else "on_response"
    expected = "UpstreamRequestModifications" if request_phase else "UpstreamResponseModifications"
    raise InvalidActionError(
        f"{handler} returned {type(action).__name__}; expected {expected}, ImmediateResponse or None"
    )
