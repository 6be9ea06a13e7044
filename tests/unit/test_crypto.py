"""Credential encryption: AES-256-GCM tokens bound to their tenant and provider, strict key
loading that never echoes the key, and rotation through a list of keys."""

from __future__ import annotations

import base64
import os

import pytest

from gateway.tenancy.crypto import (
    CredentialCipher,
    DecryptionError,
    KeyFormatError,
    credential_context,
    key_id,
    load_key,
)

CTX = credential_context("ten_a", "openai")


def new_key() -> bytes:
    return os.urandom(32)


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def test_round_trip_and_token_shape() -> None:
    key = new_key()
    cipher = CredentialCipher(key)
    token = cipher.encrypt("sk-live-secret ✓", context=CTX)
    assert token.startswith("v1:")
    assert "sk-live-secret" not in token
    raw = base64.b64decode(token[3:])
    assert raw[:4] == key_id(key)
    assert len(raw) == 4 + 12 + len("sk-live-secret ✓".encode()) + 16
    assert cipher.decrypt(token, context=CTX) == "sk-live-secret ✓"
    assert cipher.decrypt(cipher.encrypt("", context=CTX), context=CTX) == ""


def test_every_token_has_its_own_nonce() -> None:
    cipher = CredentialCipher(new_key())
    tokens = [cipher.encrypt("same", context=CTX) for _ in range(200)]
    assert len(set(tokens)) == 200
    assert len({base64.b64decode(t[3:])[4:16] for t in tokens}) == 200


@pytest.mark.parametrize("other", [credential_context("ten_b", "openai"),
                                   credential_context("ten_a", "anthropic")])
def test_a_token_does_not_open_in_another_context(other: str) -> None:
    cipher = CredentialCipher(new_key())
    token = cipher.encrypt("sk-1", context=CTX)
    with pytest.raises(DecryptionError, match="altered or sealed for another tenant"):
        cipher.decrypt(token, context=other)


def test_an_empty_context_is_refused() -> None:
    with pytest.raises(ValueError, match="context"):
        CredentialCipher(new_key()).encrypt("sk-1", context="")


def test_tampering_is_detected() -> None:
    cipher = CredentialCipher(new_key())
    raw = bytearray(base64.b64decode(cipher.encrypt("sk-1", context=CTX)[3:]))
    for index in (4, 16, len(raw) - 1):  # nonce, ciphertext, tag
        altered = bytearray(raw)
        altered[index] ^= 0x01
        with pytest.raises(DecryptionError):
            cipher.decrypt("v1:" + base64.b64encode(altered).decode(), context=CTX)


@pytest.mark.parametrize(("token", "message"), [
    ("sk-plaintext", "expected a 'v1:' token"),
    ("v2:AAAA", "expected a 'v1:' token"),
    ("v1:not base64!", "not base64"),
    ("v1:" + base64.b64encode(b"short").decode(), "too short"),
])
def test_malformed_tokens_are_named(token: str, message: str) -> None:
    with pytest.raises(DecryptionError, match=message):
        CredentialCipher(new_key()).decrypt(token, context=CTX)


def test_a_token_under_an_unknown_key_names_the_key_id() -> None:
    old = new_key()
    token = CredentialCipher(old).encrypt("sk-1", context=CTX)
    with pytest.raises(DecryptionError, match=key_id(old).hex()):
        CredentialCipher(new_key()).decrypt(token, context=CTX)


def test_load_key_accepts_standard_and_url_safe_base64() -> None:
    key = bytes(range(200, 232))  # encodes with + and / in standard base64
    assert load_key(b64(key)) == key
    assert load_key("  " + b64(key) + "\n") == key
    assert load_key(base64.urlsafe_b64encode(key).decode()) == key


@pytest.mark.parametrize(("value", "message"), [
    ("", "ENCRYPTION_KEY is empty"),
    ("   ", "ENCRYPTION_KEY is empty"),
    ("this is not base64 at all!!", "ENCRYPTION_KEY is not valid base64"),
    ("c2VjcmV0LXZhbHV", "ENCRYPTION_KEY is not valid base64"),  # padding missing
    ("clé-secrète-non-ascii", "ENCRYPTION_KEY is not valid base64"),
    (b64(b"sixteen-byte-key"), "decodes to 16 bytes, AES-256 needs exactly 32"),
    (b64(bytes(range(64))), "decodes to 64 bytes, AES-256 needs exactly 32"),
])
def test_malformed_keys_are_refused_without_echoing_them(value: str, message: str) -> None:
    with pytest.raises(KeyFormatError, match=message) as caught:
        load_key(value)
    text = str(caught.value)
    assert "openssl rand -base64 32" in text
    if value.strip():
        assert value.strip() not in text
        assert value.strip()[:8] not in text
    # No chained decoder error either: its message may quote the input.
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__


def test_from_setting_names_the_bad_key_of_a_list() -> None:
    good = b64(new_key())
    with pytest.raises(KeyFormatError, match=r"ENCRYPTION_KEY \(key 2 of 2\) decodes to 3") as c:
        CredentialCipher.from_setting(f"{good},{b64(b'abc')}")
    assert good not in str(c.value)
    with pytest.raises(KeyFormatError, match="ENCRYPTION_KEY is empty"):
        CredentialCipher.from_setting(" , ")


def test_raw_keys_of_the_wrong_size_are_refused() -> None:
    with pytest.raises(KeyFormatError, match="key 2 is 31 bytes"):
        CredentialCipher(new_key(), os.urandom(31))


def test_rotation_reads_old_tokens_and_reencrypts_under_the_newest_key() -> None:
    old, new = new_key(), new_key()
    before = CredentialCipher.from_setting(b64(old))
    token = before.encrypt("sk-old", context=CTX)

    during = CredentialCipher.from_setting(f"{b64(new)}, {b64(old)}")
    assert during.key_count == 2
    assert during.decrypt(token, context=CTX) == "sk-old"
    assert not during.is_current(token)
    fresh = during.encrypt("sk-new", context=CTX)
    assert during.is_current(fresh)
    assert base64.b64decode(fresh[3:])[:4] == key_id(new)

    resealed = during.reencrypt(token, CTX)
    assert resealed != token and during.is_current(resealed)
    assert during.decrypt(resealed, context=CTX) == "sk-old"
    with pytest.raises(DecryptionError):
        during.reencrypt(token, credential_context("ten_b", "openai"))

    after = CredentialCipher(new)  # the old key is gone
    assert after.decrypt(resealed, context=CTX) == "sk-old"
    with pytest.raises(DecryptionError, match="not in ENCRYPTION_KEY"):
        after.decrypt(token, context=CTX)


def test_the_same_key_listed_twice_counts_once() -> None:
    key = new_key()
    cipher = CredentialCipher(key, key)
    assert cipher.key_count == 1
    assert cipher.decrypt(cipher.encrypt("x", context=CTX), context=CTX) == "x"
