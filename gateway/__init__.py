"""llm-gateway: one OpenAI-compatible gateway, a gRPC core, many LLM providers."""

__version__ = "0.1.0"
