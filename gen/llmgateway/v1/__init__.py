"""Generated from proto/llmgateway/v1; never edit by hand."""
