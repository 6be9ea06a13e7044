"""Defects the REST and gRPC fuzzers found (tests/fuzz), each pinned by its smallest
reproduction: a clear 4xx / INVALID_ARGUMENT where there was a 500 / INTERNAL."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.facade import responses, translate
from gateway.facade.errors import ApiError

CHAT = {"model": "mock-1", "messages": [{"role": "user", "content": "x"}]}


@pytest.mark.parametrize("value", [{}, [], ["user"], {"a": 1}])
@pytest.mark.parametrize(("build", "param"), [
    (lambda v: {**CHAT, "messages": [{"role": v, "content": "x"}]}, "messages[0].role"),
    (lambda v: {**CHAT, "response_format": {"type": v}}, "response_format.type"),
])
def test_chat_enum_fields_given_an_object_or_array_are_400(build: Any, param: str,
                                                           value: Any) -> None:
    # Was a TypeError (unhashable type) in a dict lookup: 500 "internal error".
    with pytest.raises(ApiError) as caught:
        translate.chat_request_to_proto(build(value))
    assert caught.value.status == 400 and caught.value.param == param


@pytest.mark.parametrize("value", [{}, [], ["user"]])
@pytest.mark.parametrize(("build", "param"), [
    (lambda v: {"model": "m", "input": [{"role": v, "content": "x"}]}, "input[0].role"),
    (lambda v: {"model": "m", "input": "x", "text": {"format": {"type": v}}},
     "text.format.type"),
])
def test_responses_enum_fields_given_an_object_or_array_are_400(build: Any, param: str,
                                                                value: Any) -> None:
    with pytest.raises(ApiError) as caught:
        responses.request_to_proto(build(value))
    assert caught.value.status == 400 and caught.value.param == param


def test_model_labels_past_the_bound_are_not_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    # Was: every distinct model name a client sent was kept in the label table, even
    # past the bound (reported as `other`): a flood of random names grew memory forever.
    from gateway.observability import metrics

    monkeypatch.setattr(metrics, "_models", {})
    monkeypatch.setattr(metrics, "MAX_MODEL_LABELS", 3)
    assert [metrics.model_label(m) for m in ("a", "b", "c", "a")] == ["a", "b", "c", "a"]
    assert {metrics.model_label(f"random-{i}") for i in range(1000)} == {"other"}
    assert len(metrics._models) == 3
    assert metrics.model_label("b") == "b" and metrics.model_label("") == "other"


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("max_tokens", 16.0, 16), ("n", 2.0, 2), ("seed", -3.0, -3),
    ("max_completion_tokens", 1e3, 1000),
])
def test_integral_numbers_written_with_a_fraction_are_integers(field: str, value: float,
                                                               expected: int) -> None:
    # Was a 400 "must be an integer" for 16.0, which JSON (and the OpenAPI document's
    # JSON Schema "integer") holds to be the integer 16.
    req, _, _ = translate.chat_request_to_proto({**CHAT, field: value})
    assert getattr(req, field) == expected
    with pytest.raises(ApiError) as caught:
        translate.chat_request_to_proto({**CHAT, field: value + 0.5})
    assert caught.value.param == field
