"""The executor's side of the hop: framed protobuf on a Unix socket, and the server's life on it.

The engine keeps one connection open and sends every Python call on it (``executor.frames``),
so calls on a connection must not wait for each other: each ExecuteRequest or ChunkRequest
becomes its own asyncio task, whose batch runs on the worker thread pool (or inline on the event loop when
every policy of the batch declares that it never blocks), and responses are written as they
complete (correlated by ``call_id``, in any order). Health requests are answered at once, in
order. Shutdown drains: calls already received finish and are answered, calls arriving after
it began are answered with an error at once, then each connection gets a GOING_AWAY frame and
is closed, so the engine knows to reconnect elsewhere or give up.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from google.protobuf.message import DecodeError

from executor.batch import Call, Runtime, never_blocks, run_call
from executor.chunks import run_chunk
from executor.frames import FrameError, Kind, encode, read_frame
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

    async def serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serves one connection of the engine until it closes it or shutdown."""
        session = _Session(self, reader, writer)
        self._sessions.add(session)
        try:
            await session.run()
        finally:
            self._sessions.discard(session)

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

    async def execute(self, request: Call) -> Answer:
        """Runs one call (a batch or a chunk); any failure of the executor itself becomes an error answer.

        A batch whose policies all declare that they never block runs inline on the event
        loop (no thread hand-off); any other batch runs on the worker pool, where the
        in-flight count follows the worker thread, not this coroutine: if the connection goes
        away mid-call the coroutine is cancelled but the policy code keeps running, and
        shutdown must still wait for it.
        """
        received_at = time.monotonic()
        self._in_flight += 1
        self._idle.clear()
        try:
            if never_blocks(request, self._runtime.policies):
                try:
                    response = _run(request, self._runtime, received_at)
                finally:
                    self._call_ended()
            else:
                response = await self._on_pool(request, received_at)
        except Exception as error:
            log.exception(
                "call failed inside the executor", extra={"call_id": request.call_id, "error": str(error)}
            )
            response = error_answer(request, f"executor error: {error}")
        self._calls_served += 1
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

    async def _on_pool(self, request: Call, received_at: float) -> Answer:
        loop = asyncio.get_running_loop()
        work = self._pool.submit(
            self._running.run,
            call_deadline(received_at, request.budget_ms),
            lambda: _run(request, self._runtime, received_at),
        )
        work.add_done_callback(lambda _: self._from_worker(loop, self._call_ended))
        return await asyncio.wrap_future(work)

    @staticmethod
    def _from_worker(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        # A closed loop means the executor is exiting anyway.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(callback)

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
            session.wake()

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


class _Session:
    """One connection: reads frames, runs each call as a task, writes answers as they complete."""

    def __init__(
        self, service: ExecutorService, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._service = service
        self._reader = reader
        self._writer = writer
        self._changed = asyncio.Event()
        self._pending: set[asyncio.Task[None]] = set()
        self._reading = True
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def wake(self) -> None:
        """Makes the session re-check whether the connection can end."""
        self._changed.set()

    def abort(self) -> None:
        """Cuts the connection now (shutdown's grace period is over)."""
        self._writer.transport.abort()

    async def run(self) -> None:
        """Serves the connection; returns when it is finished."""
        try:
            reader = asyncio.create_task(self._read())
            try:
                while not self._done():
                    await self._changed.wait()
                    self._changed.clear()
                # Still reading means the engine did not close the connection: shutdown ends it.
                cut_short = self._reading
            finally:
                reader.cancel()
                for task in self._pending:
                    task.cancel()
                await asyncio.gather(reader, *self._pending, return_exceptions=True)
            if cut_short:
                await self._going_away()
            else:
                await self._close()
        finally:
            if not self.finished.done():
                self.finished.set_result(None)

    def _done(self) -> bool:
        if self._pending:
            return False
        return not self._reading or self._service.is_closing()

    async def _going_away(self) -> None:
        self._send(Kind.GOING_AWAY, b"")
        await self._close()

    async def _close(self) -> None:
        with contextlib.suppress(OSError):
            await self._writer.drain()
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    def _send(self, kind: Kind, payload: bytes) -> None:
        if not self._writer.is_closing():
            self._writer.write(encode(kind, payload))

    async def _read(self) -> None:
        try:
            while True:
                frame = await read_frame(self._reader, self._service.max_message_bytes)
                if frame is None:
                    break
                kind, payload = frame
                if kind == Kind.HEALTH_REQUEST:
                    self._send(Kind.HEALTH_RESPONSE, self._service.health().SerializeToString())
                elif kind == Kind.EXECUTE_REQUEST:
                    self._received(pb.ExecuteRequest.FromString(payload))
                elif kind == Kind.CHUNK_REQUEST:
                    self._received(pb.ChunkRequest.FromString(payload))
                else:
                    raise FrameError(f"unexpected frame kind {kind.name} from the engine")
        except (FrameError, DecodeError, asyncio.IncompleteReadError) as error:
            # Nothing after a broken frame can be trusted: answer what was received, then close.
            log.error("bad frame from the engine; closing the connection", extra={"error": str(error)})
        except OSError as error:
            log.warning("engine connection failed", extra={"error": str(error)})
        finally:
            self._reading = False
            self.wake()

    def _received(self, request: Call) -> None:
        if self._service.is_draining():
            self._answer_now(request, error_answer(request, SHUTTING_DOWN))
            return
        task = asyncio.create_task(self._answer(request))
        self._pending.add(task)
        task.add_done_callback(self._task_done)

    def _answer_now(self, request: Call, response: Answer) -> None:
        payload = response.SerializeToString()
        limit = self._service.max_message_bytes
        if len(payload) > limit:
            message = f"the answer ({len(payload)} bytes) is over the {limit}-byte message limit"
            payload = error_answer(request, message).SerializeToString()
        kind = Kind.CHUNK_RESPONSE if isinstance(request, pb.ChunkRequest) else Kind.EXECUTE_RESPONSE
        self._send(kind, payload)

    async def _answer(self, request: Call) -> None:
        self._answer_now(request, await self._service.execute(request))
        # Backpressure: an engine that does not read its answers stops this call's task here.
        with contextlib.suppress(OSError):
            await self._writer.drain()

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        self.wake()


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
        server = await asyncio.start_unix_server(service.serve_connection, sock=listener)
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
