"""Signed-in sessions of the admin UI, kept on the server: the cookie holds a random id,
never the credential.

A :class:`Session` holds the credential its admin signed in with (sent as the admin API
call's ``Authorization: Bearer`` credential), a CSRF token of its own, and a one-shot
notice for the next page. :class:`MemorySessions` keeps them in this process; one idle for
``idle`` seconds is gone, and so is one past its ``lifetime`` (an OIDC access token's).
A store shared by replicas (Redis) would implement :class:`Sessions` too.

Example::

    sessions = MemorySessions(idle=8 * 3600)
    session = sessions.create("adm-key", how="admin key")
    assert sessions.get(session.id) is session
    sessions.drop(session.id)
"""

from __future__ import annotations

import hmac
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["MAX_SESSIONS", "MemorySessions", "Reveal", "Session", "Sessions", "new_token",
           "tokens_match"]

MAX_SESSIONS = 10_000  # the oldest idle ones go first past this


def new_token() -> str:
    """A random, URL-safe token of 256 bits (session ids, CSRF tokens)."""
    return secrets.token_urlsafe(32)


def tokens_match(expected: str, given: str) -> bool:
    """``given`` is ``expected``, compared in constant time; an empty one never matches."""
    return bool(expected) and bool(given) and hmac.compare_digest(
        expected.encode(), given.encode())


@dataclass(frozen=True, slots=True)
class Reveal:
    """A new key's secret, held for the one page that shows it."""

    tenant_id: str
    key_name: str
    secret: str = field(repr=False)


@dataclass(slots=True, eq=False)
class Session:
    """One signed-in admin. ``credential`` is what the admin API is called with: the admin
    key (``how="admin key"``) or the issuer's access token (``how="oidc"``), which ends
    the session at ``ends`` (clock time) when it expires."""

    id: str
    credential: str = field(repr=False)
    how: str
    csrf: str = field(default_factory=new_token, repr=False)
    seen: float = 0.0
    ends: float = math.inf
    notice: str = ""  # shown once, on the next page (after a redirect)
    reveal: Reveal | None = None  # a new key's secret, shown once, on the next page

    def take_notice(self) -> str:
        notice, self.notice = self.notice, ""
        return notice


class Sessions(Protocol):
    """Where sessions live: this process (:class:`MemorySessions`) or, later, a store the
    replicas share."""

    def create(self, credential: str, *, how: str, lifetime: float = math.inf) -> Session:
        """A new session, gone after ``lifetime`` seconds even if never idle."""
        ...

    def get(self, session_id: str) -> Session | None:
        """The live session of that id (its idle time starts again), or None."""
        ...

    def drop(self, session_id: str) -> None: ...


class MemorySessions:
    """Sessions in this process, the least recently seen first in line to go."""

    def __init__(self, idle: float, *, limit: int = MAX_SESSIONS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._idle = idle
        self._limit = limit
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, credential: str, *, how: str, lifetime: float = math.inf) -> Session:
        self._expire()
        while len(self._sessions) >= self._limit:
            self._sessions.popitem(last=False)
        now = self._clock()
        session = Session(new_token(), credential, how, seen=now, ends=now + lifetime)
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str) -> Session | None:
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = self._clock()
        if now - session.seen >= self._idle or now >= session.ends:
            del self._sessions[session_id]
            return None
        session.seen = now
        self._sessions.move_to_end(session_id)
        return session

    def drop(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def _expire(self) -> None:
        """Drop the sessions idle too long (the oldest are first in line)."""
        cutoff = self._clock() - self._idle
        while self._sessions:
            oldest = next(iter(self._sessions.values()))
            if oldest.seen > cutoff:
                break
            self._sessions.popitem(last=False)
