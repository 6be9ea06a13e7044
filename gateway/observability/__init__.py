"""Cross-cutting observability: request context, logging (metrics and tracing later)."""
