"""OpenAI-shaped errors: gRPC status -> HTTP status + error JSON, mapped once here.

Example body::

    {"error": {"message": "...", "type": "invalid_request_error",
               "param": "model", "code": "model_not_found"}}
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import grpc
import orjson
from google.rpc import error_details_pb2, status_pb2

__all__ = ["ApiError", "from_rpc_error"]

_STATUS_DETAILS_KEY = "grpc-status-details-bin"

# gRPC code -> (HTTP status, OpenAI error type)
_BY_CODE: dict[grpc.StatusCode, tuple[int, str]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "invalid_request_error"),
    grpc.StatusCode.OUT_OF_RANGE: (400, "invalid_request_error"),
    grpc.StatusCode.UNAUTHENTICATED: (401, "authentication_error"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "permission_error"),
    grpc.StatusCode.NOT_FOUND: (404, "invalid_request_error"),
    grpc.StatusCode.ALREADY_EXISTS: (409, "invalid_request_error"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "rate_limit_error"),
    grpc.StatusCode.FAILED_PRECONDITION: (402, "insufficient_quota"),
    grpc.StatusCode.UNAVAILABLE: (503, "service_unavailable"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "timeout_error"),
    grpc.StatusCode.CANCELLED: (499, "cancelled"),
    grpc.StatusCode.UNIMPLEMENTED: (501, "not_implemented"),
}
# ErrorInfo reasons that refine the code's default.
_BY_REASON: dict[str, tuple[int, str]] = {
    "UPSTREAM_ERROR": (502, "upstream_error"),
    "UPSTREAM_TIMEOUT": (504, "timeout_error"),
}


@dataclass(slots=True)
class ApiError(Exception):
    """An error answer of the facade."""

    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None
    retry_after: str | None = None
    provider: str | None = None
    extra_headers: dict[str, str] | None = None

    def body(self) -> bytes:
        error: dict[str, Any] = {"message": self.message, "type": self.type,
                                 "param": self.param, "code": self.code}
        if self.provider:
            error["provider"] = self.provider
        return orjson.dumps({"error": error})

    def headers(self) -> dict[str, str]:
        headers = dict(self.extra_headers) if self.extra_headers else {}
        if self.retry_after:
            headers["Retry-After"] = self.retry_after
        return headers


def _error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo | None:
    for key, value in error.trailing_metadata() or ():
        if key == _STATUS_DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return info
    return None


def from_rpc_error(error: grpc.aio.AioRpcError) -> ApiError:
    """The OpenAI error for a failed call on the core."""
    code = error.code()
    info = _error_info(error)
    meta = dict(info.metadata) if info is not None else {}
    reason = info.reason if info is not None else ""
    status, kind = _BY_REASON.get(reason) or _BY_CODE.get(code, (500, "server_error"))
    if code == grpc.StatusCode.UNAVAILABLE and info is None:
        message = "the gateway core is unavailable"  # transport failure: no detail to trust
    elif status == 500:
        message = "internal error"
    else:
        message = error.details() or kind
    retry_after = meta.get("retry_after")
    if retry_after:  # Retry-After is whole seconds
        retry_after = str(max(1, math.ceil(float(retry_after))))
    elif status == 429:
        retry_after = "1"
    return ApiError(
        status=status,
        message=message,
        type=kind,
        param=meta.get("param"),
        code=meta.get("code") or (reason.lower() if reason else None),
        retry_after=retry_after,
        provider=meta.get("provider"),
        extra_headers={k: v for k, v in meta.items() if k.startswith("x-ratelimit-")} or None,
    )
