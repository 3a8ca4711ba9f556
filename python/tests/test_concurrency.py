"""Calls on one stream run concurrently and are answered by call_id, in any order."""

from __future__ import annotations

import asyncio

from tests.support import ExecutorProcess, StreamClient, execute_request, invocation, lines, run


def test_fifty_slow_calls_on_one_stream_run_concurrently_and_correlate(executor: ExecutorProcess) -> None:
    async def scenario() -> tuple[list[int], dict[int, dict[str, str]], dict[int, str]]:
        async with StreamClient(executor.socket) as client:
            requests = [
                execute_request([invocation("sleepy", {"seconds": 0.2})], headers=[("x-id", f"caller-{i}")])
                for i in range(50)
            ]
            futures = [await client.send(r) for r in requests]
            responses = await asyncio.wait_for(asyncio.gather(*futures), 60)
            expected = {r.call_id: f"caller-{i}" for i, r in enumerate(requests)}
            got = {
                response.call_id: dict(lines(response.results[0].modifications.set_headers))
                for response in responses
            }
            return client.received, got, expected

    received, got, expected = run(scenario())
    assert sorted(received) == sorted(expected)  # every call answered exactly once
    for call_id, echoed in expected.items():
        assert got[call_id]["x-echo-id"] == echoed
    in_flight = [int(headers["x-in-flight"]) for headers in got.values()]
    # More than one call was inside a policy at the same time, never more than the 8 workers.
    assert max(in_flight) > 1
    assert max(in_flight) <= 8


def test_several_streams_are_served_at_once(executor: ExecutorProcess) -> None:
    async def one_stream(tag: str) -> list[str]:
        async with StreamClient(executor.socket) as client:
            calls = [
                client.call(
                    execute_request([invocation("sleepy", {"seconds": 0.05})], headers=[("x-id", tag)])
                )
                for _ in range(5)
            ]
            return [
                dict(lines(r.results[0].modifications.set_headers))["x-echo-id"]
                for r in await asyncio.gather(*calls)
            ]

    async def scenario() -> list[list[str]]:
        return list(await asyncio.gather(*(one_stream(f"stream-{n}") for n in range(3))))

    for n, echoed in enumerate(run(scenario())):
        assert echoed == [f"stream-{n}"] * 5


def test_a_stream_closed_by_the_client_ends_after_its_answers(executor: ExecutorProcess) -> None:
    async def scenario() -> tuple[bool, list[int], int]:
        async with StreamClient(executor.socket) as client:
            request = execute_request([invocation("sleepy", {"seconds": 0.1})])
            future = await client.send(request)
            await client.done_writing()
            await client.wait_closed()
            assert future.done()
            return client.going_away, client.received, request.call_id

    going_away, received, call_id = run(scenario())
    assert not going_away  # a plain close, not a shutdown
    assert received == [call_id]
