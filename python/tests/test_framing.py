"""The framed hop: inline runs for policies that never block, and broken framing."""

from __future__ import annotations

import asyncio
import struct

from executor.frames import Kind, encode, read_frame
from tests.support import (
    ExecutorProcess,
    SpawnExecutor,
    StreamClient,
    call_one,
    chunk_one,
    chunk_request,
    execute_request,
    health,
    invocation,
    lines,
    run,
)
from tollgate.executor.v1 import executor_pb2 as pb


def _thread_of(executor: ExecutorProcess, *names: str) -> str:
    response = call_one(executor.socket, execute_request([invocation(n) for n in names]))
    assert not response.error, response.error
    return dict(lines(response.results[-1].modifications.set_headers))["x-thread"]


def test_a_policy_declared_non_blocking_runs_inline_on_the_event_loop(executor: ExecutorProcess) -> None:
    assert _thread_of(executor, "inline-thread") == "MainThread"


def test_a_policy_not_declared_non_blocking_runs_on_a_worker_thread(executor: ExecutorProcess) -> None:
    assert _thread_of(executor, "pooled-thread").startswith("policy")


def test_a_batch_with_one_blocking_policy_runs_whole_on_a_worker(executor: ExecutorProcess) -> None:
    assert _thread_of(executor, "pooled-thread", "inline-thread").startswith("policy")


def test_health_and_calls_share_one_connection(executor: ExecutorProcess) -> None:
    async def scenario() -> tuple[bool, str]:
        async with StreamClient(executor.socket) as client:
            answer = await client.call(execute_request([invocation("inline-thread")]))
            return (await health(executor.socket)).ready, answer.results[0].WhichOneof("outcome") or ""

    assert run(scenario()) == (True, "modifications")


def _closed_after(executor: ExecutorProcess, data: bytes) -> list[int]:
    """Sends ``data`` on a fresh connection; the call ids answered before the executor closed it."""

    async def scenario() -> list[int]:
        async with StreamClient(executor.socket) as client:
            await client.send_raw(data)
            await client.wait_closed(10)
            return client.received

    return run(scenario())


def test_a_chunk_answer_over_the_size_limit_becomes_an_error_answer(spawn_executor: SpawnExecutor) -> None:
    executor = spawn_executor(extra_args=["--max-message-bytes", "1024"]).start()
    growing = invocation("chunky", {"label": "g", "repeat": 2048})
    response = chunk_one(executor.socket, chunk_request([growing], b"x"))
    assert response.error.startswith("the answer (")
    assert response.error.endswith("bytes) is over the 1024-byte message limit")
    assert not response.results
    assert executor.stop() == 0


def test_a_frame_over_the_size_limit_closes_the_connection(spawn_executor: SpawnExecutor) -> None:
    executor = spawn_executor(extra_args=["--max-message-bytes", "1024"]).start()
    ok = execute_request([invocation("inline-thread")])
    huge = execute_request([invocation("inline-thread")], body=b"x" * 4096)
    received = _closed_after(
        executor,
        encode(Kind.EXECUTE_REQUEST, ok.SerializeToString())
        + encode(Kind.EXECUTE_REQUEST, huge.SerializeToString()),
    )
    assert received == [ok.call_id], "the call before the oversized frame was answered"
    assert run(health(executor.socket)).ready, "the executor keeps serving other connections"
    errors = [r for r in executor.log_records() if r["msg"].startswith("bad frame")]
    assert errors
    assert "over the 1024-byte limit" in errors[0]["error"]
    assert executor.stop() == 0


def test_an_unknown_frame_kind_or_undecodable_payload_closes_the_connection(
    executor: ExecutorProcess,
) -> None:
    assert _closed_after(executor, struct.pack(">IB", 0, 99)) == []
    assert _closed_after(executor, encode(Kind.EXECUTE_REQUEST, b"\xff\xff\xff")) == []
    assert run(health(executor.socket)).ready


def test_a_connection_cut_inside_a_frame_is_dropped_without_harm(executor: ExecutorProcess) -> None:
    async def scenario() -> None:
        _, writer = await asyncio.open_unix_connection(str(executor.socket))
        writer.write(struct.pack(">IB", 100, Kind.EXECUTE_REQUEST) + b"short")
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    run(scenario())
    assert run(health(executor.socket)).ready


def test_frames_split_anywhere_or_sent_together_are_all_answered_in_one_connection(
    executor: ExecutorProcess,
) -> None:
    # Three calls and a health check: the first call byte by byte, the rest in one write.
    requests = [execute_request([invocation("add-python-header")]) for _ in range(3)]
    frames = [encode(Kind.EXECUTE_REQUEST, r.SerializeToString()) for r in requests]

    async def scenario() -> tuple[set[int], list[Kind]]:
        reader, writer = await asyncio.open_unix_connection(str(executor.socket))
        for byte in frames[0]:
            writer.write(bytes([byte]))
            await writer.drain()
        writer.write(b"".join(frames[1:]) + encode(Kind.HEALTH_REQUEST, b""))
        await writer.drain()
        answered: set[int] = set()
        kinds: list[Kind] = []
        while len(kinds) < 4:
            frame = await asyncio.wait_for(read_frame(reader, 1 << 20), 10)
            assert frame is not None
            kind, payload = frame
            kinds.append(kind)
            if kind == Kind.EXECUTE_RESPONSE:
                response = pb.ExecuteResponse.FromString(payload)
                assert not response.error, response.error
                answered.add(response.call_id)
        writer.close()
        await writer.wait_closed()
        return answered, kinds

    answered, kinds = run(scenario())
    assert answered == {r.call_id for r in requests}
    assert sorted(kinds) == [Kind.EXECUTE_RESPONSE] * 3 + [Kind.HEALTH_RESPONSE]
