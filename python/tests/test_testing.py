"""sdk.testing: a policy run in pytest with the executor's own checks and application."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from executor.translate import InvalidActionError
from sdk.policy import (
    Policy,
    RequestAction,
    RequestContext,
    ResponseAction,
    ResponseContext,
    UpstreamRequestModifications,
    UpstreamResponseModifications,
)
from sdk.testing import TestRequest, load_policy, run_policy

REPO = Path(__file__).resolve().parents[2]


class Tagger(Policy):
    def on_request(self, ctx: RequestContext, params: dict[str, Any]) -> RequestAction:
        ctx.shared.metadata["seen"] = ctx.headers.get_all("x-trace")
        return UpstreamRequestModifications(
            append_headers={"x-trace": params["label"]}, remove_headers=["cookie"], path="/v2" + ctx.path
        )

    def on_response(self, ctx: ResponseContext, params: dict[str, Any]) -> ResponseAction:
        return UpstreamResponseModifications(set_headers={"x-label": params["label"]}, status_code=203)


def test_the_upstream_and_the_client_see_the_changes() -> None:
    result = run_policy(
        Tagger,
        {"label": "B"},
        request={"path": "/users", "headers": {"x-trace": "A", "cookie": "c=1"}},
        response={"status": 200, "headers": {"content-type": "text/plain"}, "body": "hi"},
    )
    assert result.upstream is not None
    assert result.upstream.path == "/v2/users"
    assert result.upstream.headers.to_dict() == {"x-trace": ["A", "B"]}
    assert result.response.status == 203
    assert result.response.headers.to_dict() == {"content-type": ["text/plain"], "x-label": ["B"]}
    assert result.response.text() == "hi"
    assert result.metadata == {"seen": ["A"]}
    assert [(d.phase, d.outcome) for d in result.trace] == [("request", "modified"), ("response", "modified")]


def test_without_a_response_only_on_request_runs() -> None:
    result = run_policy(Tagger, {"label": "B"}, request=TestRequest(path="/x"))
    assert [d.phase for d in result.trace] == ["request"]
    assert result.response.status == 200


def test_a_policy_directory_with_a_body_and_content_length() -> None:
    rewrite = load_policy(REPO / "policies" / "json-body-rewrite")
    result = run_policy(
        rewrite,
        {"rename": {}, "remove": ["internalNote"], "set": {"source": "gateway"}},
        request={
            "method": "POST",
            "headers": {"content-type": "application/json"},
            "body": {"item": 1, "internalNote": "x"},
        },
    )
    assert result.upstream is not None
    assert result.upstream.json() == {"item": 1, "source": "gateway"}
    assert result.upstream.headers.get("content-length") == str(len(result.upstream.body))
    assert result.trace[0].policy == "json-body-rewrite"


def test_an_immediate_response_never_reaches_the_upstream() -> None:
    deny = load_policy(REPO / "tests" / "fixtures" / "policies" / "py-deny")
    result = run_policy(deny, response={"status": 200})
    assert result.upstream is None
    assert result.immediate is not None
    assert result.immediate.status == 429
    assert result.response.json() == {"error": "slow down"}
    assert result.response.headers.get("retry-after") == "7"
    assert [(d.outcome, d.reason) for d in result.trace] == [("denied", "immediate_response")]


def test_an_action_the_engine_would_refuse_raises() -> None:
    class BadHeader(Policy):
        def on_request(self, ctx: RequestContext, params: dict[str, Any]) -> RequestAction:
            return UpstreamRequestModifications(set_headers={"bad name": "x"})

        def on_response(self, ctx: ResponseContext, params: dict[str, Any]) -> ResponseAction:
            return None

    with pytest.raises(InvalidActionError, match="not a valid header name"):
        run_policy(BadHeader)
