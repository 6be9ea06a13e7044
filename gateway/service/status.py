"""GatewayError -> gRPC status with a ``google.rpc.ErrorInfo`` detail (mapped once)."""

from __future__ import annotations

from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from gateway.errors import GatewayError

__all__ = ["DOMAIN", "MAX_DETAIL", "STATUS_DETAILS_KEY", "bounded", "status_details"]

DOMAIN = "llm-gateway"
STATUS_DETAILS_KEY = "grpc-status-details-bin"
# Messages quote what the caller sent (a model name, an id): bounded in UTF-8 bytes, so
# that the status trailers (the message percent-encoded, the details in base64) stay far
# below gRPC's 8 KiB soft metadata limit, past which a client may see RESOURCE_EXHAUSTED
# instead of the error (512 four-byte characters came to ~8.4 KB).
MAX_DETAIL = 512


def bounded(text: str) -> str:
    """``text``, cut to :data:`MAX_DETAIL` bytes of UTF-8 (whole characters only)."""
    raw = text.encode()
    if len(raw) <= MAX_DETAIL:
        return text
    return raw[:MAX_DETAIL - 3].decode(errors="ignore") + "..."


def status_details(error: GatewayError) -> bytes:
    """The serialized ``google.rpc.Status`` for the ``grpc-status-details-bin`` trailer."""
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata={
        key: bounded(value) for key, value in error.metadata().items()})
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=error.grpc_code.value[0], message=bounded(error.message),
                               details=[detail])
    return bytes(status.SerializeToString())
