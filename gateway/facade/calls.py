"""What every REST request hands the core: its id, metadata and deadline, and what the
core hands back in headers.

Both the Quart routes and the lean hot routes (:mod:`gateway.facade.hot`) build their calls
here, from a header getter (``request.headers.get`` in Quart, a dict of lower-cased names
in the hot routes), so the two paths cannot drift apart. Both read a repeated header as
its first line, except ``X-Forwarded-For``, whose lines are one list (RFC 9110, 5.3).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.clientip import TrustedProxies
from gateway.facade.errors import ApiError
from gateway.observability.context import new_request_id, valid_request_id

__all__ = ["MAX_TIMEOUT", "HeaderGetter", "body_too_large", "body_too_slow", "client_timeout",
           "core_metadata", "limit_headers", "request_id"]

HeaderGetter = Callable[[str], str | None]
MAX_TIMEOUT = 3600.0
# Client headers the core reads, forwarded as gRPC metadata.
_FORWARDED = (("authorization", "Authorization"), ("x-api-key", "X-Api-Key"),
              ("x-provider", "X-Provider"), ("x-skip-cache", "X-Skip-Cache"))
_CREDENTIALS = ("authorization", "x-api-key")
# Core answers the client sees as response headers (the core's initial metadata).
_CORE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "x-cache")


def request_id(get: HeaderGetter) -> str:
    """The client's ``X-Request-ID`` when it is well formed, else a new one."""
    value = get("x-request-id")
    return value if value and valid_request_id(value) else new_request_id()


def core_metadata(get: HeaderGetter, request_id: str, peer: str, forwarded_for: str | None,
                  proxies: TrustedProxies) -> tuple[tuple[str, str], ...]:
    """The call's metadata: request id, credentials, routing hints, the client's address
    (``peer``, or what trusted proxies say in ``forwarded_for``: every ``X-Forwarded-For``
    line of the request joined in order, since a proxy may append its own line)."""
    meta: list[tuple[str, str]] = [("x-request-id", request_id)]
    for key, header in _FORWARDED:
        value = get(key)
        if value:
            if not (value.isascii() and value.isprintable()):  # gRPC would refuse to send it
                credential = key in _CREDENTIALS
                raise ApiError(401 if credential else 400,
                               f"The {header} header holds characters other than printable "
                               "ASCII.", type="authentication_error" if credential else
                               "invalid_request_error", param=header)
            meta.append((key, value))
    meta.append(("x-client-ip", proxies.client_ip(peer, forwarded_for)))
    return tuple(meta)


def body_too_large(limit: int) -> ApiError:
    """413: the body is over ``server.max_request_body_size``."""
    return ApiError(413, f"The request body exceeds the limit of {limit} bytes.",
                    code="request_too_large")


def body_too_slow(seconds: float) -> ApiError:
    """408: the body did not arrive within ``server.body_timeout``."""
    return ApiError(408, f"The request body did not arrive within {seconds:g} seconds.")


def client_timeout(get: HeaderGetter) -> float | None:
    """The client's own timeout, which bounds the whole call: ``X-Request-Timeout``
    (seconds), or the ``X-Stainless-Timeout`` the official OpenAI SDKs send."""
    raw = get("x-request-timeout") or get("x-stainless-timeout")
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ApiError(400, "'X-Request-Timeout' must be a number of seconds.",
                       param="X-Request-Timeout") from None
    if not 0 < value <= MAX_TIMEOUT:
        raise ApiError(400, f"'X-Request-Timeout' must be in (0, {MAX_TIMEOUT:g}] seconds.",
                       param="X-Request-Timeout")
    return value


async def limit_headers(call: Any, headers: dict[str, str]) -> dict[str, str]:
    """The core's ``X-RateLimit-*`` and ``X-Cache`` values (initial metadata), added to
    ``headers``."""
    metadata = await call.initial_metadata()
    if metadata:
        for key in _CORE_HEADERS:
            value = metadata.get(key)
            if value is not None:
                headers[key] = str(value)
    return headers
