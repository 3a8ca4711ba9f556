"""Unit tests of the SDK: Headers semantics, dataclass defaults, the Policy contract."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

import pytest

from sdk.policy import (
    Body,
    Headers,
    ImmediateResponse,
    Policy,
    PolicyMetadata,
    RequestAction,
    RequestContext,
    ResponseContext,
    SharedContext,
    UpstreamRequestModifications,
    UpstreamResponseModifications,
)
from tests.support import REPO


def test_headers_is_a_case_insensitive_read_only_mapping() -> None:
    headers = Headers([("Content-Type", "text/plain"), ("X-Multi", "a"), ("x-multi", "b")])
    assert isinstance(headers, Mapping)
    assert headers["content-type"] == "text/plain"
    assert headers["CONTENT-TYPE"] == "text/plain"
    assert headers.get("X-MULTI") == "a, b"
    assert headers.get("absent") is None
    assert headers.get("absent", "fallback") == "fallback"
    assert "X-Multi" in headers
    assert "absent" not in headers
    assert 42 not in headers  # type: ignore[comparison-overlap]
    assert list(headers) == ["content-type", "x-multi"]
    assert len(headers) == 2
    assert dict(headers) == {"content-type": "text/plain", "x-multi": "a, b"}
    with pytest.raises(KeyError):
        headers["absent"]
    with pytest.raises(TypeError):
        headers["x-new"] = "v"  # type: ignore[index]


def test_headers_get_all_keeps_every_field_line_in_order() -> None:
    headers = Headers([("set-cookie", "a=1"), ("Set-Cookie", "b=2"), ("other", "x")])
    assert headers.get_all("SET-COOKIE") == ["a=1", "b=2"]
    assert headers.get_all("absent") == []
    assert headers.field_lines() == [("set-cookie", "a=1"), ("set-cookie", "b=2"), ("other", "x")]
    assert headers.to_dict() == {"set-cookie": ["a=1", "b=2"], "other": ["x"]}
    # get_all returns a copy: changing it does not change the headers.
    headers.get_all("set-cookie").append("c=3")
    assert headers.get_all("set-cookie") == ["a=1", "b=2"]


def test_headers_from_a_mapping_with_list_values() -> None:
    headers = Headers({"Accept": ["text/html", "application/json"], "Host": "example.test"})
    assert headers["accept"] == "text/html, application/json"
    assert headers.get_all("accept") == ["text/html", "application/json"]
    assert headers == {"accept": "text/html, application/json", "host": "example.test"}
    copy = Headers(Headers([("a", "1"), ("A", "2")]))
    assert copy.get_all("a") == ["1", "2"]
    assert Headers() == {}
    assert len(Headers()) == 0
    assert "Headers(" in repr(headers)


def test_action_defaults_mean_no_change() -> None:
    request = UpstreamRequestModifications()
    assert (request.set_headers, request.remove_headers, request.append_headers) == ({}, [], {})
    assert (request.body, request.path, request.method) == (None, None, None)
    assert request.analytics_metadata == {}
    response = UpstreamResponseModifications()
    assert (response.body, response.status_code) == (None, None)
    immediate = ImmediateResponse()
    assert (immediate.status_code, immediate.headers, immediate.body) == (500, {}, None)
    # Mutable defaults are not shared between instances.
    request.remove_headers.append("x")
    assert UpstreamRequestModifications().remove_headers == []


def test_context_defaults_and_plain_dict_headers() -> None:
    shared = SharedContext()
    assert (shared.request_id, shared.route_name, shared.metadata, shared.auth_context) == ("", "", {}, {})
    assert SharedContext().metadata is not shared.metadata
    ctx = RequestContext(shared=shared, headers={"X-A": "1"})  # type: ignore[arg-type]
    assert isinstance(ctx.headers, Headers)
    assert ctx.headers["x-a"] == "1"
    assert (ctx.body, ctx.path, ctx.method) == (None, "", "")
    response = ResponseContext(shared=shared)
    assert response.response_status == 200
    assert isinstance(response.request_headers, Headers)
    assert len(response.response_headers) == 0
    metadata = PolicyMetadata()
    assert (metadata.route_name, metadata.attached_to, metadata.policy_name) == ("", "", "")


def test_body_helpers() -> None:
    body = Body(content='{"a": "é"}'.encode(), end_of_stream=True, present=True)
    assert body.text() == '{"a": "é"}'
    assert body.json() == {"a": "é"}
    assert Body().text() == ""
    assert (Body().content, Body().end_of_stream, Body().present) == (None, False, False)
    with pytest.raises(ValueError, match="Expecting value"):
        Body(content=b"not json").json()


def test_a_policy_implements_only_what_it_needs_and_keeps_metadata_and_params() -> None:
    class OnlyRequest(Policy):
        def on_request(self, ctx: RequestContext, params: dict[str, Any]) -> RequestAction:
            return UpstreamRequestModifications(set_headers={"x-seen": "1"})

    metadata = PolicyMetadata(route_name="r")
    policy = OnlyRequest(metadata, {"k": 1})
    assert policy.metadata is metadata
    assert policy.params == {"k": 1}
    shared = SharedContext()
    assert policy.on_response(ResponseContext(shared=shared), {}) is None, "passes the response through"
    bare = Policy(metadata, {})
    assert bare.on_request(RequestContext(shared=shared, headers=Headers()), {}) is None
    assert bare.on_response(ResponseContext(shared=shared), {}) is None
    bare.close()  # does nothing by default


def test_one_list_of_public_names() -> None:
    import sdk
    import sdk.policy

    assert sdk.__all__ is sdk.policy.__all__
    assert all(getattr(sdk, name) is getattr(sdk.policy, name) for name in sdk.policy.__all__)
    assert "ProcessingMode" not in sdk.policy.__all__, "the definition's processingMode is the only mode"


def test_appendix_a_policy_runs_against_the_sdk_in_process() -> None:
    spec = importlib.util.spec_from_file_location(
        "appendix_a_policy", REPO / "policies" / "add-python-header" / "policy.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    policy = module.get_policy(PolicyMetadata(), {})
    action = policy.on_request(RequestContext(shared=SharedContext(), headers=Headers()), {})
    assert action == UpstreamRequestModifications(set_headers={"X-Python-Policy": "hello-from-python"})
    assert policy.on_response(ResponseContext(shared=SharedContext()), {}) is None
    custom = module.get_policy(PolicyMetadata(), {"headerName": "X-Other", "headerValue": "v"})
    assert custom.on_request(RequestContext(SharedContext(), Headers()), {}).set_headers == {"X-Other": "v"}
