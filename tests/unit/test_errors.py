"""The facade's one mapping: gRPC status (+ ErrorInfo) -> HTTP status and OpenAI error JSON.

Each case builds the trailer the core really sends (``service.status.status_details``)
for a GatewayError, wraps it in an ``AioRpcError`` as the stub would raise it, and
checks what a REST client gets.
"""

from __future__ import annotations

import grpc
import orjson
import pytest
from google.rpc import error_details_pb2, status_pb2

from gateway.errors import (
    AuthenticationError,
    BudgetExceededError,
    DeadlineExceededError,
    GatewayError,
    InvalidRequestError,
    ModelNotFoundError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    UnavailableError,
    UpstreamError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
    UpstreamTimeoutError,
)
from gateway.facade.errors import ApiError, from_rpc_error
from gateway.service.status import DOMAIN, STATUS_DETAILS_KEY, status_details


def rpc_error(exc: GatewayError) -> grpc.aio.AioRpcError:
    """What the stub raises when the core aborts with ``exc``."""
    return grpc.aio.AioRpcError(
        exc.grpc_code,
        initial_metadata=grpc.aio.Metadata(),
        trailing_metadata=grpc.aio.Metadata(
            (STATUS_DETAILS_KEY, status_details(exc)), ("x-request-id", "req-1")),
        details=exc.message,
    )


def bare_rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, initial_metadata=grpc.aio.Metadata(),
                                trailing_metadata=grpc.aio.Metadata(), details=details)


def body(err: ApiError) -> dict[str, object]:
    error = orjson.loads(err.body())["error"]
    assert isinstance(error, dict)
    return error


# --- status_details: what the core sends ---------------------------------------------------


def test_status_details_carries_error_info() -> None:
    exc = UpstreamRateLimitedError("slow down", provider="upstream", status=429, retry_after=7)
    status = status_pb2.Status.FromString(status_details(exc))
    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert status.message == "slow down"
    assert len(status.details) == 1
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert info.reason == "UPSTREAM_RATE_LIMITED"
    assert info.domain == DOMAIN == "llm-gateway"
    assert dict(info.metadata) == {"provider": "upstream", "upstream_status": "429",
                                   "retry_after": "7", "code": "upstream_error"}


@pytest.mark.parametrize(
    ("exc", "code", "reason"),
    [
        (InvalidRequestError("x"), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST"),
        (UpstreamRejectedError("x", provider="p", status=400), grpc.StatusCode.INVALID_ARGUMENT,
         "UPSTREAM_REJECTED"),
        (AuthenticationError("x"), grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED"),
        (PermissionDeniedError("x"), grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED"),
        (NotFoundError("x"), grpc.StatusCode.NOT_FOUND, "NOT_FOUND"),
        (ModelNotFoundError("m"), grpc.StatusCode.NOT_FOUND, "MODEL_NOT_FOUND"),
        (RateLimitedError("x"), grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED"),
        (BudgetExceededError("x"), grpc.StatusCode.FAILED_PRECONDITION, "BUDGET_EXCEEDED"),
        (UnavailableError("x"), grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE"),
        (DeadlineExceededError("x"), grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED"),
        (UpstreamError("x", provider="p"), grpc.StatusCode.UNAVAILABLE, "UPSTREAM_ERROR"),
        (UpstreamTimeoutError("x", provider="p"), grpc.StatusCode.DEADLINE_EXCEEDED,
         "UPSTREAM_TIMEOUT"),
    ],
)
def test_error_tree_codes_and_reasons(exc: GatewayError, code: grpc.StatusCode,
                                      reason: str) -> None:
    assert exc.grpc_code == code
    assert exc.reason == reason


# --- from_rpc_error: what the REST client gets ---------------------------------------------


def test_invalid_argument_is_400_with_param() -> None:
    err = from_rpc_error(rpc_error(InvalidRequestError(
        "'temperature' must be between 0 and 2", param="temperature")))
    assert err.status == 400
    assert body(err) == {"message": "'temperature' must be between 0 and 2",
                         "type": "invalid_request_error", "param": "temperature",
                         "code": "invalid_request"}
    assert err.headers() == {}


def test_upstream_rejected_is_400_with_the_providers_param() -> None:
    err = from_rpc_error(rpc_error(UpstreamRejectedError(
        "bad thing", provider="upstream", status=400, param="messages")))
    assert err.status == 400
    assert err.type == "invalid_request_error"
    assert (err.message, err.param) == ("bad thing", "messages")
    assert err.provider == "upstream"


def test_unauthenticated_is_401() -> None:
    err = from_rpc_error(rpc_error(AuthenticationError("Invalid API key.")))
    assert (err.status, err.type, err.message) == (401, "authentication_error",
                                                   "Invalid API key.")


def test_permission_denied_is_403() -> None:
    err = from_rpc_error(rpc_error(PermissionDeniedError("Admin only.")))
    assert (err.status, err.type) == (403, "permission_error")


def test_model_not_found_is_404() -> None:
    err = from_rpc_error(rpc_error(ModelNotFoundError("gpt-5-turbo")))
    assert err.status == 404
    error = body(err)
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "model_not_found"
    assert error["param"] == "model"
    assert "gpt-5-turbo" in str(error["message"])


def test_rate_limited_is_429_with_retry_after() -> None:
    err = from_rpc_error(rpc_error(RateLimitedError("Too many requests.", retry_after=7)))
    assert (err.status, err.type) == (429, "rate_limit_error")
    assert err.code == "rate_limit_exceeded"
    assert err.headers() == {"Retry-After": "7"}


def test_rate_limited_without_retry_after_still_says_when() -> None:
    err = from_rpc_error(rpc_error(RateLimitedError("Too many requests.")))
    assert err.status == 429
    assert err.headers() == {"Retry-After": "1"}


def test_fractional_retry_after_rounds_up_to_whole_seconds() -> None:
    # HTTP's Retry-After is delta-seconds, a whole number (RFC 9110 section 10.2.3).
    err = from_rpc_error(rpc_error(RateLimitedError("x", retry_after=0.5)))
    assert err.headers()["Retry-After"] == "1"
    err = from_rpc_error(rpc_error(RateLimitedError("x", retry_after=2.01)))
    assert err.headers()["Retry-After"] == "3"


def test_upstream_rate_limited_is_429_with_the_providers_retry_after() -> None:
    err = from_rpc_error(rpc_error(UpstreamRateLimitedError(
        "upstream is rate limiting requests (429)", provider="upstream", status=429,
        retry_after=12, error_type="rate_limited")))
    assert err.status == 429
    assert err.headers() == {"Retry-After": "12"}
    assert err.provider == "upstream"


def test_budget_exceeded_is_402() -> None:
    err = from_rpc_error(rpc_error(BudgetExceededError("Monthly budget exhausted.")))
    assert (err.status, err.type) == (402, "insufficient_quota")


def test_unavailable_is_503() -> None:
    err = from_rpc_error(rpc_error(UnavailableError("circuit open for upstream")))
    assert (err.status, err.type) == (503, "service_unavailable")
    assert err.message == "circuit open for upstream"
    assert err.provider is None


def test_deadline_exceeded_is_504() -> None:
    err = from_rpc_error(rpc_error(DeadlineExceededError("deadline exceeded")))
    assert (err.status, err.type) == (504, "timeout_error")


def test_upstream_timeout_is_504_with_provider() -> None:
    err = from_rpc_error(rpc_error(UpstreamTimeoutError("upstream did not answer in time",
                                                        provider="upstream")))
    assert (err.status, err.type) == (504, "timeout_error")
    assert err.provider == "upstream"


def test_upstream_failure_is_502_naming_the_provider() -> None:
    exc = UpstreamError("upstream failed with status 500", provider="upstream", status=500,
                        error_type="server_error")
    err = from_rpc_error(rpc_error(exc))
    assert err.status == 502
    error = body(err)
    assert error == {"message": "upstream failed with status 500", "type": "upstream_error",
                     "param": None, "code": "server_error", "provider": "upstream"}


def test_upstream_failure_with_retry_after_passes_it_on() -> None:
    err = from_rpc_error(rpc_error(UpstreamError("x", provider="p", status=503,
                                                 retry_after=30)))
    assert err.status == 502
    assert err.headers() == {"Retry-After": "30"}


def test_transport_failure_without_detail_is_503_and_says_nothing_more() -> None:
    err = from_rpc_error(bare_rpc_error(grpc.StatusCode.UNAVAILABLE,
                                        "failed to connect to all addresses; 10.0.0.1:50051"))
    assert err.status == 503
    assert err.message == "the gateway core is unavailable"
    assert "10.0.0.1" not in err.body().decode()


def test_internal_error_hides_its_details() -> None:
    err = from_rpc_error(bare_rpc_error(grpc.StatusCode.INTERNAL,
                                        "Traceback: KeyError 'secret' at core.py:12"))
    assert (err.status, err.type, err.message) == (500, "server_error", "internal error")
    assert "Traceback" not in err.body().decode()


@pytest.mark.parametrize(
    ("code", "status"),
    [(grpc.StatusCode.INVALID_ARGUMENT, 400), (grpc.StatusCode.UNAUTHENTICATED, 401),
     (grpc.StatusCode.PERMISSION_DENIED, 403), (grpc.StatusCode.NOT_FOUND, 404),
     (grpc.StatusCode.RESOURCE_EXHAUSTED, 429), (grpc.StatusCode.FAILED_PRECONDITION, 402),
     (grpc.StatusCode.DEADLINE_EXCEEDED, 504), (grpc.StatusCode.UNKNOWN, 500),
     (grpc.StatusCode.DATA_LOSS, 500)],
)
def test_codes_without_error_info(code: grpc.StatusCode, status: int) -> None:
    err = from_rpc_error(bare_rpc_error(code, "something"))
    assert err.status == status
    assert err.provider is None and err.param is None
    if status == 429:
        assert err.headers() == {"Retry-After": "1"}


def test_garbage_details_trailer_is_ignored() -> None:
    other = status_pb2.Status(code=5, message="x")  # a Status with no ErrorInfo in it
    error = grpc.aio.AioRpcError(
        grpc.StatusCode.NOT_FOUND, initial_metadata=grpc.aio.Metadata(),
        trailing_metadata=grpc.aio.Metadata((STATUS_DETAILS_KEY, other.SerializeToString())),
        details="no such thing")
    err = from_rpc_error(error)
    assert (err.status, err.message, err.code) == (404, "no such thing", None)


@pytest.mark.parametrize("char", ["x", "\u00e9", "\U0001f600"])
def test_a_long_quoted_input_keeps_the_status_trailers_under_grpcs_soft_limit(char: str) -> None:
    # Was cut at 512 characters: 512 four-byte characters made ~8.4 KB of trailers (the
    # message percent-encoded, the details in base64), over gRPC's 8 KiB soft limit, and
    # clients got RESOURCE_EXHAUSTED now and then instead of the error.
    error = ModelNotFoundError(char * 3000)
    details = status_details(error)
    message = status_pb2.Status.FromString(details).message
    encoded = len(message.encode()) * 3 + (len(details) + 2) // 3 * 4  # %XX, base64
    assert encoded < 4096
    assert message.endswith("...") and len(message.encode()) <= 512
