"""Every REST route the facade serves: method, path, handler, in one table.

Both adapters serve this table (Quart every route, the lean ASGI path the ``lean`` ones in
front of it), and the OpenAPI document lists exactly these routes (a test checks). Adding a
route is a handler and a line here; a family with its own error shape passes ``errors=``.

Example::

    for route in routes(core, ops, metrics_path="/metrics"):
        print(route.method, route.path)
"""

from __future__ import annotations

from gateway.facade.admin import AdminHandlers
from gateway.facade.anthropic import AnthropicHandlers, anthropic_error
from gateway.facade.calls import Core
from gateway.facade.exchange import Route
from gateway.facade.handlers import OpenAIHandlers
from gateway.facade.ops import OperatorHandlers

__all__ = ["routes"]


def routes(core: Core, ops: OperatorHandlers, *, metrics_path: str | None) -> tuple[Route, ...]:
    """The table. Lean: the routes that carry the traffic, and the liveness probe."""
    api = OpenAIHandlers(core)
    claude = AnthropicHandlers(core)
    admin = AdminHandlers(core)
    return (
        Route("POST", "/v1/chat/completions", api.chat, lean=True),
        Route("POST", "/v1/embeddings", api.embeddings, lean=True),
        Route("GET", "/v1/models", api.list_models),
        Route("GET", "/v1/models/<path:model_id>", api.get_model),
        Route("POST", "/v1/responses", api.create_response, lean=True),
        Route("GET", "/v1/responses/<response_id>", api.get_response),
        Route("DELETE", "/v1/responses/<response_id>", api.delete_response),
        Route("GET", "/v1/usage", api.usage),
        Route("POST", "/v1/messages", claude.messages, lean=True, errors=anthropic_error),
        Route("POST", "/v1/messages/count_tokens", claude.count_tokens, lean=True,
              errors=anthropic_error),
        Route("GET", "/admin/tenants", admin.list_tenants),
        Route("POST", "/admin/tenants", admin.create_tenant),
        Route("GET", "/admin/tenants/<tenant_id>", admin.get_tenant),
        Route("PUT", "/admin/tenants/<tenant_id>", admin.update_tenant),
        Route("DELETE", "/admin/tenants/<tenant_id>", admin.delete_tenant),
        Route("GET", "/admin/tenants/<tenant_id>/keys", admin.list_keys),
        Route("POST", "/admin/tenants/<tenant_id>/keys", admin.create_key),
        Route("POST", "/admin/tenants/<tenant_id>/rotate-key", admin.rotate_key),
        Route("DELETE", "/admin/keys/<key_id>", admin.revoke_key),
        Route("GET", "/admin/providers", admin.list_providers),
        Route("GET", "/admin/circuit-breakers", admin.list_circuit_breakers),
        Route("POST", "/admin/circuit-breakers/<path:provider>/reset",
              admin.reset_circuit_breaker),
        Route("GET", "/admin/system", admin.system),
        Route("GET", "/admin/models", admin.list_model_routes),
        Route("GET", "/admin/requests", admin.list_requests),
        Route("GET", "/admin/usage/series", admin.usage_series),
        Route("GET", "/health", ops.live, lean=True),
        Route("GET", "/health/live", ops.live, lean=True),
        Route("GET", "/ready", ops.ready),
        Route("GET", "/health/ready", ops.ready),
        Route("GET", "/openapi.json", ops.openapi),
        *((Route("GET", metrics_path, ops.metrics),) if metrics_path else ()),
    )
