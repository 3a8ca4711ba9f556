"""Run a Python policy against a request in pytest, without Envoy or the engine.

The policy's actions are checked and applied by the executor's own code (the checks the
engine would make, in the engine's order), so a test sees what the upstream and the
client would receive. The result has the shape of the TypeScript harness's
(``@tollgate/sdk/testing``): ``upstream``, ``response``, ``immediate``, ``metadata``,
``analytics`` and ``trace``.

Parameters are passed to the policy as given: schema validation and defaults need the
policy's definition, which the TypeScript harness and ``tollgate run`` read (they also
run Python policies, in a real executor). Needs the Tollgate checkout's ``python/`` and
``src/gen/python/`` on the path, as pytest in this repository has them.

Example:
    .. code-block:: python

        from pathlib import Path
        from sdk.testing import load_policy, run_policy

        POLICY = load_policy(Path(__file__).parent)

        def test_sets_the_header() -> None:
            result = run_policy(POLICY, {"headerValue": "hi"}, request={"path": "/"})
            assert result.upstream is not None
            assert result.upstream.headers.get("x-hello") == "hi"
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias, cast

from executor.exchange import BodyState, Exchange
from executor.jsonvalue import dict_to_struct, struct_to_dict
from executor.loader import import_factory, package_name
from executor.translate import Changes, Immediate, read_action
from sdk.headers import HeaderInput, Headers
from sdk.policy import Policy, PolicyMetadata, SharedContext
from tollgate.executor.v1 import executor_pb2 as pb

__all__ = [
    "ClientResponse",
    "Decision",
    "ExchangeResult",
    "ImmediateResult",
    "PolicyFactory",
    "TestRequest",
    "TestResponse",
    "UpstreamRequest",
    "load_policy",
    "run_policy",
]

PolicyFactory: TypeAlias = Callable[[PolicyMetadata, dict[str, Any]], Policy]
"""A policy's ``get_policy``."""

BodyInput: TypeAlias = bytes | str | bool | int | float | list[Any] | dict[str, Any] | None
"""A body: bytes, text (sent as UTF-8), or any other JSON value (sent as its JSON text)."""

Phase: TypeAlias = Literal["request", "response"]


def _body_bytes(body: BodyInput) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body, separators=(",", ":")).encode()


@dataclass
class TestRequest:
    """The client's request; every field has a default."""

    __test__ = False  # not a pytest test class

    method: str = "GET"
    path: str = "/"
    authority: str = "api.example.com"
    scheme: str = "https"
    headers: HeaderInput = field(default_factory=dict)
    body: BodyInput = None
    """``None``: a request without a body."""
    request_id: str = "test-request"


@dataclass
class TestResponse:
    """The upstream's response; every field has a default."""

    __test__ = False

    status: int = 200
    headers: HeaderInput = field(default_factory=dict)
    body: BodyInput = None


@dataclass(frozen=True)
class _Message:
    headers: Headers
    body: bytes

    def text(self) -> str:
        """The body as UTF-8 text."""
        return self.body.decode()

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass(frozen=True)
class UpstreamRequest(_Message):
    """The request as the upstream receives it, after the policy's changes."""

    method: str = ""
    path: str = ""
    authority: str = ""
    scheme: str = ""


@dataclass(frozen=True)
class ClientResponse(_Message):
    """The response as the client receives it."""

    status: int = 200


@dataclass(frozen=True)
class ImmediateResult(ClientResponse):
    """An answer the policy gave instead of the upstream's."""

    phase: Phase = "request"


@dataclass(frozen=True)
class Decision:
    """What the policy did in one phase (the shape of the engine's decision trace entries)."""

    policy: str
    version: str
    phase: Phase
    outcome: Literal["passed", "modified", "denied"]
    reason: str | None
    duration_ms: float


@dataclass(frozen=True)
class ExchangeResult:
    """Everything one exchange produced, to assert on."""

    upstream: UpstreamRequest | None
    """``None`` when the policy answered in the request phase."""
    response: ClientResponse
    immediate: ImmediateResult | None
    metadata: dict[str, Any]
    analytics: dict[str, Any]
    trace: list[Decision]


def load_policy(directory: Path | str) -> PolicyFactory:
    """The ``get_policy`` of a policy directory, imported as the executor imports it.

    The directory becomes a package, so the policy's relative imports work as in the executor.
    """
    path = Path(directory).resolve()
    factory = import_factory(package_name(f"{path.name}:test", set()), path)

    def get_policy(metadata: PolicyMetadata, params: dict[str, Any]) -> Policy:
        return cast(Policy, factory(metadata, params))

    get_policy.__name__ = path.name  # the policy name results report by default
    return get_policy


def _is_empty(changes: Changes) -> bool:
    return changes == Changes(analytics=changes.analytics)


def _instance(
    policy: Policy | type[Policy] | PolicyFactory, metadata: PolicyMetadata, params: dict[str, Any]
) -> Policy:
    if isinstance(policy, Policy):
        return policy
    return policy(metadata, params)


def _as_request(request: TestRequest | Mapping[str, Any] | None) -> TestRequest:
    if request is None:
        return TestRequest()
    return request if isinstance(request, TestRequest) else TestRequest(**request)


def _as_response(response: TestResponse | Mapping[str, Any] | None) -> TestResponse | None:
    if response is None or isinstance(response, TestResponse):
        return response
    return TestResponse(**response)


class _Run:
    """One exchange through one policy, with the executor's checks and application."""

    def __init__(self, instance: Policy, params: dict[str, Any], metadata: PolicyMetadata) -> None:
        self.instance = instance
        self.params = params
        self.metadata = metadata
        self.trace: list[Decision] = []
        self.analytics: dict[str, Any] = {}

    def call(self, phase: Phase, exchange: Exchange, shared: SharedContext) -> Changes | Immediate:
        started = time.perf_counter()
        if phase == "request":
            action: object = self.instance.on_request(exchange.request_context(shared), self.params)
        else:
            action = self.instance.on_response(exchange.response_context(shared), self.params)
        outcome = read_action(action, pb.PHASE_REQUEST if phase == "request" else pb.PHASE_RESPONSE)
        dict_to_struct(shared.metadata, "metadata")  # the engine refuses metadata that is not JSON
        if outcome.analytics is not None:
            self.analytics.update(struct_to_dict(outcome.analytics))
        immediate = isinstance(outcome, Immediate)
        verdict: Literal["passed", "modified", "denied"] = (
            "denied" if immediate else "passed" if _is_empty(outcome) else "modified"  # type: ignore[arg-type]
        )
        self.trace.append(
            Decision(
                policy=self.metadata.policy_name,
                version=self.metadata.policy_version,
                phase=phase,
                outcome=verdict,
                reason="immediate_response" if immediate else None,
                duration_ms=(time.perf_counter() - started) * 1000,
            )
        )
        return outcome


def _rewrite_length(headers: dict[str, list[str]], body: BodyState | None, changed: bool) -> None:
    # The engine rewrites content-length whenever a policy replaced a buffered body.
    if changed and body is not None:
        headers["content-length"] = [str(len(body.content))]


def _immediate_result(outcome: Immediate, phase: Phase) -> ImmediateResult:
    return ImmediateResult(
        headers=Headers(list(outcome.headers)), body=outcome.body, status=outcome.status, phase=phase
    )


def run_policy(
    policy: Policy | type[Policy] | PolicyFactory,
    params: Mapping[str, Any] | None = None,
    request: TestRequest | Mapping[str, Any] | None = None,
    response: TestResponse | Mapping[str, Any] | None = None,
    *,
    metadata: PolicyMetadata | None = None,
    shared_metadata: Mapping[str, Any] | None = None,
) -> ExchangeResult:
    """Runs ``policy`` on ``request`` and, when ``response`` is given, on that response.

    Args:
        policy: An instance, a :class:`~sdk.policy.Policy` subclass or a ``get_policy``
            factory (see :func:`load_policy`); classes and factories get ``metadata`` and
            ``params``.
        params: The policy's parameters, as given (not validated, no defaults applied).
        request: The client's request: a :class:`TestRequest` or a dict of its fields.
        response: The upstream's response; without it ``on_response`` is not called.
        metadata: What the policy is attached to (default route ``test-route``).
        shared_metadata: The shared metadata earlier policies left.

    Returns:
        What the upstream and the client receive, the policy's decisions and the metadata.

    Raises:
        Whatever the policy raised, and ``InvalidActionError`` for an action the engine
        would refuse (a bad header name, a status out of range, the other phase's action).
    """
    meta = metadata or PolicyMetadata(
        route_name="test-route",
        attached_to="route",
        policy_name=getattr(policy, "__name__", ""),
        policy_version="",
    )
    own_params = dict(params or {})
    run = _Run(_instance(policy, meta, own_params), own_params, meta)
    client = _as_request(request)
    upstream_response = _as_response(response)
    exchange = Exchange(
        request_headers=Headers(client.headers).to_dict(),
        request_body=None if client.body is None else BodyState(_body_bytes(client.body), True),
        path=client.path,
        method=client.method,
        authority=client.authority,
        scheme=client.scheme,
        response_headers={},
        response_body=None,
        status=0,
    )
    shared = SharedContext(
        request_id=client.request_id, route_name=meta.route_name, metadata=dict(shared_metadata or {})
    )

    def finish(immediate: ImmediateResult | None, upstream: UpstreamRequest | None) -> ExchangeResult:
        client_response = immediate or ClientResponse(
            headers=Headers(exchange.response_headers),
            body=exchange.response_body.content if exchange.response_body else b"",
            status=exchange.status or 200,
        )
        return ExchangeResult(
            upstream=upstream,
            response=client_response,
            immediate=immediate,
            metadata=shared.metadata,
            analytics=run.analytics,
            trace=run.trace,
        )

    outcome = run.call("request", exchange, shared)
    if isinstance(outcome, Immediate):
        return finish(_immediate_result(outcome, "request"), None)
    exchange.apply_request(outcome)
    _rewrite_length(exchange.request_headers, exchange.request_body, outcome.body is not None)
    upstream = UpstreamRequest(
        headers=Headers(exchange.request_headers),
        body=exchange.request_body.content if exchange.request_body else b"",
        method=exchange.method,
        path=exchange.path,
        authority=exchange.authority,
        scheme=exchange.scheme,
    )
    if upstream_response is None:
        return finish(None, upstream)
    exchange.status = upstream_response.status
    exchange.response_headers = Headers(upstream_response.headers).to_dict()
    if upstream_response.body is not None:
        exchange.response_body = BodyState(_body_bytes(upstream_response.body), True)
    outcome = run.call("response", exchange, shared)
    if isinstance(outcome, Immediate):
        return finish(_immediate_result(outcome, "response"), upstream)
    exchange.apply_response(outcome)
    _rewrite_length(exchange.response_headers, exchange.response_body, outcome.body is not None)
    return finish(None, upstream)
