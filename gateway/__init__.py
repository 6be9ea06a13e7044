"""llm-gateway."""
