"""The shape of a JWT, without verifying anything: enough for the auth layer to tell an
OIDC token from an ``sk-...`` API key. Kept apart from :mod:`gateway.tenancy.oidc` so that
a gateway without OIDC never loads PyJWT and cryptography (~20 MB of memory)."""

from __future__ import annotations

import binascii
import re
from base64 import urlsafe_b64decode
from typing import Any

import orjson

__all__ = ["jose_header", "looks_like_jwt"]

_B64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")


def looks_like_jwt(token: str) -> bool:
    """True for a compact JWS (``header.payload.signature``, header JSON naming an ``alg``),
    so the auth layer can tell it from an ``sk-...`` API key. Nothing is verified."""
    header = jose_header(token)
    return header is not None and isinstance(header.get("alg"), str)


def jose_header(token: str) -> dict[str, Any] | None:
    """The unverified JOSE header of a three-segment token, or None. (PyJWT's own parse
    costs ~150 us a token; this one is a regex and a JSON load.)"""
    if token.count(".") != 2:
        return None
    header, payload, signature = token.split(".")
    if not header or not payload or not all(map(_B64URL.fullmatch, (header, payload, signature))):
        return None
    try:
        decoded = orjson.loads(urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (binascii.Error, ValueError):
        return None
    return decoded if isinstance(decoded, dict) else None
