"""A small load driver: mixed traffic against a gateway, every outcome classified, and
everything the gateway acknowledged kept so a test can check afterwards that none of it
was lost.

Workers (``concurrency`` of them) loop until the duration is over or :meth:`Load.stop`
is called, each picking a kind of request by weight from ``mix``:

==================  =============================================================
``chat``            POST /v1/chat/completions
``stream``          the same with ``stream: true`` (SSE; must end ``data: [DONE]``
                    or with an error event)
``embed``           POST /v1/embeddings
``response``        POST /v1/responses with ``store: true``; half of them continue the
                    worker's previous stored response (``previous_response_id``), so a
                    stored response that went missing shows up as a 404
``response_stream`` the same, streamed (must end ``response.completed`` or ``error``)
``admin``           POST /admin/tenants then POST /admin/tenants/{id}/keys
==================  =============================================================

Each request is one :class:`Outcome` whose class (:data:`CLASSES`) is what a test
asserts on. A request the client gave up on after ``timeout`` seconds is ``timeout``:
with the gateway's own timeouts far below it, that is a hang. A stream whose HTTP
body ended cleanly without its terminator (``[DONE]``, ``response.completed``) or an
error event is ``stream_cut``: a contract violation in every test. A connection
dropped mid-answer is ``transport``.

Example::

    load = Load(gw.http_url, model="primary", concurrency=8)
    task = asyncio.create_task(load.run(duration=10))
    ...  # inject faults
    result = await task
    assert not result.unexpected({"2xx"}), result.summary()
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

__all__ = ["CLASSES", "Load", "LoadResult", "Outcome", "StoredAck", "TenantAck", "classify"]

CLASSES = ("2xx", "429", "502", "503", "504", "4xx", "5xx", "transport", "timeout",
           "stream_error", "stream_cut")
KINDS = ("chat", "stream", "embed", "response", "response_stream", "admin")
CHAIN_TURNS = 4  # a worker's conversation restarts after this many turns (bounded history)


def classify(status: int) -> str:
    """The class of an HTTP status (streams refine a 200 by how they ended)."""
    if 200 <= status < 300:
        return "2xx"
    if status in (429, 502, 503, 504):
        return str(status)
    return "4xx" if 400 <= status < 500 else "5xx"


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str
    cls: str
    status: int  # 0 when no HTTP status arrived
    started: float  # time.monotonic()
    ended: float
    request_id: str
    detail: str = ""  # the error code, or the exception's class
    provider: str = ""  # x_gateway.provider of a non-stream answer


@dataclass(frozen=True, slots=True)
class StoredAck:
    """A response the gateway answered 200 (or completed, streamed) with ``store: true``."""

    response_id: str
    api_key: str
    ended: float


@dataclass(frozen=True, slots=True)
class TenantAck:
    """A tenant created (201) and, when ``key_id`` is set, a key for it created (201)."""

    tenant_id: str
    key_id: str
    secret: str
    ended: float


@dataclass
class LoadResult:
    outcomes: list[Outcome] = field(default_factory=list)
    stored: list[StoredAck] = field(default_factory=list)
    tenants: list[TenantAck] = field(default_factory=list)

    def where(self, keep: Callable[[Outcome], bool]) -> LoadResult:
        """The outcomes ``keep`` accepts (acknowledgements are kept whole)."""
        return LoadResult([o for o in self.outcomes if keep(o)], self.stored, self.tenants)

    def started_after(self, t: float) -> LoadResult:
        return self.where(lambda o: o.started >= t)

    def ended_before(self, t: float) -> LoadResult:
        return self.where(lambda o: o.ended < t)

    def overlapping(self, t0: float, t1: float) -> LoadResult:
        return self.where(lambda o: o.started < t1 and o.ended >= t0)

    def counts(self) -> Counter[str]:
        return Counter(o.cls for o in self.outcomes)

    @property
    def served(self) -> int:
        return sum(1 for o in self.outcomes if o.cls == "2xx")

    def errors(self) -> dict[str, int]:
        """Outcomes by class, 2xx left out: the scorecard's ``errors``."""
        return {cls: n for cls, n in self.counts().items() if cls != "2xx"}

    def unexpected(self, allowed: Iterable[str]) -> list[Outcome]:
        allowed = set(allowed)
        return [o for o in self.outcomes if o.cls not in allowed]

    def summary(self, limit: int = 8) -> str:
        """Counts by kind and class, and the first outcomes that were not 2xx."""
        table = Counter((o.kind, o.cls) for o in self.outcomes)
        lines = [f"{len(self.outcomes)} requests: " + ", ".join(
            f"{kind}/{cls}={n}" for (kind, cls), n in sorted(table.items()))]
        failed = [o for o in self.outcomes if o.cls != "2xx"][:limit]
        lines += [f"  {o.kind} {o.cls} status={o.status} {o.detail} at+{o.ended - o.started:.2f}s"
                  f" id={o.request_id}" for o in failed]
        return "\n".join(lines)


class _Answer(Exception):
    """Ends a request early with its class (raised inside a request coroutine)."""

    def __init__(self, cls: str, status: int, detail: str = ""):
        super().__init__(detail)
        self.cls, self.status, self.detail = cls, status, detail


def _error_code(body: bytes) -> str:
    try:
        error = orjson.loads(body).get("error") or {}
        return str(error.get("code") or error.get("type") or "")
    except (orjson.JSONDecodeError, AttributeError):
        return "unparseable error body"


@dataclass
class _Worker:
    """One worker's conversation chain for ``response`` requests."""

    rng: random.Random
    last_response: str = ""
    turns: int = 0


class Load:
    """Mixed traffic against one gateway; see the module docstring."""

    def __init__(self, base_url: str, *, model: str = "mock-1", embed_model: str | None = None,
                 mix: Mapping[str, int] | None = None, concurrency: int = 8,
                 api_key: str = "load-test", admin_key: str = "", timeout: float = 30.0,
                 cacheable: bool = False, fresh_connections: bool = False,
                 headers: Mapping[str, str] | None = None, seed: int = 0):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.embed_model = embed_model or model
        self.mix = dict(mix or {"chat": 4, "stream": 3, "embed": 1})
        unknown = set(self.mix) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown kinds of request: {sorted(unknown)}")
        if "admin" in self.mix and not admin_key:
            raise ValueError("admin requests need admin_key")
        self.concurrency = concurrency
        self.api_key = api_key
        self.admin_key = admin_key
        self.timeout = timeout
        self.cacheable = cacheable
        self.fresh_connections = fresh_connections
        self.headers = dict(headers or {})
        self.seed = seed
        self.result = LoadResult()
        self._stop = asyncio.Event()
        self._sent = 0

    def stop(self) -> None:
        """End the run: workers finish the request they are in and return."""
        self._stop.set()

    @property
    def sent(self) -> int:
        return self._sent

    async def run(self, duration: float) -> LoadResult:
        """Send traffic for ``duration`` seconds (or until :meth:`stop`); the result."""
        self._stop.clear()
        connector = aiohttp.TCPConnector(limit=0, force_close=self.fresh_connections)
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            deadline = time.monotonic() + duration
            workers = [asyncio.create_task(self._work(session, i, deadline))
                       for i in range(self.concurrency)]
            await asyncio.gather(*workers)
        return self.result

    async def _work(self, session: aiohttp.ClientSession, index: int, deadline: float) -> None:
        worker = _Worker(random.Random(self.seed * 1000 + index))
        kinds, weights = list(self.mix), list(self.mix.values())
        while not self._stop.is_set() and time.monotonic() < deadline:
            kind = worker.rng.choices(kinds, weights)[0]
            await self._one(session, worker, kind)

    async def _one(self, session: aiohttp.ClientSession, worker: _Worker, kind: str) -> None:
        self._sent += 1
        request_id = f"load-{self.seed}-{self._sent}"
        started = time.monotonic()
        provider = ""
        try:
            provider = await getattr(self, "_" + kind)(session, worker, request_id)
            cls, status, detail = "2xx", 200, ""
        except _Answer as answer:
            cls, status, detail = answer.cls, answer.status, answer.detail
        except TimeoutError:
            cls, status, detail = "timeout", 0, f"no answer within {self.timeout}s"
        except (aiohttp.ClientError, OSError) as exc:
            cls, status, detail = "transport", 0, type(exc).__name__
        self.result.outcomes.append(Outcome(kind, cls, status, started, time.monotonic(),
                                            request_id, detail, provider))

    def _headers(self, request_id: str, key: str | None = None) -> dict[str, str]:
        return {**self.headers, "Authorization": f"Bearer {key or self.api_key}",
                "X-Request-ID": request_id}

    async def _post(self, session: aiohttp.ClientSession, path: str, body: Any,
                    request_id: str, key: str | None = None) -> tuple[int, bytes]:
        async with session.post(self.base_url + path, data=orjson.dumps(body),
                                headers={**self._headers(request_id, key),
                                         "Content-Type": "application/json"}) as r:
            return r.status, await r.read()

    def _unary(self, status: int, raw: bytes) -> Any:
        if not 200 <= status < 300:
            raise _Answer(classify(status), status, _error_code(raw))
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise _Answer("5xx", status, "a 2xx body that is not JSON") from None

    def _messages(self, worker: _Worker) -> dict[str, Any]:
        if self.cacheable and worker.rng.random() < 0.5:  # deterministic: the cache answers
            n = worker.rng.randrange(5)
            return {"messages": [{"role": "user", "content": f"cached {n}"}], "temperature": 0}
        return {"messages": [{"role": "user", "content": f"hello {worker.rng.random()}"}]}

    async def _chat(self, session: aiohttp.ClientSession, worker: _Worker,
                    request_id: str) -> str:
        body = {"model": self.model, **self._messages(worker)}
        answer = self._unary(*await self._post(session, "/v1/chat/completions", body,
                                               request_id))
        if not answer.get("choices"):
            raise _Answer("5xx", 200, "a chat completion without choices")
        return str((answer.get("x_gateway") or {}).get("provider", ""))

    async def _embed(self, session: aiohttp.ClientSession, worker: _Worker,
                     request_id: str) -> str:
        body = {"model": self.embed_model, "input": ["one", f"two {worker.rng.random()}"]}
        answer = self._unary(*await self._post(session, "/v1/embeddings", body, request_id))
        if len(answer.get("data") or ()) != 2:
            raise _Answer("5xx", 200, "embeddings without one vector per input")
        return str((answer.get("x_gateway") or {}).get("provider", ""))

    async def _stream(self, session: aiohttp.ClientSession, worker: _Worker,
                      request_id: str) -> str:
        body = {"model": self.model, "stream": True, "stream_options": {"include_usage": True},
                **self._messages(worker)}
        async with session.post(self.base_url + "/v1/chat/completions", json=body,
                                headers=self._headers(request_id)) as r:
            if r.status != 200:
                raise _Answer(classify(r.status), r.status, _error_code(await r.read()))
            async for raw in r.content:
                line = raw.strip()
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    return ""
                if b'"error"' in data and "error" in orjson.loads(data):
                    raise _Answer("stream_error", 200, _error_code(data))
        raise _Answer("stream_cut", 200, "the stream ended without [DONE] or an error event")

    def _response_body(self, worker: _Worker, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "input": f"turn {worker.turns}",
                                "store": True, "stream": stream}
        if worker.last_response and worker.turns < CHAIN_TURNS and worker.rng.random() < 0.5:
            body["previous_response_id"] = worker.last_response
            worker.turns += 1
        else:
            worker.turns = 0
        return body

    def _stored(self, worker: _Worker, response_id: str) -> None:
        if not response_id.startswith("resp_"):
            raise _Answer("5xx", 200, f"an unexpected response id {response_id!r}")
        worker.last_response = response_id
        self.result.stored.append(StoredAck(response_id, self.api_key, time.monotonic()))

    async def _response(self, session: aiohttp.ClientSession, worker: _Worker,
                        request_id: str) -> str:
        answer = self._unary(*await self._post(
            session, "/v1/responses", self._response_body(worker, False), request_id))
        if answer.get("status") != "completed":
            raise _Answer("5xx", 200, f"a response {answer.get('status')}")
        self._stored(worker, str(answer.get("id", "")))
        return str((answer.get("x_gateway") or {}).get("provider", ""))

    async def _response_stream(self, session: aiohttp.ClientSession, worker: _Worker,
                               request_id: str) -> str:
        body = self._response_body(worker, True)
        async with session.post(self.base_url + "/v1/responses", json=body,
                                headers=self._headers(request_id)) as r:
            if r.status != 200:
                raise _Answer(classify(r.status), r.status, _error_code(await r.read()))
            event, completed = "", ""
            async for raw in r.content:
                line = raw.strip()
                if line.startswith(b"event:"):
                    event = line[6:].strip().decode()
                elif line.startswith(b"data:"):
                    data = orjson.loads(line[5:].strip())
                    if event == "error":
                        raise _Answer("stream_error", 200, str(data.get("code", "")))
                    if event == "response.completed":
                        completed = str(data["response"]["id"])
        if not completed:
            raise _Answer("stream_cut", 200, "the stream ended without response.completed "
                                             "or an error event")
        self._stored(worker, completed)
        return ""

    async def _admin(self, session: aiohttp.ClientSession, worker: _Worker,
                     request_id: str) -> str:
        name = f"load-{self.seed}-{worker.rng.getrandbits(48):012x}"
        status, raw = await self._post(session, "/admin/tenants", {"name": name}, request_id,
                                       self.admin_key)
        tenant_id = str(self._unary(status, raw)["tenant"]["id"])
        try:
            status, raw = await self._post(session, f"/admin/tenants/{tenant_id}/keys",
                                           {"name": "load"}, request_id + "-key", self.admin_key)
            created = self._unary(status, raw)
        except (_Answer, aiohttp.ClientError, OSError, TimeoutError):
            # The tenant was acknowledged even though its key was not.
            self.result.tenants.append(TenantAck(tenant_id, "", "", time.monotonic()))
            raise
        self.result.tenants.append(TenantAck(tenant_id, str(created["api_key"]["id"]),
                                             str(created["secret"]), time.monotonic()))
        return ""
