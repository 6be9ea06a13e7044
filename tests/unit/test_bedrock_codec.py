"""The Bedrock codec's pure transforms, the eventstream framing, and the fake's frame
encoder checked against botocore's decoder."""

from __future__ import annotations

import base64

import orjson
import pytest
from botocore.eventstream import EventStreamBuffer

from gateway.config import ProviderConfig
from gateway.domain import (
    CacheControl,
    ChatRequest,
    ContentPart,
    EmbeddingRequest,
    Message,
    ResponseFormat,
    Tool,
    ToolCall,
    ToolChoice,
)
from gateway.errors import (
    InvalidRequestError,
    UpstreamError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
)
from gateway.providers.base import AnthropicHeaders, SseEvent
from gateway.providers.bedrock import (
    BedrockCodec,
    ConverseStreamDecoder,
    classify_error,
    decode_converse,
    encode_converse,
    is_claude,
)
from gateway.providers.transport import EventStreamDecoder, frame_decoder
from tests.fakes.bedrock import claude_chunks, event, exception, frame, text_stream

CONFIG = ProviderConfig(type="bedrock", region="eu-west-1")


def test_fake_frames_decode_with_botocore() -> None:
    raw = frame({":event-type": "chunk", ":message-type": "event"}, b'{"a":1}')
    buffer = EventStreamBuffer()
    buffer.add_data(raw)
    [message] = list(buffer)
    assert message.headers == {":event-type": "chunk", ":message-type": "event"}
    assert message.payload == b'{"a":1}'


def test_eventstream_decoder_splits_frames_across_reads() -> None:
    data = b"".join(text_stream(["a", "b"])) + exception("throttlingException", "slow")
    decoder = frame_decoder("eventstream")
    events = [e for i in range(0, len(data), 7) for e in decoder.feed(data[i:i + 7])]
    assert [e.event for e in events] == [
        "messageStart", "contentBlockDelta", "contentBlockDelta", "contentBlockStop",
        "messageStop", "metadata", "exception:throttlingException"]
    assert orjson.loads(events[1].data)["delta"] == {"text": "a"}
    assert not decoder.pending()


def test_eventstream_decoder_reports_a_corrupt_frame() -> None:
    import aiohttp

    raw = bytearray(event("messageStart", {"role": "assistant"}))
    raw[-1] ^= 0xFF
    with pytest.raises(aiohttp.ClientPayloadError):
        EventStreamDecoder().feed(bytes(raw))


def test_converse_body() -> None:
    request = ChatRequest(model="m", messages=(
        Message(role="system", content="sys"),
        Message(role="user", parts=(ContentPart(type="text", text="look"),
                                    ContentPart(type="image_url",
                                                url="data:image/jpeg;base64,AAA="))),
        Message(role="assistant", content="ok", tool_calls=(ToolCall("t1", "f", '{"x": 1}'),)),
        Message(role="tool", tool_call_id="t1", content="42"),
        Message(role="user", content="and?"),
    ), tools=(Tool("f", "does f", {"type": "object", "properties": {}}),),
        tool_choice=ToolChoice(mode="auto"), max_completion_tokens=9)
    assert encode_converse(request) == {
        "messages": [
            {"role": "user", "content": [
                {"text": "look"}, {"image": {"format": "jpeg", "source": {"bytes": "AAA="}}}]},
            {"role": "assistant", "content": [
                {"text": "ok"}, {"toolUse": {"toolUseId": "t1", "name": "f", "input": {"x": 1}}}]},
            {"role": "user", "content": [
                {"toolResult": {"toolUseId": "t1", "content": [{"text": "42"}]}},
                {"text": "and?"}]}],
        "system": [{"text": "sys"}],
        "toolConfig": {"tools": [{"toolSpec": {"name": "f", "description": "does f",
                                               "inputSchema": {"json": {
                                                   "type": "object", "properties": {}}}}}],
                       "toolChoice": {"auto": {}}},
        "inferenceConfig": {"maxTokens": 9},
    }


def test_converse_answer_usage_and_reasoning() -> None:
    completion = decode_converse({
        "output": {"message": {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "s"}}},
            {"text": "hi"}]}},
        "stopReason": "max_tokens",
        "usage": {"inputTokens": 5, "outputTokens": 2, "totalTokens": 17,
                  "cacheReadInputTokens": 4, "cacheWriteInputTokens": 6}}, "m")
    choice = completion.choices[0]
    assert (choice.message.content, choice.message.reasoning, choice.finish_reason) == (
        "hi", "hmm", "length")
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.total_tokens,
            completion.usage.cached_prompt_tokens,
            completion.usage.cache_creation_prompt_tokens) == (15, 17, 4, 6)


def test_stream_exception_is_an_upstream_error() -> None:
    decoder = ConverseStreamDecoder("bedrock", "m")
    with pytest.raises(UpstreamRateLimitedError):
        decoder.decode(SseEvent(data='{"message": "slow"}', event="exception:throttlingException"))
    with pytest.raises(UpstreamError) as info:
        decoder.decode(SseEvent(data='{"message": "x"}',
                                event="exception:modelStreamErrorException"))
    assert info.value.retryable


@pytest.mark.parametrize(("status", "kind", "error", "retryable"), [
    (400, "ValidationException", UpstreamRejectedError, None),
    (404, "ResourceNotFoundException", UpstreamRejectedError, None),
    (429, "ThrottlingException", UpstreamRateLimitedError, True),
    (429, "ModelNotReadyException", UpstreamRateLimitedError, True),
    (403, "AccessDeniedException", UpstreamError, False),
    (403, "UnrecognizedClientException", UpstreamError, False),
    (408, "ModelTimeoutException", UpstreamError, True),
    (503, "ServiceUnavailableException", UpstreamError, True),
    (424, "ModelErrorException", UpstreamError, True)])
def test_error_classification(status: int, kind: str, error: type[Exception],
                              retryable: bool | None) -> None:
    result = classify_error("bedrock", status, {"x-amzn-ErrorType": f"{kind}:http://x/"},
                            b'{"message": "AKIASECRET is bad"}')
    assert type(result) is error
    if retryable is not None:
        assert isinstance(result, UpstreamError) and result.retryable is retryable
    if status == 403:
        assert "AKIASECRET" not in result.message and "bedrock" in result.message


def test_model_id_is_one_encoded_path_segment() -> None:
    codec = BedrockCodec("bedrock", CONFIG)
    wire = codec.chat_request(ChatRequest(model="x", messages=(Message("user", "hi"),)),
                              "us.anthropic.claude-sonnet-4-5-20250929-v1:0", stream=True,
                              include_usage=False)
    assert wire.url == ("https://bedrock-runtime.eu-west-1.amazonaws.com/model/"
                        "us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream")


def test_messages_passthrough_body_and_stream() -> None:
    codec = BedrockCodec("bedrock", CONFIG)
    wire = codec.messages_request({"model": "c", "stream": True, "max_tokens": 5,
                                   "messages": []}, "anthropic.claude-x", stream=True,
                                  headers=AnthropicHeaders(betas=("b1",)))
    assert wire.url.endswith("/model/anthropic.claude-x/invoke-with-response-stream")
    assert orjson.loads(wire.body or b"") == {"max_tokens": 5, "messages": [],
                                              "anthropic_version": "bedrock-2023-05-31",
                                              "anthropic_beta": ["b1"]}
    decoder = codec.messages_decoder()
    events = [e for raw in claude_chunks([{"type": "message_start", "message": {}},
                                          {"type": "message_stop"}])
              for e in decoder.decode(EventStreamDecoder().feed(raw)[0])]
    assert [e["type"] for e in events] == ["message_start", "message_stop"]
    assert decoder.done
    count = codec.count_tokens_request({"messages": []}, "anthropic.claude-x",
                                       headers=AnthropicHeaders())
    inner = orjson.loads(base64.b64decode(orjson.loads(count.body or b"")["input"]
                                          ["invokeModel"]["body"]))
    assert inner == {"max_tokens": 1, "messages": [], "anthropic_version": "bedrock-2023-05-31"}


def test_embeddings_refuse_what_bedrock_cannot_take() -> None:
    codec = BedrockCodec("bedrock", CONFIG)
    with pytest.raises(InvalidRequestError):
        codec.embed_request(EmbeddingRequest(model="t", inputs=("a", "b")),
                            "amazon.titan-embed-text-v2:0")
    with pytest.raises(InvalidRequestError):
        codec.embed_request(EmbeddingRequest(model="t", inputs=("a",)), "amazon.nova-lite-v1:0")


def test_without_botocore_the_start_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from gateway.providers.bedrock import bedrock_provider

    monkeypatch.setitem(sys.modules, "botocore", None)  # as if not installed
    with pytest.raises(ValueError, match=r"pip install 'llm-gateway\[bedrock\]'"):
        bedrock_provider("aws", CONFIG)


def test_config_checks_bedrock_settings() -> None:
    from gateway.config import ConfigError, load_settings

    text = ("providers:\n  aws: {type: bedrock, access_key_id: AKIA1234567890,"
            " endpoint_url: ftp://x}\n")
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        f.write(text)
        f.flush()
        with pytest.raises(ConfigError) as info:
            load_settings(f.name, env={})
    problems = "\n".join(info.value.problems)
    assert "providers.aws.region: required" in problems
    assert "providers.aws.endpoint_url: must start with http" in problems
    assert "access_key_id and secret_access_key go together" in problems


def test_cache_control_becomes_cache_points_after_the_cached_blocks() -> None:
    """OpenAI-style ``cache_control`` on system parts, messages, parts and tools becomes a
    Converse ``cachePoint`` right after the matching block, and the body is one botocore's
    own Converse input model accepts."""
    import botocore.session
    from botocore.validate import ParamValidator

    ephemeral = CacheControl()
    request = ChatRequest(model="m", messages=(
        Message(role="system", parts=(
            ContentPart(type="text", text="You are terse."),
            ContentPart(type="text", text="A long manual.", cache_control=CacheControl(ttl="1h")),
        )),
        Message(role="user", content="first question", cache_control=ephemeral),
        Message(role="assistant", content="first answer"),
        Message(role="user", parts=(
            ContentPart(type="text", text="second question", cache_control=ephemeral),)),
    ), tools=(Tool(name="weather", parameters={"properties": {}}, cache_control=ephemeral),))
    body = encode_converse(request)
    assert body["system"] == [{"text": "You are terse."}, {"text": "A long manual."},
                              {"cachePoint": {"type": "default", "ttl": "1h"}}]
    assert body["messages"] == [
        {"role": "user", "content": [{"text": "first question"},
                                     {"cachePoint": {"type": "default"}}]},
        {"role": "assistant", "content": [{"text": "first answer"}]},
        {"role": "user", "content": [{"text": "second question"},
                                     {"cachePoint": {"type": "default"}}]}]
    assert body["toolConfig"]["tools"][1] == {"cachePoint": {"type": "default"}}
    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    report = ParamValidator().validate({"modelId": "m", **body},
                                       model.operation_model("Converse").input_shape)
    assert not report.has_errors(), report.generate_report()
    plain = encode_converse(ChatRequest(model="m", messages=(
        Message(role="system", content="s"), Message(role="user", content="hi"))))
    assert plain == {"system": [{"text": "s"}],
                     "messages": [{"role": "user", "content": [{"text": "hi"}]}]}


def test_only_claude_takes_the_messages_body() -> None:
    assert is_claude("us.anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert is_claude("anthropic.claude-3-haiku-20240307-v1:0")
    assert not is_claude("amazon.nova-pro-v1:0")
    assert not is_claude("meta.llama3-70b-instruct-v1:0")


def test_json_object_has_no_converse_form() -> None:
    request = ChatRequest(model="m", messages=(Message(role="user", content="hi"),),
                          response_format=ResponseFormat(type="json_object"))
    with pytest.raises(InvalidRequestError) as info:
        encode_converse(request)
    assert info.value.param == "response_format"
