"""The working copy of one HTTP exchange while a batch runs.

Each policy of a batch must see the changes of the policies before it, exactly as if the
engine had called them one by one. The exchange holds the request (and, in the response
phase, the response) as received, applies every policy's checked changes in the engine's
order, and builds the fresh read-only contexts each policy is given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from executor.translate import Changes
from sdk.policy import Body, Headers, RequestContext, ResponseContext, SharedContext
from tollgate.executor.v1 import executor_pb2 as pb

HeaderFields = dict[str, list[str]]
"""Lower-case header name -> values, one per field line, in first-seen order."""


def header_fields(headers: Iterable[pb.Header]) -> HeaderFields:
    """Header field lines from the proto, names lower-cased, order and repeats kept."""
    fields: HeaderFields = {}
    for header in headers:
        fields.setdefault(header.name.lower(), []).append(header.value)
    return fields


@dataclass
class BodyState:
    """A buffered body and whether trailers follow it."""

    content: bytes
    end_of_stream: bool

    def view(self) -> Body:
        """The SDK's view of this body."""
        return Body(content=self.content, end_of_stream=self.end_of_stream, present=True)


def _body(content: bytes, present: bool, end_of_stream: bool) -> BodyState | None:
    return BodyState(content, end_of_stream) if present else None


def _apply_headers(fields: HeaderFields, changes: Changes) -> None:
    for name in changes.remove:
        fields.pop(name, None)
    for name, values in changes.set:
        fields[name] = list(values)
    for name, values in changes.append:
        fields.setdefault(name, []).extend(values)


def _replace_body(current: BodyState | None, content: bytes) -> BodyState:
    # Like the engine: a new body keeps the end-of-stream flag of the one it replaces.
    return BodyState(content, current.end_of_stream if current is not None else True)


@dataclass
class Exchange:
    """Request and response data of one call, updated as the batch's policies run."""

    request_headers: HeaderFields
    request_body: BodyState | None
    path: str
    method: str
    authority: str
    scheme: str
    response_headers: HeaderFields
    response_body: BodyState | None
    status: int

    @classmethod
    def from_proto(cls, request: pb.RequestData, response: pb.ResponseData | None) -> Exchange:
        """The exchange as the engine sent it (``response`` only in the response phase)."""
        return cls(
            request_headers=header_fields(request.headers),
            request_body=_body(request.body, request.body_present, request.end_of_stream),
            path=request.path,
            method=request.method,
            authority=request.authority,
            scheme=request.scheme,
            response_headers=header_fields(response.headers) if response else {},
            response_body=(
                _body(response.body, response.body_present, response.end_of_stream) if response else None
            ),
            status=response.status if response else 0,
        )

    def request_context(self, shared: SharedContext) -> RequestContext:
        """A fresh context for ``on_request``."""
        return RequestContext(
            shared=shared,
            headers=Headers.of_fields(self.request_headers),
            body=self.request_body.view() if self.request_body else None,
            path=self.path,
            method=self.method,
            authority=self.authority,
            scheme=self.scheme,
        )

    def response_context(self, shared: SharedContext) -> ResponseContext:
        """A fresh context for ``on_response``."""
        return ResponseContext(
            shared=shared,
            request_headers=Headers.of_fields(self.request_headers),
            request_body=self.request_body.view() if self.request_body else None,
            request_path=self.path,
            request_method=self.method,
            response_headers=Headers.of_fields(self.response_headers),
            response_body=self.response_body.view() if self.response_body else None,
            response_status=self.status,
        )

    def apply_request(self, changes: Changes) -> None:
        """Applies request-phase changes: headers (remove, set, append), body, path, method."""
        _apply_headers(self.request_headers, changes)
        if changes.body is not None:
            self.request_body = _replace_body(self.request_body, changes.body)
        if changes.path is not None:
            self.path = changes.path
        if changes.method is not None:
            self.method = changes.method

    def apply_response(self, changes: Changes) -> None:
        """Applies response-phase changes: headers (remove, set, append), body, status."""
        _apply_headers(self.response_headers, changes)
        if changes.body is not None:
            self.response_body = _replace_body(self.response_body, changes.body)
        if changes.status is not None:
            self.status = changes.status
