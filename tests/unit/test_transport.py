"""Stream framing: SSE and NDJSON decoders fed bytes split at arbitrary points."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.providers.base import SseEvent
from gateway.providers.transport import NdjsonDecoder, SseDecoder

# No example database (Hypothesis still keeps a self-ignoring .hypothesis/ cache).
PROPERTY = settings(max_examples=150, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def decode_sse(chunks: Sequence[bytes]) -> list[SseEvent]:
    decoder = SseDecoder()
    events: list[SseEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    return events


def decode_ndjson(chunks: Sequence[bytes]) -> list[SseEvent]:
    decoder = NdjsonDecoder()
    events: list[SseEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    if decoder.pending():
        events.extend(decoder.feed(b"\n"))
    return events


def split_at(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    points = sorted({c for c in cuts if 0 < c < len(data)})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def every_split(data: bytes) -> list[list[bytes]]:
    """The stream in one piece, byte by byte, and cut once at every position."""
    return [[data], [data[i:i + 1] for i in range(len(data))],
            *([data[:i], data[i:]] for i in range(1, len(data)))]


# --- SSE, by example -----------------------------------------------------------------------


def test_single_event() -> None:
    assert SseDecoder().feed(b'data: {"a": 1}\n\n') == [SseEvent(data='{"a": 1}')]


def test_events_wait_for_the_blank_line() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b"data: one\n") == []
    assert decoder.pending()
    assert decoder.feed(b"\n") == [SseEvent("one")]
    assert not decoder.pending()


def test_several_events_in_one_chunk() -> None:
    events = SseDecoder().feed(b"data: 1\n\ndata: 2\n\ndata: [DONE]\n\n")
    assert events == [SseEvent("1"), SseEvent("2"), SseEvent("[DONE]")]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_line_endings(newline: bytes) -> None:
    stream = (b"event: delta" + newline + b"data: a" + newline + newline
              + b"data: b" + newline + newline + b"data: c" + newline + newline)
    expected = [SseEvent("a", "delta"), SseEvent("b"), SseEvent("c")]
    for chunks in every_split(stream):
        decoder = SseDecoder()
        events = [e for chunk in chunks for e in decoder.feed(chunk)]
        if newline == b"\r":
            # A bare CR at the very end may be half of a CRLF: it is held until more comes.
            events += decoder.feed(b"\n")
        assert events == expected, chunks


def test_split_in_the_middle_of_crlf() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b"data: x\r") == []
    # CRLF then a lone CR: the blank line that ends the event (a CR alone ends a line).
    assert decoder.feed(b"\n\r") == [SseEvent("x")]
    assert decoder.feed(b"\ndata: y\r\n\r\n") == [SseEvent("y")]


def test_comments_and_keep_alives_are_ignored() -> None:
    stream = b": keep-alive\n\n:\n\ndata: real\n: a comment inside an event\n\n: ping\n\n"
    assert decode_sse([stream]) == [SseEvent("real")]


def test_multi_line_data_is_joined_with_newlines() -> None:
    stream = b"data: first\ndata: second\ndata:\ndata:  indented\n\n"
    assert decode_sse([stream]) == [SseEvent("first\nsecond\n\n indented")]


def test_event_names() -> None:
    stream = (b"event: message_start\ndata: {\"type\":\"message_start\"}\n\n"
              b"event: ping\ndata: {}\n\n"
              b"data: unnamed\n\n")
    assert decode_sse([stream]) == [
        SseEvent('{"type":"message_start"}', "message_start"),
        SseEvent("{}", "ping"),
        SseEvent("unnamed", ""),
    ]


def test_field_without_space_and_unknown_fields() -> None:
    stream = b"id: 7\nretry: 1000\ndata:tight\nfoo: bar\n\nid: 8\n\n"
    assert decode_sse([stream]) == [SseEvent("tight")]


def test_colon_in_value_is_kept() -> None:
    assert decode_sse([b"data: a: b: c\n\n"]) == [SseEvent("a: b: c")]


def test_utf8_split_inside_a_character() -> None:
    stream = "data: héllo wörld ✓ 😀\n\n".encode()
    for chunks in every_split(stream):
        assert decode_sse(chunks) == [SseEvent("héllo wörld ✓ 😀")]


def test_incomplete_event_stays_pending() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b"data: 1\n\ndata: cut") == [SseEvent("1")]
    assert decoder.pending()


# --- NDJSON, by example --------------------------------------------------------------------


def test_ndjson_lines() -> None:
    decoder = NdjsonDecoder()
    assert decoder.feed(b'{"a":1}\n{"b"') == [SseEvent('{"a":1}')]
    assert decoder.pending()
    assert decoder.feed(b':2}\n\n  \n{"c":3}\n') == [SseEvent('{"b":2}'), SseEvent('{"c":3}')]
    assert not decoder.pending()


def test_ndjson_every_split() -> None:
    stream = '{"message":{"content":"é"}}\n{"done":true}\n'.encode()
    expected = [SseEvent('{"message":{"content":"é"}}'), SseEvent('{"done":true}')]
    for chunks in every_split(stream):
        assert decode_ndjson(chunks) == expected


def test_ndjson_trailing_line_without_newline() -> None:
    assert decode_ndjson([b'{"a":1}\n{"done":true}']) == [SseEvent('{"a":1}'),
                                                         SseEvent('{"done":true}')]


# --- properties ----------------------------------------------------------------------------

# A value on one SSE line: no CR or LF. Leading spaces matter (only one is stripped).
line_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
                    max_size=30)
event_names = st.text(st.characters(whitelist_categories=("Ll", "Lu", "Nd"),
                                    whitelist_characters="_."), min_size=1, max_size=12)
sse_events = st.builds(
    lambda lines, name: SseEvent("\n".join(lines), name),
    st.lists(line_text, min_size=1, max_size=4),
    st.one_of(st.just(""), event_names),
)


def encode_sse(events: Sequence[SseEvent], newline: bytes, comments: Sequence[bool]) -> bytes:
    out = b""
    for event, comment in zip(events, comments, strict=True):
        if comment:
            out += b": keep-alive" + newline + newline
        if event.event:
            out += b"event: " + event.event.encode() + newline
        for line in event.data.split("\n"):
            out += b"data: " + line.encode() + newline
        out += newline
    return out


@PROPERTY
@given(
    events=st.lists(sse_events, max_size=8),
    newline=st.sampled_from([b"\n", b"\r\n"]),
    data=st.data(),
)
def test_sse_any_split_decodes_like_the_whole(events: list[SseEvent], newline: bytes,
                                              data: st.DataObject) -> None:
    comments = data.draw(st.lists(st.booleans(), min_size=len(events), max_size=len(events)))
    stream = encode_sse(events, newline, comments)
    cuts = data.draw(st.lists(st.integers(0, max(len(stream), 1)), max_size=20))
    whole = decode_sse([stream])
    assert whole == events
    assert decode_sse(split_at(stream, cuts)) == whole


@PROPERTY
@given(stream=st.binary(max_size=200), data=st.data())
def test_sse_arbitrary_bytes_never_fail_and_split_is_invariant(stream: bytes,
                                                               data: st.DataObject) -> None:
    # Any byte soup (invalid UTF-8 included) decodes without raising, split or not,
    # once a final blank line closes whatever is open.
    stream = stream + b"\n\n"
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=20))
    assert decode_sse(split_at(stream, cuts)) == decode_sse([stream])


@PROPERTY
@given(
    lines=st.lists(st.text(st.characters(blacklist_categories=("Cs",),
                                         blacklist_characters="\n"), max_size=30), max_size=10),
    data=st.data(),
)
def test_ndjson_any_split_decodes_like_the_whole(lines: list[str], data: st.DataObject) -> None:
    stream = b"".join(line.encode() + b"\n" for line in lines)
    cuts = data.draw(st.lists(st.integers(0, max(len(stream), 1)), max_size=20))
    expected = [SseEvent(line) for line in lines if line.encode().strip()]
    assert decode_ndjson([stream]) == expected
    assert decode_ndjson(split_at(stream, cuts)) == expected


def test_cr_only_final_event_is_emitted() -> None:
    assert decode_sse([b"data: a\r\r"]) == [SseEvent("a")]
