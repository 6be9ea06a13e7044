"""GatewayError -> gRPC status with a ``google.rpc.ErrorInfo`` detail (mapped once)."""

from __future__ import annotations

from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from gateway.errors import GatewayError

__all__ = ["DOMAIN", "STATUS_DETAILS_KEY", "status_details"]

DOMAIN = "llm-gateway"
STATUS_DETAILS_KEY = "grpc-status-details-bin"


def status_details(error: GatewayError) -> bytes:
    """The serialized ``google.rpc.Status`` for the ``grpc-status-details-bin`` trailer."""
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN,
                                       metadata=error.metadata())
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=error.grpc_code.value[0], message=error.message,
                               details=[detail])
    return bytes(status.SerializeToString())
