from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Phase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PHASE_UNSPECIFIED: _ClassVar[Phase]
    PHASE_REQUEST: _ClassVar[Phase]
    PHASE_RESPONSE: _ClassVar[Phase]

class FailureRule(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FAILURE_RULE_DENY: _ClassVar[FailureRule]
    FAILURE_RULE_CONTINUE: _ClassVar[FailureRule]
    FAILURE_RULE_SKIP_REMAINING: _ClassVar[FailureRule]

class ErrorKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_KIND_UNSPECIFIED: _ClassVar[ErrorKind]
    ERROR_KIND_INIT: _ClassVar[ErrorKind]
    ERROR_KIND_EXECUTION: _ClassVar[ErrorKind]
    ERROR_KIND_NOT_FOUND: _ClassVar[ErrorKind]
    ERROR_KIND_TIMEOUT: _ClassVar[ErrorKind]
PHASE_UNSPECIFIED: Phase
PHASE_REQUEST: Phase
PHASE_RESPONSE: Phase
FAILURE_RULE_DENY: FailureRule
FAILURE_RULE_CONTINUE: FailureRule
FAILURE_RULE_SKIP_REMAINING: FailureRule
ERROR_KIND_UNSPECIFIED: ErrorKind
ERROR_KIND_INIT: ErrorKind
ERROR_KIND_EXECUTION: ErrorKind
ERROR_KIND_NOT_FOUND: ErrorKind
ERROR_KIND_TIMEOUT: ErrorKind

class Header(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class ExecuteRequest(_message.Message):
    __slots__ = ("call_id", "phase", "policies", "request", "response", "metadata", "info", "budget_ms")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    BUDGET_MS_FIELD_NUMBER: _ClassVar[int]
    call_id: int
    phase: Phase
    policies: _containers.RepeatedCompositeFieldContainer[PolicyInvocation]
    request: RequestData
    response: ResponseData
    metadata: _struct_pb2.Struct
    info: RequestInfo
    budget_ms: int
    def __init__(self, call_id: _Optional[int] = ..., phase: _Optional[_Union[Phase, str]] = ..., policies: _Optional[_Iterable[_Union[PolicyInvocation, _Mapping]]] = ..., request: _Optional[_Union[RequestData, _Mapping]] = ..., response: _Optional[_Union[ResponseData, _Mapping]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., info: _Optional[_Union[RequestInfo, _Mapping]] = ..., budget_ms: _Optional[int] = ...) -> None: ...

class PolicyInvocation(_message.Message):
    __slots__ = ("name", "version", "params", "params_hash", "metadata", "on_failure")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_HASH_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    ON_FAILURE_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    params: _struct_pb2.Struct
    params_hash: str
    metadata: PolicyMetadata
    on_failure: FailureRule
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., params_hash: _Optional[str] = ..., metadata: _Optional[_Union[PolicyMetadata, _Mapping]] = ..., on_failure: _Optional[_Union[FailureRule, str]] = ...) -> None: ...

class PolicyMetadata(_message.Message):
    __slots__ = ("route_name", "api_id", "api_name", "api_version", "attached_to")
    ROUTE_NAME_FIELD_NUMBER: _ClassVar[int]
    API_ID_FIELD_NUMBER: _ClassVar[int]
    API_NAME_FIELD_NUMBER: _ClassVar[int]
    API_VERSION_FIELD_NUMBER: _ClassVar[int]
    ATTACHED_TO_FIELD_NUMBER: _ClassVar[int]
    route_name: str
    api_id: str
    api_name: str
    api_version: str
    attached_to: str
    def __init__(self, route_name: _Optional[str] = ..., api_id: _Optional[str] = ..., api_name: _Optional[str] = ..., api_version: _Optional[str] = ..., attached_to: _Optional[str] = ...) -> None: ...

class RequestInfo(_message.Message):
    __slots__ = ("request_id", "route_name")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ROUTE_NAME_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    route_name: str
    def __init__(self, request_id: _Optional[str] = ..., route_name: _Optional[str] = ...) -> None: ...

class RequestData(_message.Message):
    __slots__ = ("headers", "body", "body_present", "end_of_stream", "path", "method", "authority", "scheme")
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    BODY_PRESENT_FIELD_NUMBER: _ClassVar[int]
    END_OF_STREAM_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    AUTHORITY_FIELD_NUMBER: _ClassVar[int]
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    headers: _containers.RepeatedCompositeFieldContainer[Header]
    body: bytes
    body_present: bool
    end_of_stream: bool
    path: str
    method: str
    authority: str
    scheme: str
    def __init__(self, headers: _Optional[_Iterable[_Union[Header, _Mapping]]] = ..., body: _Optional[bytes] = ..., body_present: _Optional[bool] = ..., end_of_stream: _Optional[bool] = ..., path: _Optional[str] = ..., method: _Optional[str] = ..., authority: _Optional[str] = ..., scheme: _Optional[str] = ...) -> None: ...

class ResponseData(_message.Message):
    __slots__ = ("headers", "body", "body_present", "status", "end_of_stream")
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    BODY_PRESENT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    END_OF_STREAM_FIELD_NUMBER: _ClassVar[int]
    headers: _containers.RepeatedCompositeFieldContainer[Header]
    body: bytes
    body_present: bool
    status: int
    end_of_stream: bool
    def __init__(self, headers: _Optional[_Iterable[_Union[Header, _Mapping]]] = ..., body: _Optional[bytes] = ..., body_present: _Optional[bool] = ..., status: _Optional[int] = ..., end_of_stream: _Optional[bool] = ...) -> None: ...

class ExecuteResponse(_message.Message):
    __slots__ = ("call_id", "results", "metadata", "error")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    call_id: int
    results: _containers.RepeatedCompositeFieldContainer[PolicyResult]
    metadata: _struct_pb2.Struct
    error: str
    def __init__(self, call_id: _Optional[int] = ..., results: _Optional[_Iterable[_Union[PolicyResult, _Mapping]]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., error: _Optional[str] = ...) -> None: ...

class PolicyResult(_message.Message):
    __slots__ = ("modifications", "immediate_response", "error")
    MODIFICATIONS_FIELD_NUMBER: _ClassVar[int]
    IMMEDIATE_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    modifications: Modifications
    immediate_response: ImmediateResponse
    error: PolicyError
    def __init__(self, modifications: _Optional[_Union[Modifications, _Mapping]] = ..., immediate_response: _Optional[_Union[ImmediateResponse, _Mapping]] = ..., error: _Optional[_Union[PolicyError, _Mapping]] = ...) -> None: ...

class Modifications(_message.Message):
    __slots__ = ("set_headers", "remove_headers", "append_headers", "body", "path", "method", "status_code", "analytics_metadata")
    SET_HEADERS_FIELD_NUMBER: _ClassVar[int]
    REMOVE_HEADERS_FIELD_NUMBER: _ClassVar[int]
    APPEND_HEADERS_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    ANALYTICS_METADATA_FIELD_NUMBER: _ClassVar[int]
    set_headers: _containers.RepeatedCompositeFieldContainer[Header]
    remove_headers: _containers.RepeatedScalarFieldContainer[str]
    append_headers: _containers.RepeatedCompositeFieldContainer[Header]
    body: bytes
    path: str
    method: str
    status_code: int
    analytics_metadata: _struct_pb2.Struct
    def __init__(self, set_headers: _Optional[_Iterable[_Union[Header, _Mapping]]] = ..., remove_headers: _Optional[_Iterable[str]] = ..., append_headers: _Optional[_Iterable[_Union[Header, _Mapping]]] = ..., body: _Optional[bytes] = ..., path: _Optional[str] = ..., method: _Optional[str] = ..., status_code: _Optional[int] = ..., analytics_metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ImmediateResponse(_message.Message):
    __slots__ = ("status_code", "headers", "body", "analytics_metadata")
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    ANALYTICS_METADATA_FIELD_NUMBER: _ClassVar[int]
    status_code: int
    headers: _containers.RepeatedCompositeFieldContainer[Header]
    body: bytes
    analytics_metadata: _struct_pb2.Struct
    def __init__(self, status_code: _Optional[int] = ..., headers: _Optional[_Iterable[_Union[Header, _Mapping]]] = ..., body: _Optional[bytes] = ..., analytics_metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class PolicyError(_message.Message):
    __slots__ = ("kind", "message")
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    kind: ErrorKind
    message: str
    def __init__(self, kind: _Optional[_Union[ErrorKind, str]] = ..., message: _Optional[str] = ...) -> None: ...

class ChunkRequest(_message.Message):
    __slots__ = ("call_id", "phase", "policies", "data", "end_of_stream", "metadata", "info", "budget_ms", "chunk_index", "request", "response")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    END_OF_STREAM_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    BUDGET_MS_FIELD_NUMBER: _ClassVar[int]
    CHUNK_INDEX_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    call_id: int
    phase: Phase
    policies: _containers.RepeatedCompositeFieldContainer[PolicyInvocation]
    data: bytes
    end_of_stream: bool
    metadata: _struct_pb2.Struct
    info: RequestInfo
    budget_ms: int
    chunk_index: int
    request: RequestData
    response: ResponseData
    def __init__(self, call_id: _Optional[int] = ..., phase: _Optional[_Union[Phase, str]] = ..., policies: _Optional[_Iterable[_Union[PolicyInvocation, _Mapping]]] = ..., data: _Optional[bytes] = ..., end_of_stream: _Optional[bool] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., info: _Optional[_Union[RequestInfo, _Mapping]] = ..., budget_ms: _Optional[int] = ..., chunk_index: _Optional[int] = ..., request: _Optional[_Union[RequestData, _Mapping]] = ..., response: _Optional[_Union[ResponseData, _Mapping]] = ...) -> None: ...

class ChunkResponse(_message.Message):
    __slots__ = ("call_id", "results", "data", "metadata", "error")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    call_id: int
    results: _containers.RepeatedCompositeFieldContainer[ChunkResult]
    data: bytes
    metadata: _struct_pb2.Struct
    error: str
    def __init__(self, call_id: _Optional[int] = ..., results: _Optional[_Iterable[_Union[ChunkResult, _Mapping]]] = ..., data: _Optional[bytes] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., error: _Optional[str] = ...) -> None: ...

class ChunkResult(_message.Message):
    __slots__ = ("forwarded", "replaced", "ended", "error")
    FORWARDED_FIELD_NUMBER: _ClassVar[int]
    REPLACED_FIELD_NUMBER: _ClassVar[int]
    ENDED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    forwarded: ChunkForwarded
    replaced: ChunkReplaced
    ended: ChunkEnded
    error: PolicyError
    def __init__(self, forwarded: _Optional[_Union[ChunkForwarded, _Mapping]] = ..., replaced: _Optional[_Union[ChunkReplaced, _Mapping]] = ..., ended: _Optional[_Union[ChunkEnded, _Mapping]] = ..., error: _Optional[_Union[PolicyError, _Mapping]] = ...) -> None: ...

class ChunkForwarded(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ChunkReplaced(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ChunkEnded(_message.Message):
    __slots__ = ("response",)
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    response: ImmediateResponse
    def __init__(self, response: _Optional[_Union[ImmediateResponse, _Mapping]] = ...) -> None: ...

class HealthCheckRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HealthCheckResponse(_message.Message):
    __slots__ = ("ready", "loaded_policies", "failed_policies", "workers", "calls_served", "overdue_workers", "pid", "rss_bytes")
    READY_FIELD_NUMBER: _ClassVar[int]
    LOADED_POLICIES_FIELD_NUMBER: _ClassVar[int]
    FAILED_POLICIES_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    CALLS_SERVED_FIELD_NUMBER: _ClassVar[int]
    OVERDUE_WORKERS_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    ready: bool
    loaded_policies: int
    failed_policies: _containers.RepeatedScalarFieldContainer[str]
    workers: int
    calls_served: int
    overdue_workers: int
    pid: int
    rss_bytes: int
    def __init__(self, ready: _Optional[bool] = ..., loaded_policies: _Optional[int] = ..., failed_policies: _Optional[_Iterable[str]] = ..., workers: _Optional[int] = ..., calls_served: _Optional[int] = ..., overdue_workers: _Optional[int] = ..., pid: _Optional[int] = ..., rss_bytes: _Optional[int] = ...) -> None: ...
