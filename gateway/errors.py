"""The one error tree of the gateway.

Every failure the gateway expects is a :class:`GatewayError`. Each class knows
its gRPC status code and its ``google.rpc.ErrorInfo`` reason; ``service/status.py``
maps them to gRPC status once, and the facade maps gRPC status to OpenAI's error
JSON once. Anything that is not a ``GatewayError`` is a bug and surfaces as
INTERNAL with no detail.

::

    GatewayError
    ├── InvalidRequestError        INVALID_ARGUMENT    400  the caller's request is wrong
    │   └── UpstreamRejectedError  INVALID_ARGUMENT    400  the provider said the request is wrong
    ├── AuthenticationError        UNAUTHENTICATED     401
    ├── PermissionDeniedError      PERMISSION_DENIED   403
    ├── NotFoundError              NOT_FOUND           404
    │   └── ModelNotFoundError     NOT_FOUND           404  code model_not_found
    ├── AlreadyExistsError         ALREADY_EXISTS      409
    ├── RateLimitedError           RESOURCE_EXHAUSTED  429  with retry_after
    ├── BudgetExceededError        FAILED_PRECONDITION 402
    ├── UnavailableError           UNAVAILABLE         503  breaker open, draining
    ├── DeadlineExceededError      DEADLINE_EXCEEDED   504
    └── UpstreamError              UNAVAILABLE         502  the provider failed (UPSTREAM_ERROR)
        ├── UpstreamRateLimitedError RESOURCE_EXHAUSTED 429 the provider throttled us
        └── UpstreamTimeoutError   DEADLINE_EXCEEDED   504  the provider did not answer in time

Example::

    raise ModelNotFoundError("gpt-5-turbo")
"""

from __future__ import annotations

from typing import ClassVar

import grpc

__all__ = [
    "AlreadyExistsError",
    "AuthenticationError",
    "BudgetExceededError",
    "DeadlineExceededError",
    "GatewayError",
    "InvalidRequestError",
    "ModelNotFoundError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "UnavailableError",
    "UpstreamError",
    "UpstreamRateLimitedError",
    "UpstreamRejectedError",
    "UpstreamTimeoutError",
]


class GatewayError(Exception):
    """An expected failure, safe to show to the caller."""

    grpc_code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL
    reason: ClassVar[str] = "INTERNAL"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code

    def trailers(self) -> tuple[tuple[str, str], ...]:
        """Extra trailing metadata for gRPC clients (rate-limit values, ...)."""
        return ()

    def metadata(self) -> dict[str, str]:
        """The ``ErrorInfo.metadata`` this error carries to the facade."""
        meta: dict[str, str] = {}
        if self.param:
            meta["param"] = self.param
        if self.code:
            meta["code"] = self.code
        return meta


class InvalidRequestError(GatewayError):
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_REQUEST"


class AuthenticationError(GatewayError):
    grpc_code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class PermissionDeniedError(GatewayError):
    grpc_code = grpc.StatusCode.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"


class NotFoundError(GatewayError):
    grpc_code = grpc.StatusCode.NOT_FOUND
    reason = "NOT_FOUND"


class AlreadyExistsError(GatewayError):
    grpc_code = grpc.StatusCode.ALREADY_EXISTS
    reason = "ALREADY_EXISTS"


class ModelNotFoundError(NotFoundError):
    reason = "MODEL_NOT_FOUND"

    def __init__(self, model: str):
        super().__init__(
            f"The model '{model}' does not exist or is not routed by this gateway.",
            param="model",
            code="model_not_found",
        )


class _RetryAfterMixin:
    retry_after: float | None

    def _retry_metadata(self, meta: dict[str, str]) -> dict[str, str]:
        if self.retry_after is not None:
            meta["retry_after"] = f"{self.retry_after:g}"
        return meta


class RateLimitedError(_RetryAfterMixin, GatewayError):
    """A gateway limit refused the request; ``headers`` are its ``X-RateLimit-*`` values."""

    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after: float | None = None, scope: str = "",
                 headers: dict[str, str] | None = None):
        super().__init__(message, code="rate_limit_exceeded")
        self.retry_after = retry_after
        self.scope = scope
        self.headers = headers or {}

    def metadata(self) -> dict[str, str]:
        meta = self._retry_metadata(super().metadata())
        if self.scope:
            meta["scope"] = self.scope
        meta.update(self.headers)
        return meta

    def trailers(self) -> tuple[tuple[str, str], ...]:
        retry = (("retry-after", f"{self.retry_after:g}"),) if self.retry_after else ()
        return (*self.headers.items(), *retry)


class StorageQuotaError(GatewayError):
    """The caller's stored responses are over their byte allowance."""

    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "STORAGE_QUOTA"

    def __init__(self, message: str):
        super().__init__(message, code="storage_quota_exceeded")


class BudgetExceededError(GatewayError):
    grpc_code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "BUDGET_EXCEEDED"


class UnavailableError(GatewayError):
    grpc_code = grpc.StatusCode.UNAVAILABLE
    reason = "UNAVAILABLE"


class DeadlineExceededError(GatewayError):
    grpc_code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"


class UpstreamError(_RetryAfterMixin, GatewayError):
    """A provider failed: an error status, a broken body, a dropped connection.

    ``retryable`` says whether another attempt (here or at another deployment)
    may succeed; ``status`` is the provider's HTTP status, 0 when none came.
    """

    grpc_code = grpc.StatusCode.UNAVAILABLE
    reason = "UPSTREAM_ERROR"

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int = 0,
        retryable: bool = True,
        retry_after: float | None = None,
        error_type: str = "upstream_error",
    ):
        super().__init__(message, code=error_type)
        self.provider = provider
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.error_type = error_type

    def metadata(self) -> dict[str, str]:
        meta = super().metadata()
        meta["provider"] = self.provider
        if self.status:
            meta["upstream_status"] = str(self.status)
        return self._retry_metadata(meta)


class UpstreamRateLimitedError(UpstreamError):
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "UPSTREAM_RATE_LIMITED"


class UpstreamTimeoutError(UpstreamError):
    grpc_code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "UPSTREAM_TIMEOUT"

    def __init__(self, message: str, *, provider: str):
        super().__init__(message, provider=provider, error_type="timeout")


class UpstreamRejectedError(InvalidRequestError):
    """The provider answered 4xx for a reason that is the caller's fault."""

    reason = "UPSTREAM_REJECTED"

    def __init__(self, message: str, *, provider: str, status: int, param: str | None = None):
        super().__init__(message, param=param)
        self.provider = provider
        self.status = status

    def metadata(self) -> dict[str, str]:
        meta = super().metadata()
        meta["provider"] = self.provider
        meta["upstream_status"] = str(self.status)
        return meta
