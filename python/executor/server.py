"""The gRPC side: the PythonExecutor service and the server's life on its Unix socket.

The engine keeps one ExecuteStream open and sends every Python call on it, so calls on a
stream must not wait for each other: each ExecuteRequest becomes its own asyncio task,
whose batch runs on the worker thread pool, and responses are written as they complete
(correlated by ``call_id``, in any order). Shutdown drains: calls already received finish
and are answered, calls arriving after it began are answered with an error at once, then
the streams end with UNAVAILABLE so the engine knows to reconnect elsewhere or give up.
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
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

from executor.batch import Runtime, run_call
from executor.running import RunningCalls, call_deadline
from tollgate.executor.v1 import executor_pb2 as pb
from tollgate.executor.v1 import executor_pb2_grpc

log = logging.getLogger("executor.server")

GRACE_SECONDS = 10.0
"""How long in-flight calls get to finish on SIGTERM/SIGINT."""

Context = grpc.aio.ServicerContext[pb.ExecuteRequest, pb.ExecuteResponse]


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


class ExecutorService(executor_pb2_grpc.PythonExecutorServicer):
    """Implements ``tollgate.executor.v1.PythonExecutor``."""

    def __init__(self, runtime: Runtime, pool: ThreadPoolExecutor, workers: int) -> None:
        self._runtime = runtime
        self._pool = pool
        self._workers = workers
        self._ready = False
        self._draining = False
        self._calls_served = 0
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._sessions: set[_Session] = set()
        self._running = RunningCalls()

    def is_draining(self) -> bool:
        """Whether shutdown has begun (new calls are refused)."""
        return self._draining

    def mark_ready(self) -> None:
        """Called once the server is bound and serving."""
        self._ready = True

    async def ExecuteStream(
        self, request_iterator: AsyncIterator[pb.ExecuteRequest], context: Context
    ) -> None:
        """Serves one multiplexed stream of calls until the engine closes it or shutdown."""
        session = _Session(self, context)
        self._sessions.add(session)
        try:
            await session.run(request_iterator)
        finally:
            self._sessions.discard(session)

    async def HealthCheck(
        self,
        request: pb.HealthCheckRequest,
        context: grpc.aio.ServicerContext[pb.HealthCheckRequest, pb.HealthCheckResponse],
    ) -> pb.HealthCheckResponse:
        """Readiness, and which policies loaded or failed, for the engine's startup check."""
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

    async def execute(self, request: pb.ExecuteRequest) -> pb.ExecuteResponse:
        """Runs one call on the worker pool; any failure of the executor itself becomes an error.

        The in-flight count follows the worker thread, not this coroutine: if the stream goes
        away mid-call the coroutine is cancelled but the policy code keeps running, and
        shutdown must still wait for it.
        """
        received_at = time.monotonic()
        loop = asyncio.get_running_loop()
        self._in_flight += 1
        self._idle.clear()
        work = self._pool.submit(
            self._running.run,
            call_deadline(received_at, request.budget_ms),
            lambda: run_call(request, self._runtime, received_at),
        )
        work.add_done_callback(lambda _: self._from_worker(loop, self._call_ended))
        try:
            response = await asyncio.wrap_future(work)
        except Exception as error:
            log.exception("call failed inside the executor", extra={"call_id": request.call_id})
            response = pb.ExecuteResponse(call_id=request.call_id, error=f"executor error: {error}")
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
        """Refuses new calls from now on and lets open streams end once their calls finish."""
        self._draining = True
        for session in list(self._sessions):
            session.wake()

    async def wait_idle(self, limit: float) -> bool:
        """Waits until no call is running; False if ``limit`` seconds passed first."""
        try:
            await asyncio.wait_for(self._idle.wait(), limit)
        except TimeoutError:
            return False
        return True


class _Session:
    """One ExecuteStream: reads calls, runs each as a task, writes responses as they complete."""

    def __init__(self, service: ExecutorService, context: Context) -> None:
        self._service = service
        self._context = context
        # Responses to write, and None as a wake-up to re-check whether the stream is done.
        self._outbox: asyncio.Queue[pb.ExecuteResponse | None] = asyncio.Queue()
        self._pending: set[asyncio.Task[None]] = set()
        self._reading = True

    def wake(self) -> None:
        """Makes the writer loop re-check whether the stream can end."""
        self._outbox.put_nowait(None)

    async def run(self, requests: AsyncIterator[pb.ExecuteRequest]) -> None:
        """Runs the stream; returns when it is finished (or raises if the engine went away)."""
        if self._service.is_draining():
            self._end_for_shutdown()
            return
        reader = asyncio.create_task(self._read(requests))
        try:
            while True:
                item = await self._outbox.get()
                if item is not None:
                    await self._context.write(item)
                elif self._finished():
                    break
            # Still reading means the engine did not close the stream: shutdown ends it.
            cut_short = self._reading
        finally:
            reader.cancel()
            for task in self._pending:
                task.cancel()
            await asyncio.gather(reader, *self._pending, return_exceptions=True)
        if cut_short:
            self._end_for_shutdown()

    def _end_for_shutdown(self) -> None:
        self._context.set_code(grpc.StatusCode.UNAVAILABLE)
        self._context.set_details("the Python executor is shutting down")

    def _finished(self) -> bool:
        if self._pending or not self._outbox.empty():
            return False
        return not self._reading or self._service.is_draining()

    async def _read(self, requests: AsyncIterator[pb.ExecuteRequest]) -> None:
        try:
            async for request in requests:
                if self._service.is_draining():
                    self._outbox.put_nowait(
                        pb.ExecuteResponse(
                            call_id=request.call_id, error="the Python executor is shutting down"
                        )
                    )
                    continue
                task = asyncio.create_task(self._answer(request))
                self._pending.add(task)
                task.add_done_callback(self._done)
        finally:
            self._reading = False
            self.wake()

    async def _answer(self, request: pb.ExecuteRequest) -> None:
        self._outbox.put_nowait(await self._service.execute(request))

    def _done(self, task: asyncio.Task[None]) -> None:
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


def bind_staging(server: grpc.aio.Server, path: Path) -> Path:
    """Binds ``server`` on a private path beside ``path`` (owner-only); returns that path."""
    staging = staging_path(path)
    _remove_socket(staging)
    # Bind with a umask that leaves the socket owner-only from the start, then chmod anyway
    # in case the platform ignores the umask for sockets.
    previous_umask = os.umask(0o177)
    try:
        server.add_insecure_port(f"unix:{staging}")
    finally:
        os.umask(previous_umask)
    os.chmod(staging, 0o600)
    return staging


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
    service = ExecutorService(runtime, pool, workers)
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
    )
    executor_pb2_grpc.add_PythonExecutorServicer_to_server(service, server)
    staging = bind_staging(server, socket_path)
    try:
        await server.start()
        inode = publish_socket(staging, socket_path, take_over)
    except BaseException:
        _remove_socket(staging)
        await server.stop(None)
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
    await server.stop(max(0.0, grace - (time.monotonic() - started)))
    pool.shutdown(wait=False, cancel_futures=True)
    # After a take-over the path is the successor's socket: never remove that one.
    _remove_socket(socket_path, inode)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
    if finished:
        log.info("executor stopped")
    else:
        log.warning("executor stopped with calls still running after the grace period")
    return finished
