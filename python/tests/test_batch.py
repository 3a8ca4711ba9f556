"""Batch semantics: order, visibility of earlier changes, where a batch stops, budgets."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import (
    ExecutorProcess,
    Response,
    call_one,
    error_of,
    execute_request,
    invocation,
    lines,
    outcome,
    plain,
    trace,
)
from tollgate.executor.v1 import executor_pb2 as pb


def scripted(label: str, on_failure: str = "deny", **params: Any) -> pb.PolicyInvocation:
    return invocation("scripted", {"label": label, **params}, on_failure=on_failure)


def test_each_policy_sees_the_previous_ones_request_changes(executor: ExecutorProcess) -> None:
    request = execute_request(
        [
            scripted("first", set={"X-Added": "1"}, remove=["x-drop"], body='{"n":1}', path="/v2/items"),
            scripted("second", append={"x-added": ["2"]}, method="PUT"),
            scripted("third"),
        ],
        headers=[("x-drop", "gone"), ("x-keep", "kept")],
        body=b'{"n":0}',
        path="/v1/items",
        method="POST",
    )
    response = call_one(executor.socket, request)
    assert [outcome(r) for r in response.results] == ["modifications"] * 3
    seen = trace(response)
    assert [s["label"] for s in seen] == ["first", "second", "third"]
    assert seen[0]["headers"] == {"x-drop": ["gone"], "x-keep": ["kept"]}
    assert (seen[0]["body"], seen[0]["path"], seen[0]["method"]) == ('{"n":0}', "/v1/items", "POST")
    assert seen[1]["headers"] == {"x-keep": ["kept"], "x-added": ["1"]}
    assert (seen[1]["body"], seen[1]["path"], seen[1]["method"]) == ('{"n":1}', "/v2/items", "POST")
    assert seen[2]["headers"] == {"x-keep": ["kept"], "x-added": ["1", "2"]}
    assert seen[2]["method"] == "PUT"
    assert (seen[0]["authority"], seen[0]["scheme"], seen[0]["requestId"]) == (
        "example.test",
        "https",
        "req-1",
    )
    assert seen[0]["routeName"] == "route-a"
    # Each result carries only its own policy's changes.
    first = response.results[0].modifications
    assert lines(first.set_headers) == [("x-added", "1")]
    assert list(first.remove_headers) == ["x-drop"]
    assert (first.body, first.path, first.HasField("method")) == (b'{"n":1}', "/v2/items", False)
    second = response.results[1].modifications
    assert lines(second.append_headers) == [("x-added", "2")]
    assert (second.method, second.HasField("body"), second.HasField("path")) == ("PUT", False, False)


def test_response_phase_sees_request_data_and_earlier_response_changes(executor: ExecutorProcess) -> None:
    request = execute_request(
        [
            scripted("first", set={"x-resp": "1"}, body="replaced", status=201),
            scripted("second"),
        ],
        headers=[("x-req", "r")],
        body=b"request body",
        path="/p",
        method="POST",
        response=Response(status=200, headers=[("content-type", "text/plain")], body=b"original"),
    )
    response = call_one(executor.socket, request)
    seen = trace(response)
    assert seen[0]["requestHeaders"] == {"x-req": ["r"]}
    assert (seen[0]["requestBody"], seen[0]["requestPath"], seen[0]["requestMethod"]) == (
        "request body",
        "/p",
        "POST",
    )
    assert (seen[0]["headers"], seen[0]["body"], seen[0]["status"]) == (
        {"content-type": ["text/plain"]},
        "original",
        200,
    )
    assert (seen[1]["headers"], seen[1]["body"], seen[1]["status"]) == (
        {"content-type": ["text/plain"], "x-resp": ["1"]},
        "replaced",
        201,
    )
    mods = response.results[0].modifications
    assert (mods.status_code, mods.body) == (201, b"replaced")


def test_body_absent_unless_the_engine_sent_one(executor: ExecutorProcess) -> None:
    response = call_one(executor.socket, execute_request([scripted("a")], body=None))
    assert trace(response)[0]["body"] is None
    response = call_one(executor.socket, execute_request([scripted("a")], body=b""))
    assert trace(response)[0]["body"] == ""


def test_immediate_response_stops_the_batch(executor: ExecutorProcess) -> None:
    request = execute_request(
        [
            scripted("first"),
            scripted(
                "deny",
                immediate={
                    "status": 403,
                    "headers": {"Content-Type": "application/json", "set-cookie": ["a=1", "b=2"]},
                    "body": '{"error":"forbidden"}',
                    "analytics": {"reason": "test"},
                },
            ),
            scripted("never"),
        ]
    )
    response = call_one(executor.socket, request)
    assert [outcome(r) for r in response.results] == ["modifications", "immediate_response"]
    immediate = response.results[1].immediate_response
    assert immediate.status_code == 403
    assert sorted(lines(immediate.headers)) == [
        ("content-type", "application/json"),
        ("set-cookie", "a=1"),
        ("set-cookie", "b=2"),
    ]
    assert immediate.body == b'{"error":"forbidden"}'
    assert plain(immediate.analytics_metadata) == {"reason": "test"}
    assert [s["label"] for s in trace(response)] == ["first", "deny"]


def test_immediate_response_is_allowed_in_the_response_phase(executor: ExecutorProcess) -> None:
    request = execute_request([scripted("r", immediate={"status": 502})], response=Response())
    result = call_one(executor.socket, request).results[0]
    assert outcome(result) == "immediate_response"
    assert (result.immediate_response.status_code, result.immediate_response.body) == (502, b"")


@pytest.mark.parametrize(
    ("rule", "ran"),
    [("continue", ["a", "b", "c"]), ("deny", ["a", "b"]), ("skipRemaining", ["a", "b"])],
)
def test_failure_rule_decides_whether_the_batch_goes_on(
    executor: ExecutorProcess, rule: str, ran: list[str]
) -> None:
    request = execute_request(
        [scripted("a", set={"x-a": "1"}), scripted("b", rule, **{"raise": "fails"}), scripted("c")]
    )
    response = call_one(executor.socket, request)
    expected = ["modifications", "error", "modifications"][: len(ran)]
    assert [outcome(r) for r in response.results] == expected
    assert error_of(response.results[1]) == ("ERROR_KIND_EXECUTION", "RuntimeError: fails")
    assert [s["label"] for s in trace(response)] == ran


def test_failed_policy_changes_are_not_applied(executor: ExecutorProcess) -> None:
    request = execute_request(
        [
            scripted("bad", "continue", set={"x-a": "1"}, returnValue="badHeaderName"),
            scripted("next"),
        ]
    )
    response = call_one(executor.socket, request)
    assert outcome(response.results[0]) == "error"
    assert trace(response)[1]["headers"] == {}


def test_spent_budget_times_out_the_next_policy_and_stops(executor: ExecutorProcess) -> None:
    request = execute_request(
        [
            invocation("sleepy", {"seconds": 0.3}, on_failure="continue"),
            scripted("late", "continue"),
            scripted("later", "continue"),
        ],
        budget_ms=100,
    )
    response = call_one(executor.socket, request)
    assert [outcome(r) for r in response.results] == ["modifications", "error"]
    kind, message = error_of(response.results[1])
    assert kind == "ERROR_KIND_TIMEOUT"
    assert "100ms budget" in message
    assert trace(response) == []


def test_unspent_budget_lets_every_policy_run(executor: ExecutorProcess) -> None:
    request = execute_request([scripted("a"), scripted("b")], budget_ms=60_000)
    assert [outcome(r) for r in call_one(executor.socket, request).results] == ["modifications"] * 2


def test_metadata_round_trip(executor: ExecutorProcess) -> None:
    request = execute_request(
        [
            scripted("writer", trace=False, metadata={"user": {"id": 7, "roles": ["a", "b"]}, "score": 0.5}),
            scripted("reader"),
        ],
        metadata={"fromEngine": True, "count": 3},
    )
    response = call_one(executor.socket, request)
    result = plain(response.metadata)
    assert result["fromEngine"] is True
    assert result["count"] == 3
    assert result["user"] == {"id": 7, "roles": ["a", "b"]}
    assert result["score"] == 0.5
    assert [s["label"] for s in result["trace"]] == ["reader"]


def test_integral_numbers_reach_policies_as_int(executor: ExecutorProcess) -> None:
    # Struct numbers are doubles on the wire; policies get 3, not 3.0.
    request = execute_request([scripted("a", n=3, f=1.5)], metadata={"n": 3, "f": 1.5, "l": [1, 2.5]})
    seen = trace(call_one(executor.socket, request))[0]
    assert seen["metadataTypes"] == {"n": "int", "f": "float", "l": "list"}
    assert seen["paramTypes"] == {"label": "str", "n": "int", "f": "float"}


def test_multi_valued_headers_in_and_out(executor: ExecutorProcess) -> None:
    request = execute_request(
        [
            scripted(
                "first",
                set={"x-list": ["a", "b"], "x-one": "1"},
                append={"set-cookie": ["c=3"], "x-plain": "p"},
            ),
            scripted("second", set={"x-list": []}),
            scripted("third"),
        ],
        headers=[("set-cookie", "a=1"), ("Set-Cookie", "b=2"), ("x-list", "old")],
    )
    response = call_one(executor.socket, request)
    seen = trace(response)
    assert seen[0]["headers"] == {"set-cookie": ["a=1", "b=2"], "x-list": ["old"]}
    assert seen[1]["headers"] == {
        "set-cookie": ["a=1", "b=2", "c=3"],
        "x-list": ["a", "b"],
        "x-one": ["1"],
        "x-plain": ["p"],
    }
    assert "x-list" not in seen[2]["headers"]
    first = response.results[0].modifications
    # Values of one name keep their order (params arrive as a Struct, so names may not).
    assert sorted(lines(first.set_headers)) == [("x-list", "a"), ("x-list", "b"), ("x-one", "1")]
    assert sorted(lines(first.append_headers)) == [("set-cookie", "c=3"), ("x-plain", "p")]
    # An empty list sets no value: on the wire, that is a removal.
    second = response.results[1].modifications
    assert (list(second.remove_headers), lines(second.set_headers)) == (["x-list"], [])


def test_remove_then_set_then_append_within_one_action(executor: ExecutorProcess) -> None:
    request = execute_request(
        [
            scripted("first", remove=["x-h"], set={"x-h": "set"}, append={"x-h": ["appended"]}),
            scripted("second"),
        ],
        headers=[("x-h", "original")],
    )
    assert trace(call_one(executor.socket, request))[1]["headers"] == {"x-h": ["set", "appended"]}


def test_analytics_metadata_is_returned(executor: ExecutorProcess) -> None:
    request = execute_request([scripted("a", trace=False, set={"x": "1"}, analytics={"k": "v", "n": 2})])
    mods = call_one(executor.socket, request).results[0].modifications
    assert plain(mods.analytics_metadata) == {"k": "v", "n": 2}
