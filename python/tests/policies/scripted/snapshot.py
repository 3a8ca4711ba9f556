"""What a policy saw, as JSON; a helper module imported relatively by policy.py.

Importing it with ``from .snapshot import ...`` checks that the executor loads a policy
directory as a package, so helper modules work without touching ``sys.path``.
"""

from __future__ import annotations

from typing import Any

from sdk.policy import Body, RequestContext, ResponseContext


def _text(body: Body | None) -> str | None:
    return None if body is None else body.text()


def snapshot(label: str, ctx: RequestContext | ResponseContext) -> dict[str, Any]:
    """The context a policy was called with, as a JSON-compatible dict."""
    if isinstance(ctx, RequestContext):
        return {
            "label": label,
            "headers": ctx.headers.to_dict(),
            "body": _text(ctx.body),
            "path": ctx.path,
            "method": ctx.method,
            "authority": ctx.authority,
            "scheme": ctx.scheme,
            "requestId": ctx.shared.request_id,
            "routeName": ctx.shared.route_name,
            "apiName": ctx.shared.api_name,
        }
    return {
        "label": label,
        "requestHeaders": ctx.request_headers.to_dict(),
        "requestBody": _text(ctx.request_body),
        "requestPath": ctx.request_path,
        "requestMethod": ctx.request_method,
        "headers": ctx.response_headers.to_dict(),
        "body": _text(ctx.response_body),
        "status": ctx.response_status,
    }
