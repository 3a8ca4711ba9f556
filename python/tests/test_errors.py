"""Policy failures become PolicyErrors; malformed calls get ExecuteResponse.error; nothing crashes."""

from __future__ import annotations

import pytest

from tests.support import (
    ExecutorProcess,
    Response,
    call_one,
    error_of,
    execute_request,
    health,
    invocation,
    lines,
    plain,
    run,
)
from tollgate.executor.v1 import executor_pb2 as pb


def test_exception_in_on_request_is_an_execution_error_and_serving_goes_on(executor: ExecutorProcess) -> None:
    response = call_one(executor.socket, execute_request([invocation("scripted", {"raise": "boom"})]))
    assert error_of(response.results[0]) == ("ERROR_KIND_EXECUTION", "RuntimeError: boom")
    assert run(health(executor.socket)).ready
    ok = call_one(executor.socket, execute_request([invocation("add-python-header")]))
    assert ok.results[0].WhichOneof("outcome") == "modifications"


def test_exception_in_on_response_is_an_execution_error(executor: ExecutorProcess) -> None:
    request = execute_request([invocation("scripted", {"raise": "late boom"})], response=Response())
    response = call_one(executor.socket, request)
    assert error_of(response.results[0]) == ("ERROR_KIND_EXECUTION", "RuntimeError: late boom")


def test_policy_error_is_logged_with_policy_and_call_id(executor: ExecutorProcess) -> None:
    request = execute_request([invocation("scripted", {"raise": "logged boom"})], request_id="req-logged")
    call_one(executor.socket, request)
    records = [r for r in executor.log_records() if r.get("error") == "RuntimeError: logged boom"]
    assert len(records) == 1
    record = records[0]
    assert record["level"] == "warning"
    assert record["policy"] == "scripted:v1"
    assert record["call_id"] == request.call_id
    assert record["request_id"] == "req-logged"
    assert record["kind"] == "ERROR_KIND_EXECUTION"


@pytest.mark.parametrize(
    ("phase", "value", "message"),
    [
        ("request", "int", "on_request returned int; expected UpstreamRequestModifications"),
        ("request", "string", "on_request returned str; expected UpstreamRequestModifications"),
        ("request", "responseMods", "on_request returned UpstreamResponseModifications;"),
        ("response", "requestMods", "on_response returned UpstreamRequestModifications;"),
        ("request", "badHeaderName", "header 'bad name': not a valid header name"),
        ("request", "badHeaderValue", "header x-a: value contains CR, LF or NUL"),
        ("request", "badStatus", "immediate response status_code 99: must be an integer from 200 to 599"),
        ("request", "badPath", "path 'no-slash': must start with '/'"),
        ("request", "analyticsNotJson", "analytics_metadata['x']: object is not a JSON value"),
        ("request", "coroutine", "the handler is a coroutine function; policies run on worker threads"),
    ],
)
def test_invalid_return_values_are_execution_errors(
    executor: ExecutorProcess, phase: str, value: str, message: str
) -> None:
    policy = invocation("scripted", {"returnValue": value, "trace": False})
    request = execute_request([policy], response=Response() if phase == "response" else None)
    kind, text = error_of(call_one(executor.socket, request).results[0])
    assert kind == "ERROR_KIND_EXECUTION"
    assert text.startswith("InvalidActionError: ")
    assert message in text


def test_non_json_metadata_is_an_execution_error_and_is_rolled_back(executor: ExecutorProcess) -> None:
    request = execute_request(
        [
            invocation("scripted", {"trace": False, "metadata": {"kept": 1}}),
            invocation(
                "scripted",
                {"trace": False, "metadata": {"dropped": 2}, "metadataNotJson": "bad"},
                on_failure="continue",
            ),
            invocation("scripted", {"trace": False, "metadata": {"after": 3}}),
        ],
        metadata={"given": "yes"},
    )
    response = call_one(executor.socket, request)
    kind, message = error_of(response.results[1])
    assert kind == "ERROR_KIND_EXECUTION"
    assert message == "NotJsonError: metadata['bad']: set is not a JSON value"
    # The failing policy's metadata writes are undone; the others stay.
    assert plain(response.metadata) == {"given": "yes", "kept": 1, "after": 3}


def test_metadata_replaced_by_a_non_dict_is_rolled_back(executor: ExecutorProcess) -> None:
    request = execute_request(
        [invocation("scripted", {"trace": False, "replaceMetadata": ["not", "a", "dict"]})],
        metadata={"given": "yes"},
    )
    response = call_one(executor.socket, request)
    assert error_of(response.results[0]) == (
        "ERROR_KIND_EXECUTION",
        "NotJsonError: metadata: list is not a JSON object",
    )
    assert plain(response.metadata) == {"given": "yes"}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda r: setattr(r, "phase", pb.PHASE_UNSPECIFIED),
            "phase must be PHASE_REQUEST or PHASE_RESPONSE",
        ),
        (lambda r: setattr(r, "phase", 9), "unknown phase 9"),
        (lambda r: setattr(r, "phase", pb.PHASE_RESPONSE), "a PHASE_RESPONSE call needs response data"),
        (lambda r: setattr(r.policies[0], "name", ""), "policies[0]: name and version are required"),
        (lambda r: setattr(r.policies[0], "on_failure", 7), "policies[0]: unknown on_failure 7"),
    ],
)
def test_malformed_request_gets_a_call_error(executor: ExecutorProcess, mutate: object, message: str) -> None:
    request = execute_request([invocation("add-python-header")], metadata={"m": "kept"})
    mutate(request)  # type: ignore[operator]
    response = call_one(executor.socket, request)
    assert response.call_id == request.call_id
    assert message in response.error
    assert not response.results
    assert plain(response.metadata) == {"m": "kept"}


def test_empty_batch_returns_no_results_and_the_metadata(executor: ExecutorProcess) -> None:
    response = call_one(executor.socket, execute_request([], metadata={"m": [1, 2]}))
    assert not response.error
    assert not response.results
    assert plain(response.metadata) == {"m": [1.0, 2.0]}


def test_header_names_are_lower_cased_on_the_wire(executor: ExecutorProcess) -> None:
    policy = invocation("scripted", {"trace": False, "set": {"X-Mixed-Case": "v"}, "remove": ["X-Gone"]})
    mods = call_one(executor.socket, execute_request([policy])).results[0].modifications
    assert lines(mods.set_headers) == [("x-mixed-case", "v")]
    assert list(mods.remove_headers) == ["x-gone"]
