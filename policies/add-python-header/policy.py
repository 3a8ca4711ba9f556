from sdk.policy import (
    Policy, PolicyMetadata, RequestContext, ResponseContext,
    UpstreamRequestModifications, RequestAction, ResponseAction
)
from typing import Dict, Any


class AddPythonHeaderPolicy(Policy):
    def __init__(self, metadata: PolicyMetadata, params: Dict[str, Any]):
        super().__init__(metadata, params)
        self.header_name = params.get("headerName", "X-Python-Policy")
        self.header_value = params.get("headerValue", "hello-from-python")

    def on_request(self, ctx: RequestContext, params: Dict[str, Any]) -> RequestAction:
        return UpstreamRequestModifications(
            set_headers={self.header_name: self.header_value}
        )

    def on_response(self, ctx: ResponseContext, params: Dict[str, Any]) -> ResponseAction:
        return None  # Pass-through


def get_policy(metadata: PolicyMetadata, params: dict) -> Policy:
    return AddPythonHeaderPolicy(metadata, params)
