"""The executor's side of the hop: framed protobuf on a Unix socket, and the server's life on it.

The engine keeps one connection open and sends every Python call on it (``executor.frames``),
so calls on a connection must not wait for each other. Each connection is an asyncio
protocol: the frames of one read are cut and handled in order, a batch whose policies all
declare that they never block runs there and then on the event loop, any other batch runs
on the worker thread pool, and answers are written as they complete (correlated by
``call_id``, in any order), those ready together in one write. Health requests are
answered at once, in order. Shutdown drains: calls already received finish and are
answered, calls arriving after it began are answered with an error at once, then each
connection gets a GOING_AWAY frame and is closed, so the engine knows to reconnect
elsewhere or give up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import stat
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from google.protobuf.message import DecodeError

from executor.batch import Call, Runtime, never_blocks, run_call
from executor.chunks import run_chunk
from executor.frames import HEADER, FrameError, Kind, check_kind, encode
from executor.running import RunningCalls, call_deadline
from tollgate.executor.v1 import executor_pb2 as pb

log = logging.getLogger("executor.server")

GRACE_SECONDS = 10.0
"""How long in-flight calls get to finish on SIGTERM/SIGINT."""

SHUTTING_DOWN = "the Python executor is shutting down"

Answer = pb.ExecuteResponse | pb.ChunkResponse
"""What a call is answered with: the response type of its request type."""


def error_answer(request: Call, message: str) -> Answer:
    """The answer to a call that could not run as a whole."""
    if isinstance(request, pb.ChunkRequest):
        return pb.ChunkResponse(call_id=request.call_id, error=message)
    return pb.ExecuteResponse(call_id=request.call_id, error=message)


def _run(request: Call, runtime: Runtime, received_at: float) -> Answer:
    if isinstance(request, pb.ChunkRequest):
        return run_chunk(request, runtime, received_at)
    return run_call(request, runtime, received_at)


def resident_bytes() -> int:
    """This process's resident set size from /proc (Linux); 0 where that is not available."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class ExecutorService:
    """Runs calls and answers health checks for every connection of the engine."""

    def __init__(
        self, runtime: Runtime, pool: ThreadPoolExecutor, workers: int, max_message_bytes: int
    ) -> None:
        self._runtime = runtime
        self._pool = pool
        self._workers = workers
        self.max_message_bytes = max_message_bytes
        self._ready = False
        self._draining = False
        self._closing = False
        self._calls_served = 0
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._sessions: set[_Session] = set()
        self._running = RunningCalls()

    def is_draining(self) -> bool:
        """Whether shutdown has begun (new calls are refused)."""
        return self._draining

    def is_closing(self) -> bool:
        """Whether connections should end now (shutdown, once the calls were answered)."""
        return self._closing

    def mark_ready(self) -> None:
        """Called once the server is bound and serving."""
        self._ready = True

    def new_session(self) -> _Session:
        """The protocol of one new connection of the engine."""
        session = _Session(self)
        session.finished.add_done_callback(lambda _: self._sessions.discard(session))
        self._sessions.add(session)
        return session

    def health(self) -> pb.HealthCheckResponse:
        """Readiness, loaded and failed policies, worker state, pid and memory, for the supervisor."""
        policies = self._runtime.policies
        return pb.HealthCheckResponse(
            ready=self._ready and not self._draining,
            loaded_policies=len(policies.loaded),
            failed_policies=[f"{key}: {reason}" for key, reason in policies.failed.items()],
            workers=self._workers,
            calls_served=self._calls_served,
            overdue_workers=self._running.overdue(),
            pid=os.getpid(),
            rss_bytes=resident_bytes(),
        )

    def execute(self, request: Call, answered: Callable[[Answer], None]) -> None:
        """Runs one call (a batch or a chunk) and gives its answer to ``answered``.

        A batch whose policies all declare that they never block runs inline, now, on the
        event loop: ``answered`` is called before this returns. Any other batch runs on the
        worker pool; ``answered`` is called later, on the event loop. There the in-flight
        count follows the worker thread, not the connection: if the connection goes away
        mid-call the policy code keeps running, and shutdown must still wait for it. Any
        failure of the executor itself becomes an error answer.
        """
        received_at = time.monotonic()
        self._in_flight += 1
        self._idle.clear()
        if not never_blocks(request, self._runtime.policies):
            self._on_pool(request, received_at, answered)
            return
        try:
            response = _run(request, self._runtime, received_at)
        except Exception as error:
            response = self._failed(request, error)
        self._call_ended()
        answered(self._served(request, response, received_at))

    def _on_pool(self, request: Call, received_at: float, answered: Callable[[Answer], None]) -> None:
        loop = asyncio.get_running_loop()

        def settle(work: Future[Answer]) -> None:
            self._call_ended()
            if work.cancelled():  # still queued when shutdown's grace period ended
                answered(error_answer(request, SHUTTING_DOWN))
                return
            error = work.exception()
            response = self._failed(request, error) if error is not None else work.result()
            answered(self._served(request, response, received_at))

        def back_on_loop(work: Future[Answer]) -> None:
            # A closed loop means the executor is exiting anyway.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, work)

        work = self._pool.submit(
            self._running.run,
            call_deadline(received_at, request.budget_ms),
            lambda: _run(request, self._runtime, received_at),
        )
        work.add_done_callback(back_on_loop)

    @staticmethod
    def _failed(request: Call, error: BaseException) -> Answer:
        log.error(
            "call failed inside the executor",
            exc_info=error,
            extra={"call_id": request.call_id, "error": str(error)},
        )
        return error_answer(request, f"executor error: {error}")

    def _served(self, request: Call, response: Answer, received_at: float) -> Answer:
        self._calls_served += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "call answered",
                extra={
                    "call_id": request.call_id,
                    "policies": [p.name for p in request.policies],
                    "results": len(response.results),
                    "ms": round((time.monotonic() - received_at) * 1000, 3),
                },
            )
        return response

    def _call_ended(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0:
            self._idle.set()

    def begin_drain(self) -> None:
        """Refuses new calls from now on (health answers say not ready)."""
        self._draining = True

    def end_sessions(self) -> None:
        """Lets every connection end once its own calls are answered."""
        self._closing = True
        for session in list(self._sessions):
            session.end_when_answered()

    async def wait_idle(self, limit: float) -> bool:
        """Waits until no call is running; False if ``limit`` seconds passed first."""
        try:
            await asyncio.wait_for(self._idle.wait(), limit)
        except TimeoutError:
            return False
        return True

    async def close_sessions(self, limit: float) -> None:
        """Waits (at most ``limit`` seconds) for connections to end by themselves, then cuts them."""
        sessions = [s.finished for s in self._sessions]
        if sessions:
            await asyncio.wait(sessions, timeout=max(limit, 0.01))
        for session in list(self._sessions):
            session.abort()


class _Session(asyncio.Protocol):
    """One connection: cuts what arrives into frames, runs each call, writes the answers.

    Everything is callbacks on the event loop, with no task per call: the frames of one
    read are handled in order, inline calls are run there and then, and every answer
    ready by the end of the read leaves in one write. Answers of calls on the pool are
    written as they complete. While the socket's send buffer is full (the engine is not
    reading its answers), reading pauses: that is the backpressure on new calls.
    """

    def __init__(self, service: ExecutorService) -> None:
        self._service = service
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._outbox: list[bytes] = []
        self._handling = False
        self._flush_scheduled = False
        self._unanswered = 0
        self._wanted = HEADER.size
        self._reading = True
        self._write_paused = False
        self._ending = False
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keeps the transport the answers are written to."""
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone: answers still to come are dropped."""
        if exc is not None:
            log.warning("engine connection failed", extra={"error": str(exc)})
        self._reading = False
        self._outbox.clear()
        if not self.finished.done():
            self.finished.set_result(None)

    def eof_received(self) -> bool:
        """The engine is done sending: answer what was received, then close."""
        self._stop_reading()
        return True  # keep the connection open for the answers still to come

    def pause_writing(self) -> None:
        """The engine is not reading its answers: stop taking new calls."""
        self._write_paused = True
        if self._reading and self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        """The answers drained: take new calls again."""
        self._write_paused = False
        if self._reading and self._transport is not None:
            self._transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        """Handles every complete frame received so far; keeps the rest for the next read."""
        if not self._reading:
            return
        if self._buffer:
            self._buffer += data
            if len(self._buffer) < self._wanted:
                return  # a large frame arriving in pieces: nothing to cut yet
            data = bytes(self._buffer)
        self._handling = True
        at = 0
        try:
            at = self._handle_frames(data)
        except (FrameError, DecodeError) as error:
            # Nothing after a broken frame can be trusted: answer what was received, then close.
            log.error("bad frame from the engine; closing the connection", extra={"error": str(error)})
            self._stop_reading()
        finally:
            self._handling = False
        self._buffer = bytearray(data[at:]) if self._reading and at < len(data) else bytearray()
        self._flush()

    def _handle_frames(self, data: bytes) -> int:
        """Handles the complete frames of ``data``; returns where the unfinished rest begins.

        Also notes how many bytes the unfinished frame needs before it can be cut.
        """
        limit = self._service.max_message_bytes
        at = 0
        end = len(data)
        self._wanted = HEADER.size
        while end - at >= HEADER.size:
            length, kind = HEADER.unpack_from(data, at)
            if length > limit:
                raise FrameError(f"a frame of {length} bytes is over the {limit}-byte limit")
            known = check_kind(kind)
            start = at + HEADER.size
            if end - start < length:
                self._wanted = HEADER.size + length
                break
            at = start + length
            self._handle(known, data[start:at])
        return at

    def _handle(self, kind: Kind, payload: bytes) -> None:
        if kind == Kind.HEALTH_REQUEST:
            self._send(Kind.HEALTH_RESPONSE, self._service.health().SerializeToString())
        elif kind == Kind.EXECUTE_REQUEST:
            self._received(pb.ExecuteRequest.FromString(payload))
        elif kind == Kind.CHUNK_REQUEST:
            self._received(pb.ChunkRequest.FromString(payload))
        else:
            raise FrameError(f"unexpected frame kind {kind.name} from the engine")

    def _received(self, request: Call) -> None:
        if self._service.is_draining():
            self._answer(request, error_answer(request, SHUTTING_DOWN))
            return
        self._unanswered += 1
        self._service.execute(request, lambda response: self._answered(request, response))

    def _answered(self, request: Call, response: Answer) -> None:
        self._unanswered -= 1
        self._answer(request, response)
        if self._ending or not self._reading:
            self._end_if_answered()

    def _answer(self, request: Call, response: Answer) -> None:
        payload = response.SerializeToString()
        limit = self._service.max_message_bytes
        if len(payload) > limit:
            message = f"the answer ({len(payload)} bytes) is over the {limit}-byte message limit"
            payload = error_answer(request, message).SerializeToString()
        kind = Kind.CHUNK_RESPONSE if isinstance(request, pb.ChunkRequest) else Kind.EXECUTE_RESPONSE
        self._send(kind, payload)

    def _send(self, kind: Kind, payload: bytes) -> None:
        self._outbox.append(encode(kind, payload))
        if not self._handling and not self._flush_scheduled:
            # Answers completing together (pool calls) leave in one write.
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._outbox:
            return
        frames = b"".join(self._outbox) if len(self._outbox) > 1 else self._outbox[0]
        self._outbox.clear()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(frames)

    def _stop_reading(self) -> None:
        if self._reading and self._transport is not None and not self._write_paused:
            self._transport.pause_reading()
        self._reading = False
        self._buffer = bytearray()
        self._end_if_answered()

    def end_when_answered(self) -> None:
        """Shutdown: ends the connection once its calls are answered, saying it is going away."""
        self._ending = True
        self._end_if_answered()

    def _end_if_answered(self) -> None:
        if self._unanswered > 0 or self._transport is None or self._transport.is_closing():
            return
        if self._reading:
            if not self._ending:
                return
            # Still reading means the engine did not close the connection: shutdown ends it.
            self._reading = False
            self._transport.pause_reading()
            self._send(Kind.GOING_AWAY, b"")
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        """Cuts the connection now (shutdown's grace period is over)."""
        if self._transport is not None:
            self._transport.abort()


class SocketInUseError(OSError):
    """Another live process serves on the socket path."""


def _is_live(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            return False
    return True


def prepare_socket(path: Path, take_over: bool = False) -> None:
    """Creates the socket's directory (0750) and refuses a path it must not replace.

    A socket another live process serves is refused unless ``take_over`` (the engine
    replacing its own executor, see ``publish_socket``): replacing it would cut a running
    engine off its executor. A stale socket is left for ``publish_socket`` to replace. Anything
    at ``path`` that is not a socket is left alone and reported, since deleting it could
    destroy data the path was mistyped onto.
    """
    path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
    _remove_dead_staging(path)
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise FileExistsError(f"{path} exists and is not a socket")
    if not take_over and _is_live(path):
        raise SocketInUseError(f"{path} is in use by another live process; refusing to replace it")


def _remove_dead_staging(path: Path) -> None:
    """Removes staging sockets of executors that died before publishing theirs."""
    for staging in path.parent.glob(f".{path.name}.*"):
        with contextlib.suppress(OSError):
            if stat.S_ISSOCK(staging.lstat().st_mode) and not _is_live(staging):
                staging.unlink()


def staging_path(path: Path) -> Path:
    """Where this process binds before its socket is renamed onto ``path``."""
    return path.with_name(f".{path.name}.{os.getpid()}")


def bind_staging(path: Path) -> tuple[socket.socket, Path]:
    """A listening socket bound on a private path beside ``path`` (owner-only), and that path."""
    staging = staging_path(path)
    _remove_socket(staging)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # Bind with a umask that leaves the socket owner-only from the start, then chmod anyway
    # in case the platform ignores the umask for sockets.
    previous_umask = os.umask(0o177)
    try:
        listener.bind(str(staging))
    except BaseException:
        listener.close()
        raise
    finally:
        os.umask(previous_umask)
    os.chmod(staging, 0o600)
    listener.listen(128)
    return listener, staging


def publish_socket(staging: Path, path: Path, take_over: bool) -> int:
    """Renames the serving socket at ``staging`` onto ``path``; returns its inode.

    The rename replaces whatever socket was at ``path`` in one step: a stale one, or with
    ``take_over`` the live one of the executor this one replaces, which keeps serving the
    connections it has while new ones reach this executor. The path is never missing.
    """
    if not take_over and _is_live(path):
        raise SocketInUseError(f"{path} is in use by another live process; refusing to replace it")
    os.rename(staging, path)
    return path.lstat().st_ino


def _remove_socket(path: Path, inode: int | None = None) -> None:
    """Removes the socket at ``path`` (only if it is still the one with ``inode``, when given)."""
    try:
        info = path.lstat()
        if stat.S_ISSOCK(info.st_mode) and inode in (None, info.st_ino):
            path.unlink()
    except FileNotFoundError:
        pass


PARENT_CHECK_SECONDS = 1.0


async def _stop_when_orphaned(stop: asyncio.Event) -> None:
    """Stops the executor when the engine that started it is gone.

    An engine killed with SIGKILL cannot stop its executor; without this the executor would
    live on, holding stale policy instances, until someone noticed. Re-parenting (to init
    or a subreaper) is how the end of the parent shows.
    """
    parent = os.getppid()
    while not stop.is_set():
        await asyncio.sleep(PARENT_CHECK_SECONDS)
        if os.getppid() != parent:
            log.warning(
                "the engine that started the executor is gone; shutting down", extra={"parent": parent}
            )
            stop.set()


async def _close_instances(runtime: Runtime, idle: bool, budget: float) -> None:
    """Calls the policy instances' ``close()`` at shutdown, within what is left of the grace.

    Skipped when calls are still running past the grace period: an instance is never closed
    under a call that uses it.
    """
    if not idle:
        log.warning("policy instances not closed: calls are still running")
        return
    try:
        closed = await asyncio.wait_for(asyncio.to_thread(runtime.cache.close_all), max(budget, 1.0))
    except TimeoutError:
        log.warning("policy instances did not finish closing within the grace period")
        return
    if closed:
        log.info("policy instances closed", extra={"instances": closed})


async def serve(
    socket_path: Path,
    runtime: Runtime,
    workers: int,
    max_message_bytes: int,
    grace: float = GRACE_SECONDS,
    take_over: bool = False,
) -> bool:
    """Serves on ``socket_path`` until SIGTERM or SIGINT, then shuts down gracefully.

    With ``take_over`` it replaces the live executor serving on ``socket_path`` (see
    ``publish_socket``); otherwise it refuses to start if one is there.

    Returns:
        Whether every call finished within the grace period (if not, worker threads are
        still running policy code that cannot be interrupted).
    """
    prepare_socket(socket_path, take_over)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="policy")
    service = ExecutorService(runtime, pool, workers, max_message_bytes)
    listener, staging = bind_staging(socket_path)
    try:
        # Handing asyncio the bound socket keeps it from ever unlinking a path itself.
        server = await asyncio.get_running_loop().create_unix_server(service.new_session, sock=listener)
        inode = publish_socket(staging, socket_path, take_over)
    except BaseException:
        _remove_socket(staging)
        listener.close()
        raise

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    service.mark_ready()
    log.info("executor serving", extra={"socket": str(socket_path), "workers": workers})
    watcher = asyncio.create_task(_stop_when_orphaned(stop))

    await stop.wait()
    watcher.cancel()
    started = time.monotonic()
    log.info("shutting down", extra={"grace_seconds": grace})
    service.begin_drain()
    finished = await service.wait_idle(grace)
    server.close()
    service.end_sessions()
    await service.close_sessions(grace - (time.monotonic() - started))
    pool.shutdown(wait=False, cancel_futures=True)
    await _close_instances(runtime, finished, grace - (time.monotonic() - started))
    # After a take-over the path is the successor's socket: never remove that one.
    _remove_socket(socket_path, inode)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
    if finished:
        log.info("executor stopped")
    else:
        log.warning("executor stopped with calls still running after the grace period")
    return finished
