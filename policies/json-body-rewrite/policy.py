"""json-body-rewrite: renames, removes and sets top-level fields of a JSON request body.

The engine buffers the request body for this policy (``requestBodyMode: BUFFER``) and
rewrites ``content-length`` after the body changes, so the policy only returns the new
bytes. Parameters are checked once, in the constructor, so a misconfiguration fails when
the instance is created rather than on every request.
"""

from __future__ import annotations

import json
from typing import Any

from sdk.policy import (
    ImmediateResponse,
    Policy,
    PolicyMetadata,
    RequestAction,
    RequestContext,
    UpstreamRequestModifications,
)

JSON_HEADERS = {"content-type": "application/json"}


def _string_map(params: dict[str, Any], name: str) -> dict[str, str]:
    value = params.get(name, {})
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in value.items()
    ):
        raise ValueError(f"{name} must map field names to non-empty new names")
    return dict(value)


def _string_list(params: dict[str, Any], name: str) -> list[str]:
    value = params.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{name} must be a list of field names")
    return list(value)


_JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}


def _bad_request(message: str) -> ImmediateResponse:
    body = json.dumps({"error": "invalid_json_body", "message": message})
    return ImmediateResponse(status_code=400, headers=JSON_HEADERS, body=body)


class JsonBodyRewritePolicy(Policy):
    """Applies the configured rename, remove and set steps, in that order."""

    def __init__(self, metadata: PolicyMetadata, params: dict[str, Any]):
        """Checks and keeps the rewrite steps."""
        super().__init__(metadata, params)
        self.rename = _string_map(params, "rename")
        self.remove = _string_list(params, "remove")
        to_set = params.get("set", {})
        if not isinstance(to_set, dict):
            raise ValueError("set must map field names to JSON values")
        self.set = dict(to_set)

    def rewrite(self, document: dict[str, Any]) -> dict[str, Any]:
        """The document after renaming, removing and setting fields (``document`` is unchanged)."""
        result = dict(document)
        for old, new in self.rename.items():
            if old in result:
                result[new] = result.pop(old)
        for name in self.remove:
            result.pop(name, None)
        result.update(self.set)
        return result

    def on_request(self, ctx: RequestContext, params: dict[str, Any]) -> RequestAction:
        """Rewrites the body, or answers 400 when it is not a JSON object."""
        if ctx.body is None or not ctx.body.content:
            return None
        try:
            document = ctx.body.json()
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
            return _bad_request(f"request body is not valid JSON: {error}")
        if not isinstance(document, dict):
            kind = _JSON_TYPES.get(type(document), "null")
            return _bad_request(f"request body must be a JSON object, not {kind}")
        body = json.dumps(self.rewrite(document), ensure_ascii=False, separators=(",", ":"))
        return UpstreamRequestModifications(set_headers=JSON_HEADERS, body=body.encode("utf-8"))


def get_policy(metadata: PolicyMetadata, params: dict[str, Any]) -> Policy:
    """Creates an instance for one set of parameters."""
    return JsonBodyRewritePolicy(metadata, params)
