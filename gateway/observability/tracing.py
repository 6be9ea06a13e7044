"""OpenTelemetry tracing: one trace from the REST request through the gRPC core to
each upstream attempt, W3C ``traceparent`` in and out.

* :func:`setup_tracing` installs the SDK provider: parent-based sampler
  (always / never / probability), OTLP/gRPC or stdout exporter, batch processor.
  Its ``shutdown`` flushes what is buffered.
* :func:`grpc_server_interceptor` / :func:`grpc_client_interceptors` are
  opentelemetry-instrumentation-grpc's, minus health and reflection calls.
* :func:`inference_span` is the span of one upstream attempt, with the GenAI
  semantic-convention attributes; prompts and outputs are never recorded.

With tracing off, the API's no-op tracer makes every span here nearly free.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from gateway import __version__
from gateway.config import Settings

__all__ = [
    "INFRASTRUCTURE_PREFIXES",
    "grpc_client_interceptors",
    "grpc_server_interceptor",
    "in_unsampled_trace",
    "inference_span",
    "inject_headers",
    "setup_tracing",
    "trace_ids",
    "traced_method",
]

tracer = trace.get_tracer("llm-gateway", __version__)
_installed = False  # an SDK provider is installed: spans are worth making (and can exist)

# gen_ai.provider.name values from the GenAI semantic conventions.
_PROVIDER_NAMES = {
    "openai": "openai", "openai_compatible": "openai", "azure_openai": "azure.ai.openai",
    "anthropic": "anthropic", "google": "gcp.gemini", "ollama": "ollama", "mock": "mock",
    "azure_anthropic": "azure.ai.inference",
}


def setup_tracing(settings: Settings) -> Any:
    """Install the SDK tracer provider when tracing is on; returns it (or None)."""
    obs = settings.observability
    if not (obs.enabled and obs.tracing.enabled):
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    from opentelemetry.sdk.trace.sampling import (
        ALWAYS_OFF,
        ALWAYS_ON,
        ParentBased,
        TraceIdRatioBased,
    )

    cfg = obs.tracing
    root = {"always": ALWAYS_ON, "never": ALWAYS_OFF}.get(
        cfg.sampler.type, TraceIdRatioBased(cfg.sampler.rate))
    attributes = {"service.name": cfg.service_name, "service.version": __version__}
    if settings.instance.pod_name:
        attributes["k8s.pod.name"] = settings.instance.pod_name
    if settings.instance.pod_namespace:
        attributes["k8s.namespace.name"] = settings.instance.pod_namespace
    # `never` is the operator's final word: a caller's sampled flag cannot turn tracing on.
    sampler = root if cfg.sampler.type == "never" or not cfg.sampler.follow_parent else (
        ParentBased(root))
    provider = TracerProvider(sampler=sampler, resource=Resource.create(attributes))
    exporter_cfg = cfg.exporter
    if exporter_cfg.type == "otlp" and exporter_cfg.endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter: Any = OTLPSpanExporter(endpoint=exporter_cfg.endpoint,
                                         insecure=exporter_cfg.insecure,
                                         headers=dict(exporter_cfg.headers) or None)
        provider.add_span_processor(BatchSpanProcessor(exporter))
    elif exporter_cfg.type == "stdout":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    global _installed
    _installed = True
    return provider


# The SDK's tracer, the exporters and the gRPC instrumentation are imported inside the
# functions that use them: a process that does not trace never holds them in memory.


INFRASTRUCTURE_PREFIXES = ("/grpc.health.", "/grpc.reflection.")
"""gRPC methods of the infrastructure: health checks and reflection, which probes and
operators call all the time. Not traced here; not authenticated or logged by the core's
interceptor either (one rule for both)."""


def traced_method(method: str) -> bool:
    """Whether calls of a gRPC method (``/package.Service/Method``) are traced: all but
    the infrastructure's (:data:`INFRASTRUCTURE_PREFIXES`)."""
    return not method.startswith(INFRASTRUCTURE_PREFIXES)


def _not_infrastructure() -> Callable[[Any], bool]:
    """The interceptors' filter, :func:`traced_method` on the call's details.

    Ours rather than the instrumentation's ``negate(any_of(service_prefix(...)))``: it runs
    on every gRPC call, and one ``startswith`` does what that does with ``isinstance``
    checks and path splits per prefix.
    """
    def traced(details: Any) -> bool:
        method = details.method
        if isinstance(method, bytes):  # client-side call details on some grpc versions
            method = method.decode()
        return traced_method(method)

    return traced


def grpc_server_interceptor() -> Any:
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    return aio_server_interceptor(filter_=_not_infrastructure())


def grpc_client_interceptors() -> list[Any]:
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    return list(aio_client_interceptors(filter_=_not_infrastructure()))


def inject_headers(headers: dict[str, str]) -> None:
    """Add ``traceparent`` (and ``tracestate``) for the current span, when recording."""
    if _installed and trace.get_current_span().get_span_context().is_valid:
        propagate.inject(headers)


def in_unsampled_trace() -> bool:
    """True inside a trace the sampler left out: under the parent-based sampler no child
    of it is recorded, so making child spans would be work for nothing (most requests, at
    a sampling rate of 0.1). Its context still goes upstream in ``traceparent``."""
    if not _installed:
        return False
    context = trace.get_current_span().get_span_context()
    return context.is_valid and not context.trace_flags.sampled


def trace_ids() -> tuple[str, str]:
    """The current ``(trace_id, span_id)`` in hex, or empty strings."""
    if not _installed:
        return "", ""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return "", ""
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


@contextlib.contextmanager
def inference_span(operation: str, provider: str, provider_type: str, model: str,
                   base_url: str = "", *, end: bool = True) -> Iterator[Span]:
    """The span of one upstream attempt (``end=False``: the caller ends it, for streams).
    With tracing off it is the invalid span, and costs nothing else."""
    if not _installed or in_unsampled_trace():
        yield trace.get_current_span()  # a child would not be recorded either
        return
    span = tracer.start_span(f"{operation} {model}", kind=SpanKind.CLIENT)
    if span.is_recording():
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": _PROVIDER_NAMES.get(provider_type, provider_type),
            "gen_ai.request.model": model,
            "llm_gateway.deployment": provider,
        }
        if base_url:
            parts = urlsplit(base_url)
            if parts.hostname:
                attributes["server.address"] = parts.hostname
            if parts.port:
                attributes["server.port"] = parts.port
        span.set_attributes(attributes)
    try:
        with trace.use_span(span, end_on_exit=False, record_exception=False,
                            set_status_on_exception=False):
            yield span
    except BaseException as exc:
        fail_span(span, exc)
        span.end()
        raise
    if end:
        span.end()


def fail_span(span: Span, exc: BaseException) -> None:
    if span.is_recording():
        error_type = getattr(exc, "error_type", None) or type(exc).__name__
        span.set_attribute("error.type", error_type)
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))


def record_response(span: Span, model: str, prompt_tokens: int | None,
                    completion_tokens: int | None, finish_reasons: Sequence[str]) -> None:
    if not span.is_recording():
        return
    attributes: dict[str, Any] = {"gen_ai.response.model": model}
    if prompt_tokens is not None:
        attributes["gen_ai.usage.input_tokens"] = prompt_tokens
    if completion_tokens is not None:
        attributes["gen_ai.usage.output_tokens"] = completion_tokens
    if finish_reasons:
        attributes["gen_ai.response.finish_reasons"] = list(finish_reasons)
    span.set_attributes(attributes)
