"""A tenant's own provider credentials for the request being served.

The admission step sets them (decrypted) for the duration of one request;
:class:`~gateway.providers.http.HttpProvider` uses the one for its provider name,
if any, in place of the configured key. A ContextVar keeps them out of every
signature and every log: they exist only while the request runs.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping

__all__ = ["current", "use"]

_credentials: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "tenant_provider_credentials", default=None)


def current(provider: str) -> str | None:
    creds = _credentials.get()
    return creds.get(provider) if creds else None


def use(credentials: Mapping[str, str] | None) -> contextvars.Token[Mapping[str, str] | None]:
    return _credentials.set(credentials)
