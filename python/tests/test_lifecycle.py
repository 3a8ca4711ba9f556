"""Graceful shutdown on SIGTERM/SIGINT, and starting over a stale socket."""

from __future__ import annotations

import asyncio
import signal
import socket as sockets
import stat
import time
from pathlib import Path

import pytest

from tests.support import (
    ExecutorProcess,
    SpawnExecutor,
    StreamClient,
    call_one,
    chunk_request,
    execute_request,
    health,
    invocation,
    lines,
    run,
)
from tollgate.executor.v1 import executor_pb2 as pb

SLEEPY_ONLY = {"sleepy:v1": ("sleepy", "v1.0.0", "python/tests/policies/sleepy")}


def _wait_for(path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def test_sigterm_finishes_in_flight_calls_refuses_new_ones_and_exits_0(
    tmp_path: Path, spawn_executor: SpawnExecutor
) -> None:
    executor = spawn_executor(SLEEPY_ONLY, workers=2).start()
    started = tmp_path / "started"

    async def scenario() -> None:
        async with StreamClient(executor.socket) as client:
            slow = await client.send(
                execute_request(
                    [invocation("sleepy", {"seconds": 2.5, "startedFile": str(started)})],
                    headers=[("x-id", "slow")],
                )
            )
            await asyncio.to_thread(_wait_for, started)
            executor.send_signal(signal.SIGTERM)
            # Draining: health turns not-ready while the slow call is still running.
            for _ in range(200):
                if not (await health(executor.socket)).ready:
                    break
                await asyncio.sleep(0.01)
            else:
                raise AssertionError("executor never reported not-ready after SIGTERM")
            late = await client.send(execute_request([invocation("sleepy", {"seconds": 0})]))
            late_response = await asyncio.wait_for(late, 10)
            assert late_response.error == "the Python executor is shutting down"
            assert not late_response.results
            late_chunk = await client.send_chunk(chunk_request([invocation("sleepy", {"seconds": 0})], b"x"))
            late_chunk_response = await asyncio.wait_for(late_chunk, 10)
            assert isinstance(late_chunk_response, pb.ChunkResponse), "answered in a chunk response frame"
            assert late_chunk_response.error == "the Python executor is shutting down"
            slow_response = await asyncio.wait_for(slow, 10)
            assert not slow_response.error
            assert ("x-echo-id", "slow") in lines(slow_response.results[0].modifications.set_headers)
            await client.wait_closed()
            assert client.going_away, "the executor said it is shutting down before closing"

    run(scenario())
    assert executor.wait(20) == 0
    assert not executor.socket.exists()
    messages = [r["msg"] for r in executor.log_records()]
    assert "shutting down" in messages
    assert messages[-1] == "executor stopped"


def test_shutdown_closes_each_cached_policy_instance_once(
    tmp_path: Path, spawn_executor: SpawnExecutor
) -> None:
    executor = spawn_executor().start()
    closed = tmp_path / "closed.log"
    for tag in ("a", "b", "a"):
        params = {"log": str(tmp_path / "factory.log"), "tag": tag, "closeLog": str(closed)}
        call_one(executor.socket, execute_request([invocation("counted", params, hash_=f"hash-{tag}")]))
    assert not closed.exists(), "instances stay open while the executor serves"
    assert executor.stop(signal.SIGTERM) == 0
    assert sorted(closed.read_text().splitlines()) == ["a", "b"]


def test_sigint_on_an_idle_executor_exits_0_and_removes_the_socket(spawn_executor: SpawnExecutor) -> None:
    executor = spawn_executor(SLEEPY_ONLY).start()
    assert executor.stop(signal.SIGINT) == 0
    assert not executor.socket.exists()


def test_stale_socket_from_a_previous_run_is_replaced(spawn_executor: SpawnExecutor) -> None:
    executor = spawn_executor(SLEEPY_ONLY)
    executor.socket.parent.mkdir(parents=True)
    stale = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
    stale.bind(str(executor.socket))
    stale.close()  # the file stays, nobody listens: what a crashed executor leaves behind
    executor.start()
    try:
        assert run(health(executor.socket)).ready
    finally:
        assert executor.stop() == 0


def test_staging_sockets_of_executors_that_died_before_publishing_are_removed(
    spawn_executor: SpawnExecutor,
) -> None:
    executor = spawn_executor(SLEEPY_ONLY)
    executor.socket.parent.mkdir(parents=True)
    dead = executor.socket.with_name(f".{executor.socket.name}.1")
    stale = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
    stale.bind(str(dead))
    stale.close()
    executor.start()
    try:
        assert sorted(p.name for p in executor.socket.parent.iterdir()) == [executor.socket.name]
    finally:
        assert executor.stop() == 0


def test_health_counts_workers_still_running_calls_past_their_budget(spawn_executor: SpawnExecutor) -> None:
    executor = spawn_executor(SLEEPY_ONLY, workers=2).start()

    async def scenario() -> None:
        async with StreamClient(executor.socket) as client:
            over_budget = await client.send(
                execute_request([invocation("sleepy", {"seconds": 1.5})], budget_ms=100)
            )
            no_budget = await client.send(execute_request([invocation("sleepy", {"seconds": 1.5})]))
            for _ in range(100):
                status = await health(executor.socket)
                if status.overdue_workers:
                    break
                await asyncio.sleep(0.02)
            assert status.overdue_workers == 1, "only the call with a spent budget is overdue"
            assert status.workers == 2
            assert status.ready, "overdue workers are reported, not judged, by the executor"
            await asyncio.wait_for(asyncio.gather(over_budget, no_budget), 10)
            assert (await health(executor.socket)).overdue_workers == 0

    run(scenario())


def test_a_second_executor_refuses_a_socket_a_live_one_serves(tmp_path: Path) -> None:
    first = ExecutorProcess(tmp_path / "first", SLEEPY_ONLY).start()
    try:
        inode = first.socket.lstat().st_ino
        second = ExecutorProcess(tmp_path / "second", SLEEPY_ONLY, socket=first.socket)
        with pytest.raises(RuntimeError, match="exited with 1"):
            second.start()
        assert any(
            r["msg"] == f"cannot serve on {first.socket}: {first.socket} is in use by another live process; "
            "refusing to replace it"
            for r in second.log_records()
        )
        assert first.socket.lstat().st_ino == inode
        answer = run(health(first.socket))
        assert answer.ready
        assert answer.pid == first.pid
    finally:
        assert first.stop() == 0


def test_take_over_replaces_a_live_executor_whose_exit_leaves_the_new_socket(tmp_path: Path) -> None:
    first = ExecutorProcess(tmp_path / "first", SLEEPY_ONLY).start()
    successor = ExecutorProcess(
        tmp_path / "next", SLEEPY_ONLY, extra_args=["--take-over"], socket=first.socket
    )
    try:
        successor.start()
        assert run(health(first.socket)).pid == successor.pid
        assert first.stop() == 0
        answer = run(health(successor.socket))
        assert answer.ready
        assert answer.pid == successor.pid
        assert answer.rss_bytes > 1024 * 1024
        assert [p.name for p in first.socket.parent.iterdir()] == [first.socket.name]
    finally:
        first.stop()
        assert successor.stop() == 0


def test_the_socket_directory_is_created_0750(spawn_executor: SpawnExecutor) -> None:
    executor = spawn_executor(SLEEPY_ONLY).start()
    try:
        assert stat.S_IMODE(executor.socket.parent.stat().st_mode) == 0o750
    finally:
        assert executor.stop() == 0
