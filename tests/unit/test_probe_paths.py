"""Probes and scrapes (health, readiness, the configured metrics path, exactly) neither hold
the drain open nor make spans; every other path does both."""

from __future__ import annotations

import pytest

from gateway.asgi import Message, Receive, Scope, Send
from gateway.facade.app import GuardMiddleware
from gateway.facade.tracing import RouteNames, TracingMiddleware
from gateway.lifecycle import DrainState

PROBES = frozenset(("/health", "/ready", "/internal/scrape"))


def scope(path: str) -> Scope:
    return {"type": "http", "method": "GET", "path": path, "headers": [],
            "http_version": "1.1"}


async def nothing() -> Message:
    return {"type": "http.disconnect"}


async def drop(message: Message) -> None:
    return None


@pytest.mark.asyncio
@pytest.mark.parametrize(("path", "counted"), [
    ("/internal/scrape", False), ("/health", False), ("/ready", False),
    ("/metrics", True),  # not this gateway's metrics path
    ("/healthz", True), ("/internal/scrape/x", True), ("/v1/models", True)])
async def test_only_probe_paths_leave_the_drain_alone(path: str, counted: bool) -> None:
    drain = DrainState()
    seen: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(drain.in_flight.count)

    guard = GuardMiddleware(app, drain, 16 * 1024, uncounted=PROBES)
    await guard(scope(path), nothing, drop)
    assert seen == [1 if counted else 0]
    assert drain.in_flight.count == 0


@pytest.mark.asyncio
async def test_probe_paths_are_not_traced(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[str] = []

    class Tracer:
        def start_span(self, name: str, **_: object) -> object:
            started.append(name)
            raise RuntimeError("stop here: the span is all this test looks at")

    monkeypatch.setattr("gateway.facade.tracing._tracer", Tracer())

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        return None

    traced = TracingMiddleware(app, RouteNames(["/v1/models"]), untraced=PROBES)
    await traced(scope("/internal/scrape"), nothing, drop)
    await traced(scope("/health"), nothing, drop)
    assert started == []
    with pytest.raises(RuntimeError, match="stop here"):
        await traced(scope("/v1/models"), nothing, drop)
    assert started == ["GET /v1/models"]
