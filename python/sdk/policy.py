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
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from sdk.headers import HeaderInput, Headers, HeaderValue

__all__ = [
    "Body",
    "HeaderInput",
    "HeaderValue",
    "Headers",
    "ImmediateResponse",
    "Policy",
    "PolicyMetadata",
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

    def close(self) -> None:
        """Releases what the instance holds (connections, files, threads).

        Called once when the executor drops the instance from its cache or shuts down, after
        its last call has returned. Errors are logged, never fatal. The default does nothing.
        """
