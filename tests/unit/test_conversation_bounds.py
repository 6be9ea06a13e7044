"""Issue 19, item 6: the memory conversation store is bounded in bytes, per owner (past it
a StorageQuotaError, a clear 4xx) and in total (past it the oldest records go)."""

from __future__ import annotations

import pytest

from gateway.errors import StorageQuotaError
from gateway.state.base import ConversationRecord
from gateway.state.memory_store import MemoryConversationStore

NOW = 1_000_000.0


def _record(rid: str, owner: str, size: int, expires: float = NOW + 60) -> ConversationRecord:
    return ConversationRecord(rid, owner, b"x" * size, NOW, expires)


async def test_one_owner_is_held_to_its_bytes() -> None:
    store = MemoryConversationStore(max_owner_bytes=1000, clock=lambda: NOW)
    await store.put(_record("a", "alice", 600))
    with pytest.raises(StorageQuotaError):
        await store.put(_record("b", "alice", 600))
    await store.put(_record("c", "bob", 600))  # another owner is not held to alice's bytes
    await store.put(_record("a", "alice", 900))  # replacing a record frees its bytes first
    assert await store.delete("a", "alice")
    await store.put(_record("b", "alice", 1000))
    assert store.bytes == 1600


async def test_expired_records_do_not_count_against_the_owner() -> None:
    now = [NOW]
    store = MemoryConversationStore(max_owner_bytes=1000, clock=lambda: now[0])
    await store.put(_record("a", "alice", 900, expires=NOW + 10))
    now[0] += 11
    await store.put(_record("b", "alice", 900, expires=NOW + 100))
    assert store.bytes == 900


async def test_the_total_is_bounded_by_evicting_the_oldest() -> None:
    store = MemoryConversationStore(max_total_bytes=2500, clock=lambda: NOW)
    for i in range(5):
        await store.put(_record(f"r{i}", f"owner{i}", 1000))
    assert store.bytes == 2000 and len(store) == 2
    assert await store.get("r0", "owner0") is None
    assert await store.get("r4", "owner4") is not None
