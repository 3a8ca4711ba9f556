"""Runs one ExecuteRequest: a batch of adjacent Python policies of one chain phase.

A batch must give exactly the results of calling its policies one by one: they run in the
order given, on one working copy of the exchange, each seeing the changes of those before
it and the same shared metadata dict; the batch stops where the engine would stop (an
immediate response, a failure under ``deny`` or ``skipRemaining``, a spent time budget).
This module is synchronous: the server runs a whole batch on one worker thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf import struct_pb2

from executor.cache import InstanceCache, PolicyInitError
from executor.exchange import Exchange
from executor.jsonvalue import NotJsonError, dict_to_struct, struct_to_dict
from executor.loader import PolicySet, registry_key
from executor.output import running
from executor.running import call_deadline
from executor.translate import Immediate, read_action
from sdk.policy import PolicyMetadata, SharedContext
from tollgate.executor.v1 import executor_pb2 as pb

log = logging.getLogger("executor.batch")

_PHASE_NAMES = {pb.PHASE_REQUEST: "request", pb.PHASE_RESPONSE: "response"}
_RULE_NAMES = {
    pb.FAILURE_RULE_DENY: "deny",
    pb.FAILURE_RULE_CONTINUE: "continue",
    pb.FAILURE_RULE_SKIP_REMAINING: "skipRemaining",
}


class MalformedRequestError(Exception):
    """The request cannot be run at all; answered with ``ExecuteResponse.error``."""


@dataclass(frozen=True)
class Runtime:
    """What every batch needs: the loaded policies and the shared instance cache."""

    policies: PolicySet
    cache: InstanceCache


def check_request(request: pb.ExecuteRequest | pb.ChunkRequest) -> None:
    """Raises ``MalformedRequestError`` for a call the executor cannot interpret."""
    if request.phase not in _PHASE_NAMES:
        raise MalformedRequestError(
            f"phase must be PHASE_REQUEST or PHASE_RESPONSE, got {pb.Phase.Name(request.phase)}"
            if request.phase in pb.Phase.values()
            else f"unknown phase {request.phase}"
        )
    if request.phase == pb.PHASE_RESPONSE and not request.HasField("response"):
        raise MalformedRequestError("a PHASE_RESPONSE call needs response data")
    for index, invocation in enumerate(request.policies):
        if not invocation.name or not invocation.version:
            raise MalformedRequestError(f"policies[{index}]: name and version are required")
        if invocation.on_failure not in _RULE_NAMES:
            raise MalformedRequestError(f"policies[{index}]: unknown on_failure {invocation.on_failure}")


def never_blocks(request: pb.ExecuteRequest | pb.ChunkRequest, policies: PolicySet) -> bool:
    """Whether every policy of the call is loaded and declares that it never blocks.

    Such a call may run inline on the event loop; an unknown or failed policy sends the call
    to the thread pool, the safe default.
    """
    for invocation in request.policies:
        found = policies.loaded.get(registry_key(invocation.name, invocation.version))
        if found is None or found.blocking:
            return False
    return True


def run_call(
    request: pb.ExecuteRequest,
    runtime: Runtime,
    received_at: float,
    clock: Callable[[], float] = time.monotonic,
) -> pb.ExecuteResponse:
    """Runs ``request`` and builds its response; never raises for anything a policy does.

    Args:
        request: The call.
        runtime: Loaded policies and the instance cache.
        received_at: ``clock()`` when the call arrived; the budget counts from there, so
            time spent waiting for a free worker is part of it.
        clock: Monotonic clock in seconds.
    """
    try:
        check_request(request)
    except MalformedRequestError as error:
        return pb.ExecuteResponse(call_id=request.call_id, error=str(error), metadata=request.metadata)
    batch = _Batch(request, runtime)
    batch.run_all(call_deadline(received_at, request.budget_ms), clock)
    return pb.ExecuteResponse(call_id=request.call_id, results=batch.results, metadata=batch.metadata)


def _policy_metadata(invocation: pb.PolicyInvocation) -> PolicyMetadata:
    meta = invocation.metadata
    return PolicyMetadata(
        route_name=meta.route_name,
        api_id=meta.api_id,
        api_name=meta.api_name,
        api_version=meta.api_version,
        attached_to=meta.attached_to,
        policy_name=invocation.name,
        policy_version=invocation.version,
    )


Call = pb.ExecuteRequest | pb.ChunkRequest
"""A request that runs a batch of policies."""

T = TypeVar("T")


@dataclass(frozen=True)
class Failed:
    """A policy failed (its error result is recorded); ``go_on`` says whether the batch continues."""

    go_on: bool


class PolicyCalls:
    """What every kind of batch shares: instances, the shared context and metadata, failures.

    Subclasses say how a policy is called (``step``); ``run_all`` runs the batch's policies
    in order until one says stop or the budget is spent.
    """

    def __init__(self, request: Call, runtime: Runtime) -> None:
        self._request = request
        self._runtime = runtime
        self._phase = request.phase
        # The last metadata known to be JSON: what a policy that breaks it is rolled back to,
        # and what the response carries. Never changed in place (settling replaces it), so
        # the request's own Struct can start it.
        self.metadata: struct_pb2.Struct = request.metadata
        self._shared_dict = struct_to_dict(request.metadata)
        self._shared = SharedContext(
            request_id=request.info.request_id,
            route_name=request.info.route_name,
            metadata=self._shared_dict,
        )

    def run_all(self, deadline: float, clock: Callable[[], float]) -> None:
        """Runs the policies in order; stops where the engine would, or when ``deadline`` passed."""
        for invocation in self._request.policies:
            if clock() >= deadline:
                self.fail(
                    invocation,
                    pb.ERROR_KIND_TIMEOUT,
                    f"the call's {self._request.budget_ms}ms budget was spent",
                )
                return
            if not self.step(invocation):
                return

    def step(self, invocation: pb.PolicyInvocation) -> bool:
        """Runs one policy and records its result; False when the batch must stop here."""
        raise NotImplementedError

    def attempt(
        self,
        invocation: pb.PolicyInvocation,
        handler: Callable[[Any, dict[str, Any]], object],
        read: Callable[[object], T],
    ) -> T | Failed:
        """Calls one policy through ``handler`` (instance, params) and checks what it returned with ``read``.

        Whatever goes wrong (unknown policy, failed import or factory, an exception, an
        invalid result, metadata that is not JSON) is recorded as this policy's error.
        """
        key = registry_key(invocation.name, invocation.version)
        with running(key):
            found = self._runtime.policies.lookup(invocation.name, invocation.version)
            if found is None:
                message = f"{key} is not in the executor's registry"
                return Failed(self.fail(invocation, pb.ERROR_KIND_NOT_FOUND, message))
            if isinstance(found, str):
                return Failed(self.fail(invocation, pb.ERROR_KIND_INIT, f"{key} failed to load: {found}"))
            try:
                instance = self._runtime.cache.get(
                    (invocation.name, invocation.version, invocation.params_hash),
                    lambda: found.factory(_policy_metadata(invocation), struct_to_dict(invocation.params)),
                )
            except PolicyInitError as error:
                return Failed(self.fail(invocation, pb.ERROR_KIND_INIT, str(error)))

            meta = invocation.metadata
            shared = self._shared
            shared.api_id, shared.api_name, shared.api_version = meta.api_id, meta.api_name, meta.api_version
            outcome: T | None = None
            problem: str | None = None
            try:
                outcome = read(handler(instance, struct_to_dict(invocation.params)))
            except BaseException as error:  # whatever a policy does, the executor keeps serving
                problem = f"{type(error).__name__}: {error}"
            metadata_problem = self._settle_metadata()
            if problem is None and metadata_problem is not None:
                problem = f"NotJsonError: {metadata_problem}"
            if problem is not None or outcome is None:
                return Failed(self.fail(invocation, pb.ERROR_KIND_EXECUTION, problem or "no outcome"))
            return outcome

    def _settle_metadata(self) -> str | None:
        """Accepts the policy's metadata changes if they are JSON, else rolls them back."""
        current: object = self._shared.metadata
        try:
            self.metadata = dict_to_struct(current, "metadata")
        except NotJsonError as error:
            restored = struct_to_dict(self.metadata)
            if not isinstance(current, dict):
                current = self._shared.metadata = self._shared_dict
            current.clear()
            current.update(restored)
            return str(error)
        if isinstance(current, dict):
            self._shared_dict = current
        return None

    def record_error(self, kind: pb.ErrorKind, message: str) -> None:
        """Appends the error result of a failed policy (the result type depends on the batch)."""
        raise NotImplementedError

    def fail(self, invocation: pb.PolicyInvocation, kind: pb.ErrorKind, message: str) -> bool:
        """Records an error result; False when the policy's failure rule stops the batch."""
        self.record_error(kind, message)
        rule = invocation.on_failure
        key = registry_key(invocation.name, invocation.version)
        phase = _PHASE_NAMES.get(self._phase, "?")
        log.warning(
            "policy %s failed in the %s phase",
            key,
            phase,
            extra={
                "policy": key,
                "call_id": self._request.call_id,
                "request_id": self._request.info.request_id,
                "phase": phase,
                "kind": pb.ErrorKind.Name(kind),
                "error": message,
                "on_failure": _RULE_NAMES.get(rule, str(rule)),
            },
        )
        return kind != pb.ERROR_KIND_TIMEOUT and rule == pb.FAILURE_RULE_CONTINUE


class _Batch(PolicyCalls):
    """One ExecuteRequest: header/buffered-body handlers on one working copy of the exchange."""

    def __init__(self, request: pb.ExecuteRequest, runtime: Runtime) -> None:
        super().__init__(request, runtime)
        self._exchange = Exchange.from_proto(
            request.request, request.response if request.phase == pb.PHASE_RESPONSE else None
        )
        self.results: list[pb.PolicyResult] = []

    def step(self, invocation: pb.PolicyInvocation) -> bool:
        """Runs one policy and records its result; False when the batch must stop here."""
        outcome = self.attempt(invocation, self._call, lambda action: read_action(action, self._phase))
        if isinstance(outcome, Failed):
            return outcome.go_on
        if isinstance(outcome, Immediate):
            self.results.append(pb.PolicyResult(immediate_response=outcome.to_proto()))
            return False
        if self._phase == pb.PHASE_REQUEST:
            self._exchange.apply_request(outcome)
        else:
            self._exchange.apply_response(outcome)
        self.results.append(pb.PolicyResult(modifications=outcome.to_proto()))
        return True

    def _call(self, instance: Any, params: dict[str, Any]) -> object:
        if self._phase == pb.PHASE_REQUEST:
            return instance.on_request(self._exchange.request_context(self._shared), params)
        return instance.on_response(self._exchange.response_context(self._shared), params)

    def record_error(self, kind: pb.ErrorKind, message: str) -> None:
        """Appends a ``PolicyResult`` error."""
        self.results.append(pb.PolicyResult(error=pb.PolicyError(kind=kind, message=message)))
