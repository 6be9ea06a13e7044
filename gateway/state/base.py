"""The conversation store and response cache protocols.

A conversation record is one stored Responses API response: its id (``resp_...``),
its owner (the identity that made it; nobody else may read it), and a JSON
document holding the response and the full input history that led to it, so
``previous_response_id`` can continue it. Records expire after the configured TTL.

The response cache maps a key (a hash of tenant + model + the normalized request)
to the serialized answer, with a TTL.

Every method raises ``gateway.errors.UnavailableError`` when the backing store
cannot be reached, so callers answer a clear 503.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["ConversationRecord", "ConversationStore", "ResponseCache"]


@dataclass(frozen=True, slots=True)
class ConversationRecord:
    id: str
    owner: str
    document: bytes  # JSON: the response and its input history
    created_at: float
    expires_at: float


class ConversationStore(Protocol):
    async def start(self) -> None:
        """Connect; create tables (SQL) idempotently; start the expiry sweeper."""
        ...

    async def aclose(self) -> None: ...

    async def ping(self) -> None:
        """Raise UnavailableError unless the store answers (readiness)."""
        ...

    async def put(self, record: ConversationRecord) -> None:
        """Insert or replace."""
        ...

    async def get(self, record_id: str, owner: str) -> ConversationRecord | None:
        """The record when it exists, is not expired, and belongs to ``owner``."""
        ...

    async def extend(self, record_ids: Sequence[str], owner: str, expires_at: float) -> None:
        """Keep the records of ``owner`` among ``record_ids`` that are alive until at least
        ``expires_at`` (the earlier turns of a conversation live as long as its last)."""
        ...

    async def delete(self, record_id: str, owner: str) -> bool:
        """True when a record of ``owner`` was deleted."""
        ...


class ResponseCache(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes, ttl: float) -> None: ...

    async def aclose(self) -> None: ...
