"""A provider's pool of API keys: which key serves the next request, and what each key's
answers say about it.

Requests spread over the keys by weight (smooth weighted round robin, so the shares are
exact, not just likely) among the keys that can serve now. A key cannot serve while it

- *rests*: the upstream answered it 429; it rests for the answer's ``Retry-After`` (else
  :data:`DEFAULT_REST` seconds), the others serve meanwhile;
- is *open*: its own breaker counts consecutive failures that are the key's (401 and 403:
  a revoked or wrong key); :data:`OPEN_AFTER` of them open it for ``open_timeout``
  seconds, then one request tries it (half-open): success closes it, failure reopens it.
  5xx, timeouts and broken connections are the provider's, not the key's: they leave
  the key alone and feed the provider's breaker in the resilience layer;
- is at its own ``rpm`` or ``tpm``: requests, and tokens reported back, over the last
  60 seconds.

When no key can serve, :meth:`KeyPool.acquire` raises a retryable
:class:`UpstreamRateLimitedError` whose ``retry_after`` is when the first key can, so the
router's retry and fallback logic applies. State is per process, changed only on the
event loop (no awaits inside), so it needs no lock. Keys are named by their ``name`` or
index (``#0``) everywhere; the value is only ever read to be sent.

Example::

    pool = KeyPool("openai", config.api_keys)
    lease = pool.acquire()
    ... send with lease.key.value ...
    pool.release(lease, status=429, retry_after=2.0)   # that key rests 2 s
"""

from __future__ import annotations

import enum
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gateway.config import KeyConfig
from gateway.errors import UpstreamRateLimitedError
from gateway.observability import metrics

__all__ = ["DEFAULT_REST", "OPEN_AFTER", "KeyPool", "KeySnapshot", "KeyState", "Lease",
           "PoolKey", "report_key_rest", "report_key_state"]

log = logging.getLogger("gateway.providers")

DEFAULT_REST = 1.0  # seconds a key rests after a 429 that names no Retry-After
OPEN_AFTER = 1  # consecutive 401/403 that open a key's breaker: one already says "revoked"
OPEN_TIMEOUT = 60.0  # seconds an open key waits before one request tries it again
WINDOW = 60.0  # the span of rpm and tpm
KEY_FAULTS = frozenset({401, 403})  # statuses that are the key's fault


class KeyState(enum.IntEnum):
    """A key's state; the values are the ``gateway_provider_key_state`` gauge's."""

    READY = 0
    RESTING = 1
    OPEN = 2


@dataclass(slots=True, eq=False)
class PoolKey:
    """One key and its mutable state (the value never printed)."""

    label: str
    value: str = field(repr=False)
    weight: float
    rpm: int
    tpm: int
    current: float = 0.0  # smooth weighted round robin's running weight
    rest_until: float = 0.0
    open_until: float = 0.0  # > 0 while the breaker is open or half-open
    probing: bool = False  # the half-open trial request is in flight
    failures: int = 0  # consecutive failures that are the key's
    requests: deque[float] = field(default_factory=deque)  # send times in the window
    tokens: deque[tuple[float, int]] = field(default_factory=deque)  # (time, tokens)
    token_sum: int = 0  # of ``tokens``
    state: KeyState = KeyState.READY  # last reported


@dataclass(slots=True, frozen=True)
class Lease:
    """A key handed out for one request; give it back with :meth:`KeyPool.release`."""

    key: PoolKey
    probe: bool  # the half-open trial of an open key


@dataclass(slots=True, frozen=True)
class KeySnapshot:
    """What the admin API shows of a key: never its value."""

    name: str
    index: int
    state: KeyState
    weight: float
    rpm: int
    tpm: int
    seconds_left: float  # until it may serve again (resting or open); 0 when ready
    consecutive_failures: int


# (provider, key label, state) for the gauge; (provider, key label) for the rest counter.
StateHook = Callable[[str, str, int], None]
RestHook = Callable[[str, str], None]


def _noop_state(provider: str, key: str, state: int) -> None:
    return None


def _noop_rest(provider: str, key: str) -> None:
    return None


def report_key_state(provider: str, key: str, state: int) -> None:
    """The state hook of the running gateway: the gauge and a log line (by name/index)."""
    metrics.key_state(provider, key, state)
    after = KeyState(state)
    log.log(logging.INFO if after is KeyState.READY else logging.WARNING,
            "provider key state", extra={"fields": {
                "provider": provider, "key": key, "state": after.name.lower()}})


def report_key_rest(provider: str, key: str) -> None:
    metrics.key_rested(provider, key)


class KeyPool:
    """The keys of provider ``provider``; ``clock`` is monotonic seconds (tests inject one)."""

    def __init__(self, provider: str, keys: Sequence[KeyConfig], *,
                 clock: Callable[[], float] = time.monotonic,
                 open_timeout: float = OPEN_TIMEOUT, open_after: int = OPEN_AFTER,
                 default_rest: float = DEFAULT_REST,
                 on_state: StateHook = _noop_state, on_rest: RestHook = _noop_rest):
        if not keys:
            raise ValueError("a key pool needs at least one key")
        self.provider = provider
        self.keys = [PoolKey(k.name or f"#{i}", k.key, float(k.weight), k.rpm, k.tpm)
                     for i, k in enumerate(keys)]
        self._clock = clock
        self._open_timeout = open_timeout
        self._open_after = open_after
        self._default_rest = default_rest
        self._on_state = on_state
        self._on_rest = on_rest

    # --- choosing ---------------------------------------------------------------------

    def acquire(self) -> Lease:
        """The next key to send with; raises :class:`UpstreamRateLimitedError` (retryable,
        ``retry_after`` set) when every key rests, is open or is at its limits."""
        now = self._clock()
        ready: list[PoolKey] = []
        for key in self.keys:
            self._refresh(key, now)
            if self._wait(key, now) == 0.0:
                ready.append(key)
        if not ready:
            wait = min(self._wait(key, now) for key in self.keys)
            raise UpstreamRateLimitedError(
                f"every key of {self.provider} is resting, open or at its limits",
                provider=self.provider, status=429, retryable=True,
                retry_after=max(wait, 0.001), error_type="keys_exhausted")
        # A key whose cooldown is over takes the next request as its trial (else a light
        # key could wait long for its turn); otherwise smooth weighted round robin.
        chosen = next((key for key in ready if key.open_until > 0.0), None)
        if chosen is None:
            total = sum(key.weight for key in ready)
            for key in ready:
                key.current += key.weight
            chosen = max(ready, key=lambda k: k.current)
            chosen.current -= total
        if chosen.rpm:
            chosen.requests.append(now)
        probe = chosen.open_until > 0.0
        chosen.probing = probe
        return Lease(chosen, probe)

    def _wait(self, key: PoolKey, now: float) -> float:
        """Seconds until ``key`` can serve (0: now)."""
        waits = [0.0]
        if key.rest_until > now:
            waits.append(key.rest_until - now)
        if key.open_until > 0.0:
            # Open until its time; then half-open, taking one trial at a time.
            waits.append(key.open_until - now if key.open_until > now
                         else (self._open_timeout if key.probing else 0.0))
        if key.rpm and len(key.requests) >= key.rpm:
            waits.append(key.requests[-key.rpm] + WINDOW - now)
        if key.tpm and key.tokens and key.token_sum >= key.tpm:
            waits.append(key.tokens[0][0] + WINDOW - now)
        return max(waits)

    def _refresh(self, key: PoolKey, now: float) -> None:
        """Drop what left the window; report a state that changed with time."""
        start = now - WINDOW
        while key.requests and key.requests[0] <= start:
            key.requests.popleft()
        while key.tokens and key.tokens[0][0] <= start:
            key.token_sum -= key.tokens.popleft()[1]
        self._report(key, now)

    # --- learning ---------------------------------------------------------------------

    def release(self, lease: Lease, *, status: int | None,
                retry_after: float | None = None) -> bool:
        """What the upstream answered with ``lease`` (``status`` None: no answer at all, or
        the request was abandoned). Returns whether the failure was the key's (429, 401,
        403), i.e. whether another key might do better."""
        key, now = lease.key, self._clock()
        if lease.probe:
            key.probing = False
        fault = False
        if status == 429:
            rest = self._default_rest if retry_after is None else retry_after
            key.rest_until = max(key.rest_until, now + rest)
            self._on_rest(self.provider, key.label)
            fault = True
        elif status in KEY_FAULTS:
            key.failures += 1
            if lease.probe or key.failures >= self._open_after:
                key.open_until = now + self._open_timeout
            fault = True
        elif status is not None and status < 500:
            # The key was accepted (a 400 is the request's fault): its breaker closes.
            key.failures = 0
            key.open_until = 0.0
        self._report(key, now)
        return fault

    def charge(self, lease: Lease, tokens: int) -> None:
        """Tokens the answer reported (known only once it is read), for the key's ``tpm``."""
        key = lease.key
        if tokens > 0 and key.tpm:
            key.tokens.append((self._clock(), tokens))
            key.token_sum += tokens

    def _state(self, key: PoolKey, now: float) -> KeyState:
        if key.open_until > 0.0:
            return KeyState.OPEN
        if key.rest_until > now:
            return KeyState.RESTING
        return KeyState.READY

    def _report(self, key: PoolKey, now: float) -> None:
        state = self._state(key, now)
        if state is not key.state:
            key.state = state
            self._on_state(self.provider, key.label, int(state))

    # --- showing ----------------------------------------------------------------------

    def can_serve(self) -> bool:
        """Whether some key could serve now (another try after a key's failure)."""
        now = self._clock()
        return any(self._wait(key, now) == 0.0 for key in self.keys)

    def snapshot(self) -> list[KeySnapshot]:
        now = self._clock()
        out = []
        for i, key in enumerate(self.keys):
            self._refresh(key, now)
            out.append(KeySnapshot(key.label, i, key.state, key.weight, key.rpm, key.tpm,
                                   round(self._wait(key, now), 3), key.failures))
        return out

    def secrets(self) -> tuple[str, ...]:
        """Every key's value, for redaction."""
        return tuple(key.value for key in self.keys)
