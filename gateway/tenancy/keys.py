"""API key secrets: ``sk-`` + 43 random URL-safe characters (256 bits).

Only the SHA-256 of a secret is stored. Lookup is by that hash (an index, so the
secret is never compared character by character); static keys from the config
are compared in constant time.

Example::

    secret, key_hash, prefix = new_secret()   # "sk-Yh3...", "9f2c...", "sk-Yh3q"
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

__all__ = ["hash_secret", "matches_any", "new_secret"]

PREFIX = "sk-"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> tuple[str, str, str]:
    """``(secret, its SHA-256 hex, a display prefix)``."""
    secret = PREFIX + secrets.token_urlsafe(32)
    return secret, hash_secret(secret), secret[:7]


def matches_any(token: str, candidates: Sequence[bytes]) -> bool:
    """Constant-time membership: compares against every candidate, always."""
    given = token.encode()
    found = False
    for candidate in candidates:
        found |= hmac.compare_digest(given, candidate)
    return found
