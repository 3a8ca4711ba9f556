"""The sample streaming policy sse-token-count, run by the real executor chunk by chunk."""

from __future__ import annotations

import json
from typing import Any

from tests.support import (
    ExecutorProcess,
    Response,
    chunk_one,
    chunk_outcome,
    chunk_request,
    error_of,
    invocation,
    plain,
)
from tollgate.executor.v1 import executor_pb2 as pb

SSE = Response(status=200, headers=[("content-type", "text/event-stream; charset=utf-8")])


def openai(text: str) -> str:
    return f"data: {json.dumps({'choices': [{'index': 0, 'delta': {'content': text}}]})}\n\n"


def stream(
    executor: ExecutorProcess,
    chunks: list[str],
    params: dict[str, Any] | None = None,
    response: Response = SSE,
) -> list[pb.ChunkResponse]:
    """Sends the chunks one after another, carrying the metadata as the engine does."""
    policy = invocation("sse-token-count", params or {})
    metadata: Any = None
    answers = []
    for index, chunk in enumerate(chunks):
        request = chunk_request(
            [policy],
            chunk.encode(),
            index=index,
            end_of_stream=index == len(chunks) - 1,
            metadata=metadata,
            response=response,
        )
        answer = chunk_one(executor.socket, request)
        assert not answer.error, answer.error
        metadata = answer.metadata
        answers.append(answer)
    return answers


def count(answer: pb.ChunkResponse, key: str = "sseTokens") -> dict[str, Any]:
    counted: dict[str, Any] = plain(answer.metadata)[key]
    return counted


def test_counts_events_and_estimates_tokens_across_chunks(executor: ExecutorProcess) -> None:
    answers = stream(executor, [openai("Hello") + openai(", wor"), openai("ld!"), "data: [DONE]\n\n"])
    assert [chunk_outcome(a.results[0]) for a in answers] == ["forwarded"] * 3
    assert count(answers[0]) == {
        "events": 2,
        "characters": 10,
        "tokens": 3,
        "reported": None,
        "limited": False,
    }
    assert count(answers[-1]) == {
        "events": 4,
        "characters": 13,
        "tokens": 4,
        "reported": None,
        "limited": False,
    }


def test_a_usage_figure_from_the_upstream_replaces_the_estimate(executor: ExecutorProcess) -> None:
    usage = json.dumps({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2}})
    answers = stream(executor, [openai("Hello, world!"), f"data: {usage}\n\n"])
    assert count(answers[0])["tokens"] == 4
    assert (count(answers[1])["tokens"], count(answers[1])["reported"]) == (2, 2)


def test_anthropic_events_count_too(executor: ExecutorProcess) -> None:
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Bonjour"}}
    final = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}}
    chunks = [
        f"event: content_block_delta\ndata: {json.dumps(delta)}\n\n",
        f"event: message_delta\ndata: {json.dumps(final)}\n\n",
    ]
    answers = stream(executor, chunks, {"charsPerToken": 2})
    assert (count(answers[0])["characters"], count(answers[0])["tokens"]) == (7, 4)
    assert count(answers[1])["tokens"] == 3


def test_over_the_limit_an_error_event_replaces_the_rest_then_the_stream_ends(
    executor: ExecutorProcess,
) -> None:
    chunks = [openai("abcd") + openai("efgh") + openai("ijkl"), openai("mnop")]
    answers = stream(executor, chunks, {"maxTokens": 2, "charsPerToken": 4, "metadataKey": "llm"})
    first, second = answers
    assert chunk_outcome(first.results[0]) == "replaced"
    forwarded = first.data.decode()
    kept = openai("abcd") + openai("efgh")
    assert forwarded.startswith(kept), "the events before the one that went over are forwarded"
    name, data, rest = forwarded.removeprefix(kept).split("\n", 2)
    assert name == "event: tollgate.token_limit"
    assert rest == "\n", "one whole event"
    assert json.loads(data.removeprefix("data: ")) == {
        "error": "token_limit_exceeded",
        "message": "the response went over its limit of 2 tokens",
        "limit": 2,
        "tokens": 3,
    }
    assert count(first, "llm")["limited"] is True
    assert chunk_outcome(second.results[0]) == "ended"
    assert not second.results[0].ended.HasField("response")


def test_a_response_that_is_not_an_event_stream_passes_uncounted(executor: ExecutorProcess) -> None:
    json_response = Response(status=200, headers=[("content-type", "application/json")])
    [answer] = stream(executor, ['{"choices": []}'], {"maxTokens": 1}, response=json_response)
    assert chunk_outcome(answer.results[0]) == "forwarded"
    assert "sseTokens" not in plain(answer.metadata)


def test_invalid_parameters_fail_the_instance(executor: ExecutorProcess) -> None:
    policy = invocation("sse-token-count", {"charsPerToken": 0})
    [result] = chunk_one(executor.socket, chunk_request([policy], b"data: x\n\n", response=SSE)).results
    kind, message = error_of(result)
    assert kind == "ERROR_KIND_INIT"
    assert "charsPerToken > 0" in message
