"""Runs one ChunkRequest: a chunk of a streamed body through a batch of streaming policies.

Like an ExecuteRequest batch, it gives exactly the results of calling the policies one by
one: each gets the chunk as the previous one left it (forwarded or replaced), all share
one metadata dict, and the batch stops where the engine would stop (an ended exchange, a
failure under ``deny`` or ``skipRemaining``, a spent budget). Nothing is kept between
chunks: the engine accumulates data, and per-exchange state lives in the shared metadata.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from executor.batch import Failed, MalformedRequestError, PolicyCalls, Runtime, check_request
from executor.running import call_deadline
from executor.translate import End, Replace, read_chunk_action
from sdk.headers import Headers
from sdk.policy import ChunkContext
from tollgate.executor.v1 import executor_pb2 as pb


def run_chunk(
    request: pb.ChunkRequest,
    runtime: Runtime,
    received_at: float,
    clock: Callable[[], float] = time.monotonic,
) -> pb.ChunkResponse:
    """Runs ``request`` and builds its response; never raises for anything a policy does.

    Args:
        request: The chunk call.
        runtime: Loaded policies and the instance cache.
        received_at: ``clock()`` when the call arrived; the budget counts from there.
        clock: Monotonic clock in seconds.
    """
    try:
        check_request(request)
    except MalformedRequestError as error:
        return pb.ChunkResponse(call_id=request.call_id, error=str(error), metadata=request.metadata)
    batch = _ChunkBatch(request, runtime)
    batch.run_all(call_deadline(received_at, request.budget_ms), clock)
    # An unchanged chunk does not travel back: the engine forwards the one it sent.
    data = batch.data if batch.replaced else b""
    return pb.ChunkResponse(
        call_id=request.call_id, results=batch.results, data=data, metadata=batch.metadata
    )


def _headers(headers: Any) -> Headers:
    return Headers([(header.name, header.value) for header in headers])


class _ChunkBatch(PolicyCalls):
    """The chunk as it passes from policy to policy, and the results so far."""

    def __init__(self, request: pb.ChunkRequest, runtime: Runtime) -> None:
        super().__init__(request, runtime)
        self._chunk = request
        self.data: bytes = request.data
        self.replaced = False
        """Whether some policy replaced the chunk (only then is ``data`` sent back)."""
        self.results: list[pb.ChunkResult] = []
        # Headers are read-only for chunk handlers: one view serves every policy of the batch.
        self._request_headers = _headers(request.request.headers)
        response = request.response if request.phase == pb.PHASE_RESPONSE else None
        self._response_headers = _headers(response.headers) if response else Headers()
        self._status = response.status if response else 0

    def _context(self) -> ChunkContext:
        return ChunkContext(
            shared=self._shared,
            end_of_stream=self._chunk.end_of_stream,
            chunk_index=self._chunk.chunk_index,
            request_headers=self._request_headers,
            request_path=self._chunk.request.path,
            request_method=self._chunk.request.method,
            response_status=self._status,
            response_headers=self._response_headers,
        )

    def _call(self, instance: Any, params: dict[str, Any]) -> object:
        if self._phase == pb.PHASE_REQUEST:
            return instance.on_request_chunk(self._context(), self.data, params)
        return instance.on_response_chunk(self._context(), self.data, params)

    def step(self, invocation: pb.PolicyInvocation) -> bool:
        """Runs one policy on the chunk; False when the batch must stop here."""
        outcome = self.attempt(invocation, self._call, lambda action: read_chunk_action(action, self._phase))
        if isinstance(outcome, Failed):
            return outcome.go_on
        if isinstance(outcome, End):
            ended = pb.ChunkEnded()
            if outcome.response is not None:
                ended.response.CopyFrom(outcome.response.to_proto())
            self.results.append(pb.ChunkResult(ended=ended))
            return False
        if isinstance(outcome, Replace):
            self.data = outcome.data
            self.replaced = True
            self.results.append(pb.ChunkResult(replaced=pb.ChunkReplaced()))
        else:
            self.results.append(pb.ChunkResult(forwarded=pb.ChunkForwarded()))
        return True

    def record_error(self, kind: pb.ErrorKind, message: str) -> None:
        """Appends a ``ChunkResult`` error."""
        self.results.append(pb.ChunkResult(error=pb.PolicyError(kind=kind, message=message)))
