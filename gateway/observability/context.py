"""The per-request context, carried in a ContextVar so logs can find it anywhere.

The service's interceptor opens one per RPC; the servicer fills in what it learns
(model, provider, tokens); the interceptor logs it when the RPC ends.
"""

from __future__ import annotations

import contextvars
import re
import secrets
import time
from dataclasses import dataclass

__all__ = ["RequestContext", "current", "new_request_id", "valid_request_id"]

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


@dataclass(slots=True)
class RequestContext:
    request_id: str
    method: str = ""
    tenant: str = ""
    model: str = ""
    provider: str = ""
    status: str = "OK"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    upstream_seconds: float = 0.0  # time spent waiting on upstreams (unary calls)
    stream: bool = False
    known_model: bool = False  # ``model`` is configured or was served (see metrics)
    deadline_at: float | None = None  # the caller's deadline, on time.monotonic()

    def past_deadline(self) -> bool:
        """A call cancelled now was cancelled by its deadline (grpc cancels the handler
        when the deadline passes, which may come before our own timeout says so)."""
        return self.deadline_at is not None and time.monotonic() >= self.deadline_at - 0.01


_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "request_context", default=None
)


def current() -> RequestContext | None:
    return _current.get()


def set_current(ctx: RequestContext) -> contextvars.Token[RequestContext | None]:
    return _current.set(ctx)


def reset(token: contextvars.Token[RequestContext | None]) -> None:
    _current.reset(token)


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


def valid_request_id(value: str | None) -> bool:
    """A client's id is kept only if short and plain (no header or log injection)."""
    return bool(value) and _REQUEST_ID.fullmatch(value or "") is not None
