"""Focused regression tests for defects the fault-injection tests found under load."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest

from gateway.backends.postgres import PostgresPool
from gateway.errors import UnavailableError
from gateway.tenancy.postgres_store import PostgresTenantStore
from gateway.tenancy.usage import Budget, Budgets
from tests.inprocess import InProcessGateway
from tests.servers import PostgresServer


async def test_a_confused_postgres_connection_is_an_outage_not_a_500(postgres_dsn: str) -> None:
    """PostgreSQL shutting down under load made asyncpg raise InternalClientError ("cannot
    switch to state 12; another operation (2) is in progress") in a conversation-store
    write: it escaped the outage mapping and the client got 500 instead of 503
    (test_faults.py::test_postgres_stopped_and_restarted_under_load)."""
    db = PostgresPool(postgres_dsn, name="conversation store", component="regression",
                      migrations=())
    await db.start()
    try:
        with pytest.raises(UnavailableError, match="conversation store unavailable"):
            async with db.connection():
                raise asyncpg.InternalClientError(
                    "cannot switch to state 12; another operation (2) is in progress")
        async with db.connection() as conn:  # the pool still serves
            assert await conn.fetchval("SELECT 1") == 1
    finally:
        await db.aclose()


async def test_counting_spend_never_fails_a_served_request() -> None:
    """Budgets.add runs after the answer; when its periodic refresh from the store fell
    inside a PostgreSQL outage it raised UnavailableError, and the request the upstream had
    already answered (and the usage row already queued) was failed with 503."""
    server = PostgresServer().start()
    store = PostgresTenantStore(server.create_database("budgets"), connect_timeout=1)
    now = [0.0]
    budgets = Budgets(store, refresh=5.0, clock=lambda: now[0])
    try:
        await store.start()
        await budgets.add([Budget("ten_a", 10.0)], 1.0)  # reads the store's total, adds
        await asyncio.to_thread(server.stop)
        now[0] += 6  # a refresh is due while the store is down
        await budgets.add([Budget("ten_a", 10.0)], 2.0)  # must not raise
        await budgets.add([Budget("ten_b", None)], 1.0)  # nothing known of ten_b: nothing to add to
        await asyncio.to_thread(server.start)
        now[0] += 6
        await budgets.add([Budget("ten_a", 10.0)], 0.5)  # refreshed from the store again
        # no rows were written
        assert (await budgets.totals(Budget("ten_a", 10.0)))[1].cost_usd == 0.5
    finally:
        await store.aclose()
        server.close()


@pytest.mark.slow
def test_a_served_request_is_not_failed_by_a_database_outage(
        gateway_factory: Callable[..., InProcessGateway]) -> None:
    """End to end: the key and tenant are cached (an admin change refreshed them after the
    spend was last read), PostgreSQL stops, the spend refresh comes due: the chat the mock
    answered must be 200, not 503."""
    server = PostgresServer().start()
    try:
        dsn = server.create_database("served")
        gw = gateway_factory("auth: {api_keys: {enabled: true}}\n",
                             env={"DATABASE_URL": dsn, "GATEWAY_ADMIN_KEY": "adm-served"})
        admin = {"Authorization": "Bearer adm-served"}
        with httpx.Client(base_url=gw.http_url, timeout=10) as c:
            tenant = c.post("/admin/tenants", json={"name": "a"}, headers=admin).json()
            tenant_id = tenant["tenant"]["id"]
            secret = c.post(f"/admin/tenants/{tenant_id}/keys", json={"name": "k"},
                            headers=admin).json()["secret"]

            def chat() -> httpx.Response:
                return c.post("/v1/chat/completions", headers={
                    "Authorization": f"Bearer {secret}"}, json={
                    "model": "mock-1", "messages": [{"role": "user", "content": "hi"}]})

            assert chat().status_code == 200  # the spend is read now
            time.sleep(3)
            assert c.put(f"/admin/tenants/{tenant_id}", json={"name": "a2"},
                         headers=admin).status_code == 200  # caches dropped
            assert chat().status_code == 200  # key and tenant cached for 5 s from now
            server.stop()
            time.sleep(2.5)  # the spend (read 5.5 s ago) is due; the key is still cached
            r = chat()
            assert r.status_code == 200, r.text
            server.start()
    finally:
        server.close()


def close_wait_sockets(port: int) -> int:
    """Sockets on local ``port`` in CLOSE-WAIT (the peer closed, this side has not)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            next(rows)
            for row in rows:
                local, state = row.split()[1], row.split()[3]
                count += int(local.rsplit(":", 1)[1], 16) == port and state == "08"
    return count


def test_a_connection_closes_when_its_client_closes_it(
        gateway_factory: Callable[..., InProcessGateway]) -> None:
    """Hypercorn kept a connection its client had closed open until keep_alive_timeout
    (75 s): a CLOSE-WAIT socket and a descriptor per closed connection, which the soak
    test saw as hundreds of descriptors (gateway/hypercorn_patch.py)."""
    gw = gateway_factory(None)
    body = b'{"model": "mock-1", "messages": [{"role": "user", "content": "x"}]}'
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Type: "
               b"application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    for i in range(20):
        with socket.create_connection(("127.0.0.1", gw.http_port)) as s:
            if i % 2:  # half of them idle, half after one answer
                s.sendall(request)
                assert s.recv(65536).startswith(b"HTTP/1.1 200")
    deadline = time.monotonic() + 3
    while close_wait_sockets(gw.http_port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert close_wait_sockets(gw.http_port) == 0


def test_an_answer_before_the_body_does_not_strand_the_connection(
        gateway_factory: Callable[..., InProcessGateway]) -> None:
    """A route that answers without reading a body of more than ten chunks left Hypercorn's
    reader waiting forever for room in the body queue; the connection's task never ended,
    and SIGTERM waited the whole shutdown_timeout (30 s) for it (gateway/hypercorn_patch.py).
    """
    gw = gateway_factory(None)
    chunks = b"".join(b"10\r\n%s\r\n" % (b"x" * 16) for _ in range(40)) + b"0\r\n\r\n"
    with socket.create_connection(("127.0.0.1", gw.http_port)) as s:
        s.sendall(b"POST /health/live HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                  + chunks)  # one write: Hypercorn reads all 40 chunks before the route runs
        assert s.recv(65536).startswith(b"HTTP/1.1 405")
    assert httpx.get(gw.http_url + "/health/live").status_code == 200
    started = time.monotonic()
    assert gw.stop(timeout=10) == 0
    assert time.monotonic() - started < 5, "shutdown waited for a stranded connection"
    assert "shutdown timeout reached" not in gw.logs()
