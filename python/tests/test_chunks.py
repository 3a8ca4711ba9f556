"""The chunk path: streamed body chunks through a batch of streaming policies (ChunkRequest)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support import (
    ExecutorProcess,
    Response,
    StreamClient,
    chunk_all,
    chunk_one,
    chunk_outcome,
    chunk_request,
    error_of,
    invocation,
    lines,
    plain,
    run,
)
from tollgate.executor.v1 import executor_pb2 as pb


def chunky(label: str, on_failure: str = "deny", name: str = "chunky", **params: Any) -> pb.PolicyInvocation:
    return invocation(name, {"label": label, **params}, on_failure=on_failure)


def seen(response: pb.ChunkResponse) -> list[dict[str, Any]]:
    """What each chunky policy saw, from the returned metadata."""
    entries: list[dict[str, Any]] = plain(response.metadata).get("chunks", [])
    return entries


def without_threads(metadata: Any) -> dict[str, Any]:
    """The metadata without the worker names (a batch and single calls may run on different threads)."""
    data = plain(metadata)
    for entry in data.get("chunks", []):
        entry.pop("thread")
    return data


def forwarded(request: pb.ChunkRequest, response: pb.ChunkResponse) -> bytes:
    """What the engine forwards: the data sent back if a policy replaced it, else the chunk it sent."""
    return response.data if "replaced" in outcomes(response) else request.data


def outcomes(response: pb.ChunkResponse) -> list[str]:
    return [chunk_outcome(result) for result in response.results]


def test_each_policy_gets_the_previous_ones_output_in_order(executor: ExecutorProcess) -> None:
    request = chunk_request(
        [chunky("a", append="-a"), chunky("b", append="-b"), chunky("c")],
        b"data: x\n\n",
        headers=[("x-req", "1")],
        path="/upload",
    )
    response = chunk_one(executor.socket, request)
    assert not response.error
    assert outcomes(response) == ["replaced", "replaced", "forwarded"]
    assert [s["label"] for s in seen(response)] == ["a", "b", "c"]
    assert [s["data"] for s in seen(response)] == ["data: x\n\n", "data: x\n\n-a", "data: x\n\n-a-b"]
    assert response.data == b"data: x\n\n-a-b"
    first = seen(response)[0]
    assert (first["phase"], first["index"], first["end"]) == ("request", 0, False)
    assert (first["requestHeaders"], first["path"], first["method"]) == ({"x-req": ["1"]}, "/upload", "POST")
    assert (first["status"], first["responseHeaders"], first["requestId"]) == (0, {}, "req-1")


def test_a_response_chunk_sees_the_response_status_and_headers(executor: ExecutorProcess) -> None:
    request = chunk_request(
        [chunky("a", replace="")],
        b"last",
        index=7,
        end_of_stream=True,
        headers=[("accept", "text/event-stream")],
        response=Response(status=201, headers=[("content-type", "text/event-stream"), ("x-r", "1")]),
    )
    response = chunk_one(executor.socket, request)
    assert outcomes(response) == ["replaced"]
    assert response.data == b"", "an empty replacement holds the chunk back"
    [context] = seen(response)
    assert (context["phase"], context["index"], context["end"], context["status"]) == (
        "response",
        7,
        True,
        201,
    )
    assert context["responseHeaders"] == {"content-type": ["text/event-stream"], "x-r": ["1"]}
    assert context["requestHeaders"] == {"accept": ["text/event-stream"]}


def test_state_carries_across_chunks_only_through_the_metadata(executor: ExecutorProcess) -> None:
    metadata: Any = {"kept": "yes"}
    for index in range(3):
        request = chunk_request(
            [chunky("a", count=True)], f"c{index}".encode(), index=index, metadata=metadata
        )
        response = chunk_one(executor.socket, request)
        metadata = response.metadata
    final = plain(metadata)
    assert final["counts"] == {"a": 3.0}
    assert final["kept"] == "yes"
    assert [entry["data"] for entry in final["chunks"]] == ["c0", "c1", "c2"]


def test_ending_the_exchange_stops_the_batch(executor: ExecutorProcess) -> None:
    ending = {"status": 413, "headers": {"x-why": "too-long"}, "body": "stop"}
    request = chunk_request([chunky("a", append="!"), chunky("b", end=ending), chunky("c")], b"x")
    response = chunk_one(executor.socket, request)
    assert outcomes(response) == ["replaced", "ended"]
    assert [s["label"] for s in seen(response)] == ["a", "b"]
    answer = response.results[1].ended.response
    assert (answer.status_code, lines(answer.headers), answer.body) == (413, [("x-why", "too-long")], b"stop")
    assert response.data == b"x!", "the data is what the ending policy received"


def test_ending_without_a_response(executor: ExecutorProcess) -> None:
    response = chunk_one(executor.socket, chunk_request([chunky("a", end=None), chunky("b")], b"x"))
    assert outcomes(response) == ["ended"]
    assert not response.results[0].ended.HasField("response")


@pytest.mark.parametrize(
    ("rule", "expected", "ran", "data"),
    [
        ("continue", ["replaced", "error", "replaced"], ["a", "b", "c"], b"x-a-c"),
        ("skipRemaining", ["replaced", "error"], ["a", "b"], b"x-a"),
        ("deny", ["replaced", "error"], ["a", "b"], b"x-a"),
    ],
)
def test_a_failing_policy_follows_its_rule(
    executor: ExecutorProcess, rule: str, expected: list[str], ran: list[str], data: bytes
) -> None:
    request = chunk_request(
        [
            chunky("a", append="-a"),
            chunky("b", rule, append="-b", **{"raise": "boom"}),
            chunky("c", append="-c"),
        ],
        b"x",
    )
    response = chunk_one(executor.socket, request)
    assert outcomes(response) == expected
    assert [s["label"] for s in seen(response)] == ran
    assert error_of(response.results[1]) == ("ERROR_KIND_EXECUTION", "RuntimeError: boom")
    assert response.data == data, "a failed policy passes nothing of its own on"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("int", "on_request_chunk returned int; expected ReplaceChunk, EndExchange or None"),
        ("immediate", "wrap it: EndExchange(ImmediateResponse(...))"),
        ("coroutine", "the handler is a coroutine function"),
        ("replaceNone", "ReplaceChunk data must be bytes or str, not None"),
        ("replaceInt", "body must be bytes or str, not int"),
        ("endBadStatus", "immediate response status_code 99: must be an integer from 200 to 599"),
        ("endNotResponse", "EndExchange response must be an ImmediateResponse or None, not str"),
    ],
)
def test_an_invalid_chunk_action_is_an_execution_error(
    executor: ExecutorProcess, value: str, message: str
) -> None:
    response = chunk_one(executor.socket, chunk_request([chunky("a", returnValue=value)], b"x"))
    kind, text = error_of(response.results[0])
    assert kind == "ERROR_KIND_EXECUTION"
    assert message in text
    assert response.data == b"", "an unchanged chunk does not travel back"


def test_a_streaming_definition_without_a_chunk_handler_fails_loudly(executor: ExecutorProcess) -> None:
    scripted = invocation("scripted", {"label": "s"})
    request = chunk_request([scripted], b"x", response=Response())
    [result] = chunk_one(executor.socket, request).results
    assert error_of(result) == (
        "ERROR_KIND_EXECUTION",
        "NotImplementedError: Scripted does not implement on_response_chunk, but its definition streams "
        "the response body",
    )


def test_unknown_and_unloadable_policies_fail_by_their_rule(executor: ExecutorProcess) -> None:
    request = chunk_request(
        [
            invocation("nope", on_failure="continue"),
            invocation("broken-import", on_failure="continue"),
            chunky("c"),
        ],
        b"x",
    )
    response = chunk_one(executor.socket, request)
    assert outcomes(response) == ["error", "error", "forwarded"]
    assert error_of(response.results[0])[0] == "ERROR_KIND_NOT_FOUND"
    assert error_of(response.results[1])[0] == "ERROR_KIND_INIT"


def test_metadata_that_is_not_json_is_rolled_back(executor: ExecutorProcess) -> None:
    request = chunk_request(
        [chunky("a", append="-a"), chunky("b", "continue", append="-b", metadataNotJson="bad"), chunky("c")],
        b"x",
        metadata={"k": 1},
    )
    response = chunk_one(executor.socket, request)
    assert outcomes(response) == ["replaced", "error", "forwarded"]
    kind, message = error_of(response.results[1])
    assert (kind, message) == (
        "ERROR_KIND_EXECUTION",
        "NotJsonError: metadata['bad']: set is not a JSON value",
    )
    final = plain(response.metadata)
    assert "bad" not in final
    assert [s["label"] for s in final["chunks"]] == ["a", "c"], "b's metadata changes were rolled back"
    assert response.data == b"x-a", "and so was its chunk"


def test_the_budget_stops_the_batch_even_under_continue(executor: ExecutorProcess) -> None:
    request = chunk_request(
        [chunky("a", "continue", sleep=0.2), chunky("b", "continue")],
        b"x",
        budget_ms=100,
    )
    response = chunk_one(executor.socket, request)
    assert outcomes(response) == ["forwarded", "error"]
    assert error_of(response.results[1]) == ("ERROR_KIND_TIMEOUT", "the call's 100ms budget was spent")


def test_a_malformed_chunk_call_is_answered_with_an_error(executor: ExecutorProcess) -> None:
    request = chunk_request([chunky("a")], b"x", response=Response())
    request.ClearField("response")
    response = chunk_one(executor.socket, request)
    assert response.error == "a PHASE_RESPONSE call needs response data"
    assert list(response.results) == []


def test_non_blocking_policies_run_inline_and_others_on_a_worker(executor: ExecutorProcess) -> None:
    inline, pooled = chunk_all(
        executor.socket,
        chunk_request([chunky("i", name="chunky-inline")], b"x"),
        chunk_request([chunky("p")], b"x"),
    )
    assert seen(inline)[0]["thread"] == "MainThread"
    assert seen(pooled)[0]["thread"].startswith("policy")


def test_a_batch_gives_the_results_of_one_by_one_calls(executor: ExecutorProcess) -> None:
    chains = [
        [chunky("a", append="-a"), chunky("b", append="-b"), chunky("c", count=True)],
        [chunky("a", append="-a"), chunky("b", "continue", **{"raise": "x"}), chunky("c", append="-c")],
        [chunky("a", append="-a"), chunky("b", "skipRemaining", **{"raise": "x"}), chunky("c")],
        [chunky("a", replace="R"), chunky("b", end={"status": 403}), chunky("c")],
        [chunky("a", replace=""), chunky("b", append="-b")],
    ]
    for chain in chains:
        batched = chunk_request(chain, b"in", metadata={"m": 1})
        together = chunk_one(executor.socket, batched)

        data, metadata = b"in", chunk_request([], b"", metadata={"m": 1}).metadata
        one_by_one: list[pb.ChunkResult] = []
        for policy in chain:
            request = chunk_request([policy], data, metadata=metadata)
            single = chunk_one(executor.socket, request)
            [result] = single.results
            one_by_one.append(result)
            data, metadata = forwarded(request, single), single.metadata
            kind = chunk_outcome(result)
            if kind == "ended" or (kind == "error" and policy.on_failure != pb.FAILURE_RULE_CONTINUE):
                break
        assert list(together.results) == one_by_one, chain
        assert forwarded(batched, together) == data, chain
        assert without_threads(together.metadata) == without_threads(metadata), chain


def test_interleaved_chunk_calls_on_one_connection_get_their_own_answers(executor: ExecutorProcess) -> None:
    async def scenario() -> None:
        async with StreamClient(executor.socket) as client:
            requests = [
                chunk_request(
                    [chunky("a", name="chunky-inline" if i % 2 else "chunky", append=f"-{i}")],
                    f"chunk-{i}".encode(),
                    index=i,
                    request_id=f"req-{i}",
                )
                for i in range(100)
            ]
            answers = await asyncio.gather(*(client.call_chunk(r) for r in requests))
            for i, answer in enumerate(answers):
                assert answer.call_id == requests[i].call_id
                assert answer.data == f"chunk-{i}-{i}".encode()
                assert seen(answer)[0]["requestId"] == f"req-{i}"

    run(scenario())
