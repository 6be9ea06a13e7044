"""GatewayError -> gRPC status with a ``google.rpc.ErrorInfo`` detail (mapped once)."""

from __future__ import annotations

from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from gateway.errors import GatewayError

__all__ = ["DOMAIN", "MAX_DETAIL", "STATUS_DETAILS_KEY", "bounded", "status_details"]

DOMAIN = "llm-gateway"
STATUS_DETAILS_KEY = "grpc-status-details-bin"
# Messages quote what the caller sent (a model name, an id): bounded, so that the
# status trailers stay far below the 16 KiB clients accept for metadata (past that the
# client sees RESOURCE_EXHAUSTED instead of the error).
MAX_DETAIL = 512


def bounded(text: str) -> str:
    """``text``, cut to :data:`MAX_DETAIL` characters."""
    return text if len(text) <= MAX_DETAIL else text[:MAX_DETAIL - 3] + "..."


def status_details(error: GatewayError) -> bytes:
    """The serialized ``google.rpc.Status`` for the ``grpc-status-details-bin`` trailer."""
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata={
        key: bounded(value) for key, value in error.metadata().items()})
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=error.grpc_code.value[0], message=bounded(error.message),
                               details=[detail])
    return bytes(status.SerializeToString())
