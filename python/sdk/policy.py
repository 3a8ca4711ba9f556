"""The Tollgate Python policy SDK: what a policy receives and what it may return.

A Python policy is a directory with a ``policy.py`` that defines
``get_policy(metadata, params) -> Policy``. The executor calls that factory once per
distinct ``(name, version, params)`` and then calls :meth:`Policy.on_request` or
:meth:`Policy.on_response` for every request the policy is attached to, from several
threads at once: keep per-request state in locals, not on ``self``. Which of the two runs
is decided by ``processingMode`` in the policy's ``policy-definition.yaml``, never by code.

Returning ``None`` lets the request continue unchanged. Within one action, changes are
applied in this order: ``remove_headers``, then ``set_headers``, then ``append_headers``,
then body, path, method or status. The next policy of the chain sees the result.

A policy whose definition streams a body (``requestBodyMode: STREAM`` or
``responseBodyMode: STREAM``) implements :meth:`Policy.on_request_chunk` or
:meth:`Policy.on_response_chunk` instead of reading a buffered body: it is called once per
chunk, after the header handlers, and returns ``None`` (forward the chunk),
:class:`ReplaceChunk` or :class:`EndExchange`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from sdk.headers import HeaderInput, Headers, HeaderValue

__all__ = [
    "Body",
    "ChunkAction",
    "ChunkContext",
    "EndExchange",
    "HeaderInput",
    "HeaderValue",
    "Headers",
    "ImmediateResponse",
    "Policy",
    "PolicyMetadata",
    "ReplaceChunk",
    "RequestAction",
    "RequestContext",
    "ResponseAction",
    "ResponseContext",
    "SharedContext",
    "UpstreamRequestModifications",
    "UpstreamResponseModifications",
]


# ──────────────── Context objects ────────────────


@dataclass
class SharedContext:
    """State shared by every policy of one request, from the request to the response phase.

    ``metadata`` is how policies pass values to later policies of the same request (Python
    or TypeScript): it must hold JSON values only (dict with str keys, list, str, int,
    float, bool, None). A policy that stores anything else fails with an execution error.
    """

    project_id: str = ""
    request_id: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    api_id: str = ""
    api_name: str = ""
    api_version: str = ""
    api_kind: str = ""
    api_context: str = ""
    operation_path: str = ""
    auth_context: dict[str, str] = field(default_factory=dict)
    route_name: str = ""
    """Name of the Envoy route the request matched (it selects the policy chain)."""


@dataclass
class Body:
    """A whole (buffered) HTTP body.

    Policies receive one when their definition's ``processingMode`` buffers that body
    (``requestBodyMode: BUFFER`` / ``responseBodyMode: BUFFER``); otherwise the context's body
    is ``None`` unless an earlier policy of the chain had it buffered.
    """

    content: bytes | None = None
    end_of_stream: bool = False
    present: bool = False

    def text(self, encoding: str = "utf-8") -> str:
        """The body decoded as text (UTF-8 unless told otherwise); empty when there is none."""
        return (self.content or b"").decode(encoding)

    def json(self) -> Any:
        """The body parsed as JSON; raises ``ValueError`` when it is not JSON."""
        return json.loads(self.content or b"")


def _as_headers(value: Headers | HeaderInput) -> Headers:
    return value if isinstance(value, Headers) else Headers(value)


@dataclass
class RequestContext:
    """The request as ``on_request`` sees it, including earlier policies' changes.

    ``headers`` may be given as a plain dict when building a context by hand (in a policy's
    own tests); it is turned into :class:`Headers`.
    """

    shared: SharedContext
    headers: Headers
    body: Body | None = None
    path: str = ""
    """The ``:path`` pseudo-header: path and query."""
    method: str = ""
    authority: str = ""
    scheme: str = ""

    def __post_init__(self) -> None:
        self.headers = _as_headers(self.headers)


@dataclass
class ResponseContext:
    """The upstream's response, and the request it answers, as ``on_response`` sees them."""

    shared: SharedContext
    request_headers: Headers = field(default_factory=Headers)
    request_body: Body | None = None
    request_path: str = ""
    request_method: str = ""
    response_headers: Headers = field(default_factory=Headers)
    response_body: Body | None = None
    response_status: int = 200

    def __post_init__(self) -> None:
        self.request_headers = _as_headers(self.request_headers)
        self.response_headers = _as_headers(self.response_headers)


@dataclass
class ChunkContext:
    """What a chunk handler knows about the exchange besides the chunk itself.

    A fresh context is made for every chunk; what must survive from one chunk to the next
    belongs in :attr:`metadata` (instances are shared between exchanges and threads). In
    the request phase ``response_status`` is 0 and ``response_headers`` is empty.

    Example:
        Count the bytes of a response across its chunks, and stop it past a limit::

            def on_response_chunk(self, ctx, chunk, params):
                seen = ctx.metadata.get("bytes", 0) + len(chunk)
                ctx.metadata["bytes"] = seen
                if seen > params["limit"]:
                    return EndExchange()
                return None
    """

    shared: SharedContext
    end_of_stream: bool = False
    """True for the last chunk of this body (which may be empty)."""
    chunk_index: int = 0
    """0 for the first chunk of this body, then 1, 2, ..."""
    request_headers: Headers = field(default_factory=Headers)
    request_path: str = ""
    request_method: str = ""
    response_status: int = 0
    response_headers: Headers = field(default_factory=Headers)

    def __post_init__(self) -> None:
        self.request_headers = _as_headers(self.request_headers)
        self.response_headers = _as_headers(self.response_headers)

    @property
    def metadata(self) -> dict[str, Any]:
        """The exchange's shared metadata (``shared.metadata``), readable and writable across chunks.

        Values must be JSON values, as for every policy.
        """
        return self.shared.metadata


# ──────────────── Actions ────────────────


@dataclass
class UpstreamRequestModifications:
    """Continue to the upstream with changes to the request.

    ``set_headers`` replaces every value of a header; a list value sets several field
    lines. ``append_headers`` adds field lines after the existing ones (a plain string is
    one line). Header names are case-insensitive. ``body`` may be bytes or text (sent as
    UTF-8); the engine rewrites ``content-length`` to match. ``None`` means "no change".
    """

    set_headers: Mapping[str, HeaderValue] = field(default_factory=dict)
    remove_headers: list[str] = field(default_factory=list)
    append_headers: Mapping[str, HeaderValue] = field(default_factory=dict)
    body: bytes | str | None = None
    path: str | None = None
    method: str | None = None
    analytics_metadata: dict[str, Any] = field(default_factory=dict)
    """JSON values for Envoy's access log (dynamic metadata in the ``tollgate`` namespace)."""


@dataclass
class ImmediateResponse:
    """Answer the client now: the rest of the chain is skipped.

    In the request phase the upstream is never called. Allowed in both phases. The status
    must be from 200 to 599.
    """

    status_code: int = 500
    headers: Mapping[str, HeaderValue] = field(default_factory=dict)
    body: bytes | str | None = None
    analytics_metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class UpstreamResponseModifications:
    """Continue to the client with changes to the upstream's response.

    Same header and body rules as :class:`UpstreamRequestModifications`; ``status_code``
    (200 to 599) replaces the status, ``None`` keeps it.
    """

    set_headers: Mapping[str, HeaderValue] = field(default_factory=dict)
    remove_headers: list[str] = field(default_factory=list)
    append_headers: Mapping[str, HeaderValue] = field(default_factory=dict)
    body: bytes | str | None = None
    status_code: int | None = None
    analytics_metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReplaceChunk:
    """Forward ``data`` instead of the chunk received (text is sent as UTF-8).

    Empty data holds the chunk back: nothing is forwarded for it. The next streaming
    policy of the chain receives ``data``. The engine removes ``content-length`` when a
    streamed body may change size.

    Example:
        ``return ReplaceChunk(chunk.upper())``, or ``return ReplaceChunk(b"")`` to drop it.
    """

    data: bytes | str


@dataclass(frozen=True)
class EndExchange:
    """End the exchange at this chunk; the chunk and the rest of the body are not forwarded.

    Before the response headers went out to the client (every request chunk) the exchange is
    answered with ``response`` (without one, a 400 with a JSON body); on a response chunk the
    headers are already on their way, so the stream to the client is terminated. The rest of
    the chain does not see this chunk.

    Example:
        ``return EndExchange(ImmediateResponse(status_code=413, body=b"too many tokens"))``
    """

    response: ImmediateResponse | None = None


ChunkAction: TypeAlias = ReplaceChunk | EndExchange | None
"""What ``on_request_chunk`` and ``on_response_chunk`` may return (``None``: forward as is)."""

RequestAction: TypeAlias = UpstreamRequestModifications | ImmediateResponse | None
"""What ``on_request`` may return."""

ResponseAction: TypeAlias = UpstreamResponseModifications | ImmediateResponse | None
"""What ``on_response`` may return."""


# ──────────────── Policy metadata ────────────────


@dataclass
class PolicyMetadata:
    """Where a policy instance is attached; given to ``get_policy`` when it is created.

    Instances are shared by every route that uses the same policy version with the same
    parameters, so this describes the route that caused the instance to be created.
    """

    route_name: str = ""
    api_id: str = ""
    api_name: str = ""
    api_version: str = ""
    attached_to: str = ""
    """``"api"`` or ``"route"``."""
    policy_name: str = ""
    policy_version: str = ""
    """Full version of the policy, e.g. ``v1.0.0``."""


# ──────────────── Policy ABC ────────────────


class Policy:
    """Base class of every Python policy.

    Override what the policy needs: :meth:`on_request`, :meth:`on_response` (both pass the
    request through unchanged by default) and :meth:`close`. Which phases run is decided by
    ``processingMode`` in ``policy-definition.yaml``, not here. Instances are cached and
    shared between threads: do validation and expensive preparation (compiling patterns,
    loading data) in ``__init__``, and keep the handlers free of per-request state on
    ``self``.
    """

    def __init__(self, metadata: PolicyMetadata, params: dict[str, Any]):
        """Called once per distinct ``(name, version, params)``.

        Args:
            metadata: Route/API metadata for this instance.
            params: Merged system and user parameters, validated against the policy's schema.
        """
        self.metadata = metadata
        self.params = params

    def on_request(self, ctx: RequestContext, params: dict[str, Any]) -> RequestAction:
        """Runs in the request phase; the default lets the request through unchanged.

        Args:
            ctx: Request headers, body (when buffered), path, method and shared context.
            params: The instance's parameters (same values as ``self.params``).

        Returns:
            ``None`` to continue unchanged, :class:`UpstreamRequestModifications` to change
            the request, or :class:`ImmediateResponse` to answer the client now.
        """
        return None

    def on_response(self, ctx: ResponseContext, params: dict[str, Any]) -> ResponseAction:
        """Runs in the response phase; the default lets the response through unchanged.

        Args:
            ctx: The request and the upstream's response headers, body and status.
            params: The instance's parameters (same values as ``self.params``).

        Returns:
            ``None`` to continue unchanged, :class:`UpstreamResponseModifications` to change
            the response, or :class:`ImmediateResponse` to replace it.
        """
        return None

    def on_request_chunk(self, ctx: ChunkContext, chunk: bytes, params: dict[str, Any]) -> ChunkAction:
        """Runs for each chunk of a streamed request body (``requestBodyMode: STREAM``).

        The base class has no chunk handling: a policy that declares STREAM and does not
        override this fails on its first chunk (by its ``onFailure`` rule), rather than
        letting the body pass unseen.

        Args:
            ctx: End of stream, chunk index, request headers and the shared metadata.
            chunk: The chunk's bytes, after the previous streaming policies' changes; whole
                lines or SSE events when the definition asks the engine to accumulate them.
            params: The instance's parameters (same values as ``self.params``).

        Returns:
            ``None`` to forward the chunk as is, :class:`ReplaceChunk` to forward other bytes
            (or none), or :class:`EndExchange` to stop the exchange here.

        Example:
            Reject uploads that contain a forbidden marker::

                def on_request_chunk(self, ctx, chunk, params):
                    if b"DROP TABLE" in chunk:
                        return EndExchange(ImmediateResponse(status_code=400, body=b"rejected"))
                    return None
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not implement on_request_chunk, but its definition streams "
            "the request body"
        )

    def on_response_chunk(self, ctx: ChunkContext, chunk: bytes, params: dict[str, Any]) -> ChunkAction:
        """Runs for each chunk of a streamed response body (``responseBodyMode: STREAM``).

        Same contract as :meth:`on_request_chunk`; ``ctx`` also has the response status and
        headers. An :class:`EndExchange` after the first chunk went out terminates the stream.

        Example:
            Upper-case every server-sent event::

                def on_response_chunk(self, ctx, chunk, params):
                    return ReplaceChunk(chunk.upper())
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not implement on_response_chunk, but its definition streams "
            "the response body"
        )

    def close(self) -> None:
        """Releases what the instance holds (connections, files, threads).

        Called once when the executor drops the instance from its cache or shuts down, after
        its last call has returned. Errors are logged, never fatal. The default does nothing.
        """
