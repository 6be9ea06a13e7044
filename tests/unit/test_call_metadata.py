"""The interceptor reads a call's metadata once: the request id, the credential and the
client address, with the same precedence the gateway has always had."""

from __future__ import annotations

import pytest

from gateway.facade.calls import client_timeout
from gateway.facade.errors import ApiError
from gateway.service.interceptors import CallMetadata, read_metadata


def test_a_bearer_token_wins_over_an_api_key_in_either_order() -> None:
    for metadata in ((("x-api-key", "sk-b"), ("authorization", "Bearer sk-a")),
                     (("authorization", "Bearer sk-a"), ("x-api-key", "sk-b"))):
        assert read_metadata(metadata).token == "sk-a"


def test_an_api_key_counts_when_authorization_is_not_bearer() -> None:
    found = read_metadata((("authorization", "Basic dXNlcjpwdw=="), ("x-api-key", " sk-b ")))
    assert found.token == "sk-b"


def test_the_first_request_id_is_the_one_kept_valid_or_not() -> None:
    assert read_metadata((("x-request-id", "first"), ("x-request-id", "second"))
                         ).request_id == "first"
    assert read_metadata((("x-request-id", ""), ("x-request-id", "second"))).request_id == ""
    assert read_metadata(()).request_id is None


def test_client_address_headers_and_binary_entries() -> None:
    found = read_metadata((("x-client-ip", "10.0.0.7"), ("x-forwarded-for", "1.2.3.4"),
                           ("authorization-bin", b"\x00\x01"), ("x-api-key", b"sk-bytes")))
    assert found == CallMetadata(request_id=None, token="", client_ip="10.0.0.7",
                                 forwarded="1.2.3.4")


def test_no_metadata_at_all() -> None:
    assert read_metadata(None) == CallMetadata()


def test_the_sdks_timeout_is_advisory_ours_is_checked() -> None:
    """``X-Request-Timeout`` out of range is a 400; the SDKs' ``X-Stainless-Timeout`` is used
    when it is a number in range and otherwise ignored (the anthropic SDK sends
    ``NOT_GIVEN`` when the timeout is set on the client, not the call)."""
    assert client_timeout({"x-stainless-timeout": "20"}) == 20.0
    assert client_timeout({"x-stainless-timeout": "NOT_GIVEN"}) is None
    assert client_timeout({"x-stainless-timeout": "7200"}) is None
    assert client_timeout({"x-stainless-timeout": "nan"}) is None
    assert client_timeout({"x-request-timeout": "5", "x-stainless-timeout": "NOT_GIVEN"}) == 5
    for bad in ("NOT_GIVEN", "0", "7200"):
        with pytest.raises(ApiError):
            client_timeout({"x-request-timeout": bad})
