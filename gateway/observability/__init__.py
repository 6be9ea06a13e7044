"""Cross-cutting observability: request context, logging, metrics (defined once), tracing."""
