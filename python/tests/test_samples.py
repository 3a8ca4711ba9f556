"""The sample policies, run by the real executor."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support import (
    ExecutorProcess,
    call_one,
    error_of,
    execute_request,
    invocation,
    lines,
    outcome,
)
from tollgate.executor.v1 import executor_pb2 as pb


def test_appendix_a_policy_adds_its_header_lower_cased(executor: ExecutorProcess) -> None:
    response = call_one(executor.socket, execute_request([invocation("add-python-header")]))
    mods = response.results[0].modifications
    assert lines(mods.set_headers) == [("x-python-policy", "hello-from-python")]
    assert not mods.HasField("body")


def test_appendix_a_policy_uses_its_parameters(executor: ExecutorProcess) -> None:
    params = {"headerName": "X-Greeting", "headerValue": "hi"}
    response = call_one(executor.socket, execute_request([invocation("add-python-header", params)]))
    assert lines(response.results[0].modifications.set_headers) == [("x-greeting", "hi")]


def _rewrite(executor: ExecutorProcess, params: dict[str, Any], body: bytes | None) -> pb.PolicyResult:
    request = execute_request(
        [invocation("json-body-rewrite", params)],
        headers=[("content-type", "text/plain")],
        body=body,
        method="POST",
    )
    return call_one(executor.socket, request).results[0]


def test_json_body_rewrite_renames_removes_and_sets_fields(executor: ExecutorProcess) -> None:
    params = {
        "rename": {"userName": "user_name"},
        "remove": ["password", "absent"],
        "set": {"source": "gateway", "version": 2, "tags": ["a"]},
    }
    body = json.dumps({"userName": "ana", "password": "secret", "version": 1, "note": "é"}).encode()
    result = _rewrite(executor, params, body)
    mods = result.modifications
    assert json.loads(mods.body) == {
        "user_name": "ana",
        "version": 2,
        "note": "é",
        "source": "gateway",
        "tags": ["a"],
    }
    assert "é".encode() in mods.body  # UTF-8, not \\u escapes
    assert lines(mods.set_headers) == [("content-type", "application/json")]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "request body is not valid JSON"),
        (b"\xff\xfe\x00garbage", "request body is not valid JSON"),
        (b"[1, 2]", "request body must be a JSON object, not an array"),
        (b'"text"', "request body must be a JSON object, not a string"),
    ],
)
def test_json_body_rewrite_rejects_bodies_that_are_not_json_objects(
    executor: ExecutorProcess, body: bytes, message: str
) -> None:
    result = _rewrite(executor, {"set": {"a": 1}}, body)
    assert outcome(result) == "immediate_response"
    immediate = result.immediate_response
    assert immediate.status_code == 400
    assert lines(immediate.headers) == [("content-type", "application/json")]
    error = json.loads(immediate.body)
    assert error["error"] == "invalid_json_body"
    assert error["message"].startswith(message)


def test_json_body_rewrite_passes_requests_without_a_body(executor: ExecutorProcess) -> None:
    for body in (None, b""):
        mods = _rewrite(executor, {"set": {"a": 1}}, body).modifications
        assert mods == pb.Modifications()


def test_json_body_rewrite_rejects_bad_parameters_at_creation(executor: ExecutorProcess) -> None:
    kind, message = error_of(_rewrite(executor, {"remove": "password"}, b"{}"))
    assert kind == "ERROR_KIND_INIT"
    assert message == "ValueError: remove must be a list of field names"
