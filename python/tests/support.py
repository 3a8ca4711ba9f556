"""Helpers for tests that run a real executor process and talk to it over its framed socket.

The executor runs as ``python -m executor`` in a subprocess, exactly as the engine starts
it, on a socket in a temporary directory, with a generated-style ``policy_registry.py``.
Tests speak to it with an asyncio client that multiplexes calls on one connection, as the
engine does.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from google.protobuf import json_format, struct_pb2

from executor.frames import Kind, encode, read_frame
from tollgate.executor.v1 import executor_pb2 as pb

REPO = Path(__file__).resolve().parents[2]
PYTHON_DIR = REPO / "python"
GEN_DIR = REPO / "src" / "gen" / "python"

# Registry key -> (name, full version, directory relative to the repository[, blocking]).
PolicyEntry = tuple[str, str, str] | tuple[str, str, str, bool]

ALL_POLICIES: dict[str, PolicyEntry] = {
    "add-python-header:v1": ("add-python-header", "v1.0.0", "policies/add-python-header"),
    "json-body-rewrite:v1": ("json-body-rewrite", "v1.0.0", "policies/json-body-rewrite"),
    "sse-token-count:v1": ("sse-token-count", "v1.0.0", "policies/sse-token-count", False),
    "scripted:v1": ("scripted", "v1.0.0", "python/tests/policies/scripted"),
    "counted:v1": ("counted", "v1.0.0", "python/tests/policies/counted"),
    "sleepy:v1": ("sleepy", "v1.0.0", "python/tests/policies/sleepy"),
    "broken-import:v1": ("broken-import", "v1.0.0", "python/tests/policies/broken_import"),
    "no-factory:v1": ("no-factory", "v1.0.0", "python/tests/policies/no_factory"),
    # The same code twice: declared non-blocking (runs inline) and not (runs on a worker).
    "inline-thread:v1": ("inline-thread", "v1.0.0", "python/tests/policies/thread_name", False),
    "pooled-thread:v1": ("pooled-thread", "v1.0.0", "python/tests/policies/thread_name", True),
    # A streaming policy, on a worker and inline.
    "chunky:v1": ("chunky", "v1.0.0", "python/tests/policies/chunky"),
    "chunky-inline:v1": ("chunky-inline", "v1.0.0", "python/tests/policies/chunky", False),
}

T = TypeVar("T")


def run(awaitable: Awaitable[T]) -> T:
    """Runs a coroutine to completion in a fresh event loop (tests are synchronous)."""

    async def main() -> T:
        return await awaitable

    return asyncio.run(main())


def write_registry(path: Path, entries: Mapping[str, PolicyEntry]) -> Path:
    """Writes a registry file shaped like the one ``deno task build`` generates."""
    lines = [
        "# Code generated for a test. DO NOT EDIT.",
        '"""Python policies of this test executor."""',
        "",
        "PYTHON_POLICIES: dict[str, dict[str, str | bool]] = {",
    ]
    for key, (name, version, rel, *blocking) in entries.items():
        lines.append(f"    {json.dumps(key)}: {{")
        lines.append(f'        "name": {json.dumps(name)},')
        lines.append(f'        "version": {json.dumps(version)},')
        lines.append(f'        "path": {json.dumps(rel)},')
        if blocking:
            lines.append(f'        "blocking": {blocking[0]!r},')
        lines.append("    },")
    lines += ["}", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def executor_env() -> dict[str, str]:
    """The environment the engine gives the executor: PYTHONPATH = python dir + generated code."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PYTHON_DIR), str(GEN_DIR)])
    return env


class ExecutorProcess:
    """A ``python -m executor`` subprocess with its socket, registry and stderr log."""

    def __init__(
        self,
        workdir: Path,
        policies: Mapping[str, PolicyEntry] = ALL_POLICIES,
        workers: int = 8,
        extra_args: Sequence[str] = (),
        socket: Path | None = None,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        # A directory that does not exist yet: the executor must create it.
        self.socket = socket or workdir / "run" / "nested" / "executor.sock"
        self.registry = write_registry(workdir / "policy_registry.py", policies)
        self.log_path = workdir / "executor.log"
        self.args = [
            sys.executable,
            "-m",
            "executor",
            "--socket",
            str(self.socket),
            "--workers",
            str(workers),
            "--registry",
            str(self.registry),
            "--policy-root",
            str(REPO),
            "--log-level",
            "debug",
            *extra_args,
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> ExecutorProcess:
        """Starts the process and waits until its health answer says it is ready."""
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.args, cwd=PYTHON_DIR, env=executor_env(), stdin=subprocess.DEVNULL, stderr=log
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"executor exited with {self.process.returncode}:\n{self.log_text()}")
            if self.socket.exists():
                try:
                    answer = run(health(self.socket))
                    # Another executor may serve this path until this one takes it over.
                    if answer.ready and answer.pid == self.process.pid:
                        return self
                except (OSError, EOFError, asyncio.IncompleteReadError, TimeoutError):
                    pass
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"executor not ready after {timeout}s:\n{self.log_text()}")

    @property
    def pid(self) -> int:
        """The running process's id."""
        assert self.process is not None
        return self.process.pid

    def send_signal(self, sig: int) -> None:
        """Sends ``sig`` to the process."""
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        """Waits for the process to exit; its exit status."""
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Asks the process to stop (SIGTERM) and returns its exit status; kills it if it hangs."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise
        return self.process.returncode

    def log_text(self) -> str:
        """Everything the process wrote to stderr so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def log_records(self) -> list[dict[str, Any]]:
        """The stderr log parsed as JSON lines (a non-JSON line fails the test)."""
        return [json.loads(line) for line in self.log_text().splitlines() if line.strip()]


SpawnExecutor = Callable[..., ExecutorProcess]
"""The ``spawn_executor`` fixture: ``spawn(policies=ALL_POLICIES, workers=8)``, not yet started."""


MAX_FRAME_BYTES = 64 * 1024 * 1024


async def health(socket: Path) -> pb.HealthCheckResponse:
    """One health request on a connection of its own."""
    reader, writer = await asyncio.open_unix_connection(str(socket))
    try:
        writer.write(encode(Kind.HEALTH_REQUEST, b""))
        frame = await asyncio.wait_for(read_frame(reader, MAX_FRAME_BYTES), 5)
        if frame is None or frame[0] != Kind.HEALTH_RESPONSE:
            raise EOFError(f"no health answer (got {frame and frame[0].name})")
        return pb.HealthCheckResponse.FromString(frame[1])
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


Answer = pb.ExecuteResponse | pb.ChunkResponse


class StreamClient:
    """One connection shared by many concurrent calls, correlated by call_id (like the engine)."""

    def __init__(self, socket: Path) -> None:
        self._socket = socket
        self._waiting: dict[int, asyncio.Future[Any]] = {}

    async def __aenter__(self) -> StreamClient:
        self._reader, self._writer = await asyncio.open_unix_connection(str(self._socket))
        self.received: list[int] = []
        self.going_away = False
        """Whether the executor said it is shutting down before it closed the connection."""
        self._reader_task = asyncio.create_task(self._read())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._reader_task.cancel()
        await asyncio.gather(self._reader_task, return_exceptions=True)
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    async def _read(self) -> None:
        while (frame := await read_frame(self._reader, MAX_FRAME_BYTES)) is not None:
            kind, payload = frame
            if kind == Kind.GOING_AWAY:
                self.going_away = True
                continue
            response: Answer = (
                pb.ChunkResponse.FromString(payload)
                if kind == Kind.CHUNK_RESPONSE
                else pb.ExecuteResponse.FromString(payload)
            )
            self.received.append(response.call_id)
            future = self._waiting.pop(response.call_id, None)
            if future is not None and not future.done():
                future.set_result(response)
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(RuntimeError("connection ended before the answer"))

    async def send(self, request: pb.ExecuteRequest) -> asyncio.Future[pb.ExecuteResponse]:
        """Writes one call; the future resolves with its response."""
        return await self._send(Kind.EXECUTE_REQUEST, request.call_id, request.SerializeToString())

    async def send_chunk(self, request: pb.ChunkRequest) -> asyncio.Future[pb.ChunkResponse]:
        """Writes one chunk call; the future resolves with its response."""
        return await self._send(Kind.CHUNK_REQUEST, request.call_id, request.SerializeToString())

    async def _send(self, kind: Kind, call_id: int, payload: bytes) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[call_id] = future
        self._writer.write(encode(kind, payload))
        await self._writer.drain()
        return future

    async def send_raw(self, data: bytes) -> None:
        """Writes bytes as they are (for tests of broken framing)."""
        self._writer.write(data)
        await self._writer.drain()

    async def call(self, request: pb.ExecuteRequest, limit: float = 20.0) -> pb.ExecuteResponse:
        """Writes one call and waits (at most ``limit`` seconds) for its response."""
        return await asyncio.wait_for(await self.send(request), limit)

    async def call_chunk(self, request: pb.ChunkRequest, limit: float = 20.0) -> pb.ChunkResponse:
        """Writes one chunk call and waits (at most ``limit`` seconds) for its response."""
        return await asyncio.wait_for(await self.send_chunk(request), limit)

    async def done_writing(self) -> None:
        """Half-closes the connection (no more calls)."""
        self._writer.write_eof()

    async def wait_closed(self, limit: float = 20.0) -> None:
        """Waits (at most ``limit`` seconds) until the server ends the connection."""
        await asyncio.wait_for(asyncio.shield(self._reader_task), limit)


def call_all(socket: Path, *requests: pb.ExecuteRequest) -> list[pb.ExecuteResponse]:
    """Sends every request concurrently on one stream; responses in request order."""

    async def scenario() -> list[pb.ExecuteResponse]:
        async with StreamClient(socket) as client:
            return list(await asyncio.gather(*(client.call(r) for r in requests)))

    return run(scenario())


def call_one(socket: Path, request: pb.ExecuteRequest) -> pb.ExecuteResponse:
    """Sends one request and returns its response."""
    return call_all(socket, request)[0]


def chunk_all(socket: Path, *requests: pb.ChunkRequest) -> list[pb.ChunkResponse]:
    """Sends every chunk call concurrently on one stream; responses in request order."""

    async def scenario() -> list[pb.ChunkResponse]:
        async with StreamClient(socket) as client:
            return list(await asyncio.gather(*(client.call_chunk(r) for r in requests)))

    return run(scenario())


def chunk_one(socket: Path, request: pb.ChunkRequest) -> pb.ChunkResponse:
    """Sends one chunk call and returns its response."""
    return chunk_all(socket, request)[0]


# ─── Building requests ─────────────────────────────────────────────────────────────────

_call_ids = itertools.count(1000)

RULES = {
    "deny": pb.FAILURE_RULE_DENY,
    "continue": pb.FAILURE_RULE_CONTINUE,
    "skipRemaining": pb.FAILURE_RULE_SKIP_REMAINING,
}


def struct(data: Mapping[str, Any] | None) -> struct_pb2.Struct:
    """A Struct from JSON-compatible data."""
    message = struct_pb2.Struct()
    if data:
        message.update(dict(data))
    return message


def plain(message: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct back as JSON data (numbers stay floats, as protobuf gives them)."""
    result: dict[str, Any] = json_format.MessageToDict(message)
    return result


def params_hash(params: Mapping[str, Any] | None) -> str:
    """A stable hash of params, as the engine computes one."""
    return hashlib.sha256(json.dumps(params or {}, sort_keys=True).encode()).hexdigest()


def invocation(
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    version: str = "v1.0.0",
    on_failure: str = "deny",
    hash_: str | None = None,
    route: str = "route-a",
    api_name: str = "",
) -> pb.PolicyInvocation:
    """One policy of a batch."""
    return pb.PolicyInvocation(
        name=name,
        version=version,
        params=struct(params),
        params_hash=hash_ if hash_ is not None else params_hash(params),
        metadata=pb.PolicyMetadata(route_name=route, api_name=api_name, attached_to="route"),
        on_failure=RULES[on_failure],
    )


@dataclass
class Response:
    """Response data for a PHASE_RESPONSE call."""

    status: int = 200
    headers: Sequence[tuple[str, str]] = ()
    body: bytes | None = None


def execute_request(
    policies: Iterable[pb.PolicyInvocation],
    *,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes | None = None,
    path: str = "/",
    method: str = "GET",
    metadata: Mapping[str, Any] | None = None,
    budget_ms: int = 0,
    response: Response | None = None,
    request_id: str = "req-1",
    call_id: int | None = None,
) -> pb.ExecuteRequest:
    """An ExecuteRequest; PHASE_RESPONSE when ``response`` is given."""
    request = pb.ExecuteRequest(
        call_id=call_id if call_id is not None else next(_call_ids),
        phase=pb.PHASE_RESPONSE if response is not None else pb.PHASE_REQUEST,
        policies=list(policies),
        request=pb.RequestData(
            headers=[pb.Header(name=n, value=v) for n, v in headers],
            body=body or b"",
            body_present=body is not None,
            end_of_stream=True,
            path=path,
            method=method,
            authority="example.test",
            scheme="https",
        ),
        metadata=struct(metadata),
        info=pb.RequestInfo(request_id=request_id, route_name="route-a"),
        budget_ms=budget_ms,
    )
    if response is not None:
        request.response.CopyFrom(
            pb.ResponseData(
                headers=[pb.Header(name=n, value=v) for n, v in response.headers],
                body=response.body or b"",
                body_present=response.body is not None,
                status=response.status,
                end_of_stream=True,
            )
        )
    return request


def chunk_request(
    policies: Iterable[pb.PolicyInvocation],
    data: bytes,
    *,
    index: int = 0,
    end_of_stream: bool = False,
    headers: Sequence[tuple[str, str]] = (),
    path: str = "/",
    method: str = "POST",
    metadata: Mapping[str, Any] | struct_pb2.Struct | None = None,
    budget_ms: int = 0,
    response: Response | None = None,
    request_id: str = "req-1",
    call_id: int | None = None,
) -> pb.ChunkRequest:
    """A ChunkRequest; PHASE_RESPONSE when ``response`` is given (its body is ignored)."""
    request = pb.ChunkRequest(
        call_id=call_id if call_id is not None else next(_call_ids),
        phase=pb.PHASE_RESPONSE if response is not None else pb.PHASE_REQUEST,
        policies=list(policies),
        data=data,
        end_of_stream=end_of_stream,
        chunk_index=index,
        request=pb.RequestData(
            headers=[pb.Header(name=n, value=v) for n, v in headers],
            path=path,
            method=method,
            authority="example.test",
            scheme="https",
        ),
        metadata=metadata if isinstance(metadata, struct_pb2.Struct) else struct(metadata),
        info=pb.RequestInfo(request_id=request_id, route_name="route-a"),
        budget_ms=budget_ms,
    )
    if response is not None:
        request.response.CopyFrom(
            pb.ResponseData(
                headers=[pb.Header(name=n, value=v) for n, v in response.headers],
                status=response.status,
            )
        )
    return request


def chunk_outcome(result: pb.ChunkResult) -> str:
    """Which outcome a chunk result has: forwarded, replaced, ended or error."""
    kind: str | None = result.WhichOneof("outcome")
    assert kind is not None
    return kind


def lines(headers: Iterable[pb.Header]) -> list[tuple[str, str]]:
    """Header messages as (name, value) pairs."""
    return [(h.name, h.value) for h in headers]


def outcome(result: pb.PolicyResult) -> str:
    """Which outcome a result has: modifications, immediate_response or error."""
    kind: str | None = result.WhichOneof("outcome")
    assert kind is not None
    return kind


def error_of(result: pb.PolicyResult | pb.ChunkResult) -> tuple[str, str]:
    """(ErrorKind name, message) of an error result (of a batch or a chunk call)."""
    assert result.WhichOneof("outcome") == "error", result
    return pb.ErrorKind.Name(result.error.kind), result.error.message


def trace(response: pb.ExecuteResponse) -> list[dict[str, Any]]:
    """What each scripted policy saw, from the returned metadata."""
    entries: list[dict[str, Any]] = plain(response.metadata).get("trace", [])
    return entries
