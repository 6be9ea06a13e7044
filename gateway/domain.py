"""Plain data the core works on: no protobuf, no HTTP.

``proto.py`` converts the wire messages to these and back; providers translate
these to and from their own wire formats. Enums are plain strings with the
OpenAI spelling (``"user"``, ``"tool_calls"``), so adapters read naturally.

Example::

    request = ChatRequest(model="mock-1", messages=(Message(role="user", content="hi"),))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "ChatChoice",
    "ChatChunk",
    "ChatCompletion",
    "ChatRequest",
    "ChunkChoice",
    "ContentPart",
    "Delta",
    "EmbeddingRequest",
    "Embeddings",
    "FinishReason",
    "JsonSchemaFormat",
    "Message",
    "ModelInfo",
    "ResponseFormat",
    "Role",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "ToolChoice",
    "Usage",
]

Role = Literal["system", "user", "assistant", "tool", "developer"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]


@dataclass(slots=True, frozen=True)
class CacheControl:
    """A prompt-cache breakpoint (Anthropic's ``cache_control``): ``ephemeral``, with a
    ``ttl`` such as ``1h`` (empty: the provider's default)."""

    type: str = "ephemeral"
    ttl: str = ""


@dataclass(slots=True, frozen=True)
class ContentPart:
    """A typed piece of content: ``text``, ``image_url`` or ``input_audio``."""

    type: Literal["text", "image_url", "input_audio"]
    text: str = ""
    url: str = ""  # image URL or data: URL
    detail: str = ""  # image detail
    data: str = ""  # base64 audio
    format: str = ""  # audio format
    cache_control: CacheControl | None = None


@dataclass(slots=True, frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model produced it


@dataclass(slots=True, frozen=True)
class Message:
    role: Role
    content: str | None = None
    parts: tuple[ContentPart, ...] = ()
    name: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""
    refusal: str | None = None
    # The model's reasoning text, where the provider returns it (an answer only).
    reasoning: str | None = None
    cache_control: CacheControl | None = None  # after the plain-text ``content``

    def text(self) -> str:
        """All text of the message, parts joined by newlines."""
        if self.content is not None:
            return self.content
        return "\n".join(p.text for p in self.parts if p.type == "text")


@dataclass(slots=True, frozen=True)
class Tool:
    name: str
    description: str = ""
    parameters: dict[str, Any] | None = None  # JSON Schema
    strict: bool | None = None
    cache_control: CacheControl | None = None


@dataclass(slots=True, frozen=True)
class ToolChoice:
    mode: Literal["auto", "none", "required", "function"]
    function_name: str = ""


@dataclass(slots=True, frozen=True)
class JsonSchemaFormat:
    name: str
    schema: dict[str, Any] | None = None
    description: str = ""
    strict: bool | None = None


@dataclass(slots=True, frozen=True)
class ResponseFormat:
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


@dataclass(slots=True, frozen=True)
class ChatRequest:
    """A chat request before routing; ``model`` is what the client asked for."""

    model: str
    messages: tuple[Message, ...]
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    n: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    user: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # pass-through fields

    @property
    def output_limit(self) -> int | None:
        """The client's cap on generated tokens, whichever spelling it used."""
        return self.max_completion_tokens if self.max_completion_tokens is not None else (
            self.max_tokens
        )


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_prompt_tokens: int = 0
    cache_creation_prompt_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(slots=True, frozen=True)
class ChatChoice:
    index: int
    message: Message
    finish_reason: FinishReason | None


@dataclass(slots=True)
class ChatCompletion:
    id: str
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage | None = None
    system_fingerprint: str = ""


@dataclass(slots=True, frozen=True)
class ToolCallDelta:
    index: int
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass(slots=True, frozen=True)
class Delta:
    role: Role | None = None
    content: str | None = None
    tool_calls: tuple[ToolCallDelta, ...] = ()
    refusal: str | None = None
    reasoning: str | None = None


@dataclass(slots=True, frozen=True)
class ChunkChoice:
    index: int
    delta: Delta
    finish_reason: FinishReason | None = None


@dataclass(slots=True)
class ChatChunk:
    id: str
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    system_fingerprint: str = ""


@dataclass(slots=True, frozen=True)
class EmbeddingRequest:
    model: str
    inputs: tuple[str, ...]
    dimensions: int | None = None
    user: str = ""


@dataclass(slots=True)
class Embeddings:
    """Vectors in input order, and the tokens they cost."""

    model: str
    vectors: list[list[float]]
    usage: Usage | None = None


@dataclass(slots=True, frozen=True)
class ModelInfo:
    """A routable model as ListModels shows it."""

    id: str
    owned_by: str
    created: int = 0
    targets: tuple[str, ...] = ()
    fallbacks: tuple[str, ...] = ()
