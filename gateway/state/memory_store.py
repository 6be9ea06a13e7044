"""The conversation store of one process: a bounded dict, nothing durable.

Records live in insertion order; past ``max_records`` or ``max_total_bytes`` the oldest
are evicted, so a flood of stored responses costs bounded memory, and one owner may hold at
most ``max_owner_bytes`` (past it, :class:`~gateway.errors.StorageQuotaError`). A
background task started by :meth:`MemoryConversationStore.start` drops expired records every
``min(ttl, 60 s)``;
:meth:`~MemoryConversationStore.get` never returns one that has expired in between.

Example::

    store = MemoryConversationStore(ttl=3600)
    await store.start()
    await store.put(ConversationRecord("resp_1", "ten_acme", b"{}", now, now + 3600))
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Self

from gateway.errors import StorageQuotaError
from gateway.state.base import ConversationRecord

__all__ = ["MemoryConversationStore"]

log = logging.getLogger("gateway.state")

MAX_SWEEP_INTERVAL = 60.0
MIN_SWEEP_INTERVAL = 0.05  # a zero TTL must not spin the event loop


class MemoryConversationStore:
    """:class:`~gateway.state.base.ConversationStore` in a dict; see the module docstring.

    ``clock`` gives Unix seconds, the time base of the records' ``expires_at``.
    """

    def __init__(self, *, ttl: float = 3600.0, max_records: int = 100_000,
                 max_owner_bytes: int = 64 << 20, max_total_bytes: int = 512 << 20,
                 clock: Callable[[], float] = time.time):
        if max_records < 1:
            raise ValueError("max_records must be at least 1")
        self.max_records = max_records
        self.max_owner_bytes = max_owner_bytes
        self.max_total_bytes = max_total_bytes
        self._bytes = 0
        self._owner_bytes: dict[str, int] = {}
        self.sweep_interval = max(MIN_SWEEP_INTERVAL, min(float(ttl), MAX_SWEEP_INTERVAL))
        self._clock = clock
        self._records: OrderedDict[str, ConversationRecord] = OrderedDict()
        self._sweeper: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        """Records held, expired ones not yet swept included."""
        return len(self._records)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_forever(),
                                                name="conversations-sweeper")

    async def aclose(self) -> None:
        task, self._sweeper = self._sweeper, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def ping(self) -> None:
        return None

    @property
    def bytes(self) -> int:
        """Bytes of the documents held."""
        return self._bytes

    def _add(self, record: ConversationRecord) -> None:
        self._records[record.id] = record
        size = len(record.document)
        self._bytes += size
        self._owner_bytes[record.owner] = self._owner_bytes.get(record.owner, 0) + size

    def _drop(self, record_id: str) -> None:
        record = self._records.pop(record_id, None)
        if record is None:
            return
        size = len(record.document)
        self._bytes -= size
        left = self._owner_bytes[record.owner] - size
        if left:
            self._owner_bytes[record.owner] = left
        else:
            del self._owner_bytes[record.owner]

    async def put(self, record: ConversationRecord) -> None:
        records = self._records
        self._drop(record.id)  # an upsert counts as new for eviction
        if record.expires_at <= self._clock():
            return
        held = self._owner_bytes.get(record.owner, 0)
        if held + len(record.document) > self.max_owner_bytes:
            self.sweep()  # expired records do not count against the owner
            held = self._owner_bytes.get(record.owner, 0)
            if held + len(record.document) > self.max_owner_bytes:
                raise StorageQuotaError(
                    f"stored responses are limited to {self.max_owner_bytes} bytes per "
                    "caller; delete some, or send store: false")
        self._add(record)
        while len(records) > self.max_records or self._bytes > self.max_total_bytes:
            self._drop(next(iter(records)))

    async def get(self, record_id: str, owner: str) -> ConversationRecord | None:
        record = self._records.get(record_id)
        if record is None:
            return None
        if record.expires_at <= self._clock():
            self._drop(record_id)
            return None
        return record if record.owner == owner else None

    async def extend(self, record_ids: Sequence[str], owner: str, expires_at: float) -> None:
        for record_id in record_ids:
            record = await self.get(record_id, owner)
            if record is not None and record.expires_at < expires_at:
                self._records[record_id] = dataclasses.replace(record, expires_at=expires_at)

    async def delete(self, record_id: str, owner: str) -> bool:
        if await self.get(record_id, owner) is None:
            return False
        self._drop(record_id)
        return True

    def sweep(self) -> int:
        """Drop the expired records now; return how many."""
        now = self._clock()
        expired = [key for key, record in self._records.items() if record.expires_at <= now]
        for key in expired:
            self._drop(key)
        return len(expired)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            if dropped := self.sweep():
                log.debug("expired conversations dropped", extra={"fields": {"count": dropped}})
