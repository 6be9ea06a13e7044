"""Tenants' provider credentials, encrypted at rest with AES-256-GCM under ``ENCRYPTION_KEY``.

A credential is sealed with a fresh random 96-bit nonce and bound to a *context*
(``"<tenant id>/<provider>"``, see :func:`credential_context`) as associated data, so a
ciphertext copied onto another tenant or another provider does not decrypt. The token is
text, safe to keep in JSON::

    "v1:" + base64(key_id[4] || nonce[12] || ciphertext || tag[16])

where ``key_id`` is the first 4 bytes of the SHA-256 of the key that sealed it, so a
cipher holding several keys knows which one opens a token without trying them all.

``ENCRYPTION_KEY`` is 32 random bytes in base64, or several such keys separated by commas
while a key is rotated (newest first: new values are sealed with it, any listed key opens old
ones); docs/tenancy.md gives the rotation steps.

Example::

    cipher = CredentialCipher.from_setting(settings.instance.encryption_key)
    token = cipher.encrypt("sk-live-...", context=credential_context(tenant.id, "openai"))
    cipher.decrypt(token, context=credential_context(tenant.id, "openai"))  # "sk-live-..."
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # loaded when a cipher is built: a gateway without a key never needs it
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "CredentialCipher",
    "CredentialError",
    "DecryptionError",
    "KeyFormatError",
    "credential_context",
    "key_id",
    "load_key",
]

KEY_SIZE = 32
_VERSION = "v1"
_PREFIX = _VERSION + ":"
_KEY_ID_SIZE = 4
_NONCE_SIZE = 12
_TAG_SIZE = 16
_HINT = "generate one with `openssl rand -base64 32`"


class CredentialError(Exception):
    """A credential key or token is unusable."""


class KeyFormatError(CredentialError, ValueError):
    """``ENCRYPTION_KEY`` is malformed. The message names the problem, never the key."""


class DecryptionError(CredentialError):
    """A token does not open: altered, sealed for another context, or under an unknown key."""


def credential_context(tenant_id: str, provider: str) -> str:
    """The associated data that binds a credential to its tenant and provider."""
    return f"{tenant_id}/{provider}"


def key_id(key: bytes) -> bytes:
    """The 4 bytes that name a key inside its tokens: the start of its SHA-256."""
    return hashlib.sha256(key).digest()[:_KEY_ID_SIZE]


def load_key(value: str, *, name: str = "ENCRYPTION_KEY") -> bytes:
    """Decode one base64 key of exactly 32 bytes; raise :class:`KeyFormatError` otherwise.

    Standard and URL-safe base64 are accepted, padding required.
    """
    text = value.strip()
    if not text:
        raise KeyFormatError(f"{name} is empty; {_HINT}")
    alphabet = b"-_" if ("-" in text or "_" in text) else b"+/"
    try:
        key = base64.b64decode(text.encode("ascii"), altchars=alphabet, validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        # The decoder's message may quote the input: say what is wrong, not what it was.
        raise KeyFormatError(f"{name} is not valid base64; {_HINT}") from None
    if len(key) != KEY_SIZE:
        raise KeyFormatError(
            f"{name} decodes to {len(key)} bytes, AES-256 needs exactly {KEY_SIZE}; {_HINT}"
        )
    return key


class CredentialCipher:
    """Seals and opens credentials; the first key seals, every key opens.

    Build it from raw keys (``CredentialCipher(new, old)``) or from the setting
    (:meth:`from_setting`). Thread-safe and cheap to share.
    """

    def __init__(self, key: bytes, *previous: bytes):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        keys = (key, *previous)
        for i, k in enumerate(keys, 1):
            if len(k) != KEY_SIZE:
                raise KeyFormatError(f"key {i} is {len(k)} bytes, AES-256 needs {KEY_SIZE}")
        self._current_id = key_id(key)
        self._current = AESGCM(key)
        self._by_id: dict[bytes, list[AESGCM]] = {}
        seen: set[bytes] = set()
        for k in keys:
            if k in seen:
                continue
            seen.add(k)
            self._by_id.setdefault(key_id(k), []).append(AESGCM(k))

    @classmethod
    def from_setting(cls, value: str, *, name: str = "ENCRYPTION_KEY") -> CredentialCipher:
        """``"<key>"`` or ``"<new>,<old>,..."`` (newest first), each base64 of 32 bytes."""
        parts = [p for p in (p.strip() for p in value.split(",")) if p]
        if not parts:
            raise KeyFormatError(f"{name} is empty; {_HINT}")
        if len(parts) == 1:
            return cls(load_key(parts[0], name=name))
        keys = [load_key(p, name=f"{name} (key {i} of {len(parts)})")
                for i, p in enumerate(parts, 1)]
        return cls(*keys)

    @property
    def key_count(self) -> int:
        return sum(len(ciphers) for ciphers in self._by_id.values())

    def encrypt(self, plaintext: str, *, context: str) -> str:
        """Seal ``plaintext`` under the newest key, bound to ``context``."""
        nonce = os.urandom(_NONCE_SIZE)
        sealed = self._current.encrypt(nonce, plaintext.encode("utf-8"), _aad(context))
        return _PREFIX + base64.b64encode(self._current_id + nonce + sealed).decode("ascii")

    def decrypt(self, token: str, *, context: str) -> str:
        """Open a token sealed for ``context``; raise :class:`DecryptionError` otherwise."""
        kid, nonce, sealed = _split(token)
        ciphers = self._by_id.get(kid)
        if not ciphers:
            raise DecryptionError(
                f"the credential for {context!r} was sealed with key {kid.hex()}, which is not "
                "in ENCRYPTION_KEY (add the old key back after the new one to read it)"
            )
        from cryptography.exceptions import InvalidTag

        for cipher in ciphers:
            try:
                plain = cipher.decrypt(nonce, sealed, _aad(context))
            except InvalidTag:
                continue
            return plain.decode("utf-8")
        raise DecryptionError(
            f"the credential for {context!r} does not open: it was altered or sealed for "
            "another tenant or provider"
        )

    def is_current(self, token: str) -> bool:
        """Whether ``token`` is sealed under the newest key (rotation needs nothing more)."""
        return _split(token)[0] == self._current_id

    def reencrypt(self, token: str, context: str) -> str:
        """Open ``token`` with whichever key sealed it and seal it again under the newest."""
        return self.encrypt(self.decrypt(token, context=context), context=context)


def _aad(context: str) -> bytes:
    if not context:
        raise ValueError("a credential needs a context (see credential_context)")
    return f"{_VERSION}\x00{context}".encode()


def _split(token: str) -> tuple[bytes, bytes, bytes]:
    if not token.startswith(_PREFIX):
        raise DecryptionError(f"not a sealed credential: expected a {_PREFIX!r} token")
    try:
        raw = base64.b64decode(token[len(_PREFIX):].encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise DecryptionError("not a sealed credential: the token is not base64") from None
    if len(raw) < _KEY_ID_SIZE + _NONCE_SIZE + _TAG_SIZE:
        raise DecryptionError("not a sealed credential: the token is too short")
    body = raw[_KEY_ID_SIZE:]
    return raw[:_KEY_ID_SIZE], body[:_NONCE_SIZE], body[_NONCE_SIZE:]
