"""The UI's pages, each a client of the admin API: the overview (:mod:`.overview`),
tenants and their keys, usage (:mod:`.usage`), the request log, providers and their
breakers, models (:mod:`.models`) and the playground (:mod:`.playground`).

Every page reads with admin calls and changes state only through them (the forms post
here, the page calls the admin API, then redirects: Post/Redirect/Get). A new key's secret
is kept in the session for the one page that shows it, never again.

Example::

    for path, endpoint, page, methods in Pages().routes():
        blueprint.add_url_rule(path, endpoint, guarded(page), methods=methods)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping
from urllib.parse import quote, urlencode

from google.protobuf.timestamp_pb2 import Timestamp
from llmgateway.v1 import admin_service_pb2 as pb
from llmgateway.v1 import gateway_service_pb2 as gw
from quart import Response

from gateway.facade.errors import ApiError
from gateway.facade.ui import fmt
from gateway.facade.ui.forms import (
    BUDGET,
    KEY_BUDGET,
    LIMITS,
    PERIODS,
    key_budget,
    per,
    tenant_spec,
    tenant_values,
)
from gateway.facade.ui.models import models
from gateway.facade.ui.overview import overview
from gateway.facade.ui.playground import playground, playground_stream
from gateway.facade.ui.sessions import Reveal
from gateway.facade.ui.usage import usage, usage_csv
from gateway.facade.ui.visit import Page, Visit

__all__ = ["Pages"]

_PAGE_SIZE = 50
_STATUSES = ("OK", "INVALID_ARGUMENT", "UNAUTHENTICATED", "PERMISSION_DENIED", "NOT_FOUND",
             "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "CANCELLED", "DEADLINE_EXCEEDED",
             "UNAVAILABLE", "INTERNAL", "UNKNOWN")
_BREAKER_STATES = {pb.CIRCUIT_BREAKER_STATE_CLOSED: "closed",
                   pb.CIRCUIT_BREAKER_STATE_OPEN: "open",
                   pb.CIRCUIT_BREAKER_STATE_HALF_OPEN: "half-open"}
_KEY_STATES = {pb.PROVIDER_KEY_STATE_READY: "ready", pb.PROVIDER_KEY_STATE_RESTING: "resting",
               pb.PROVIDER_KEY_STATE_OPEN: "open"}
_TTLS = (("", "Never"), ("2592000", "In 30 days"), ("7776000", "In 90 days"),
         ("31536000", "In a year"))


def _seconds(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9


def _tenants_url(tenant_id: str, tail: str = "") -> str:
    return f"/ui/tenants/{quote(tenant_id, safe='')}{tail}"


class Pages:
    """The page handlers and their routes."""

    def routes(self) -> Iterator[tuple[str, str, Page, list[str]]]:
        yield "/", "overview", overview, ["GET"]
        yield "/tenants", "tenants", self.tenants, ["GET"]
        yield "/tenants/new", "new_tenant", self.new_tenant, ["GET", "POST"]
        yield "/tenants/<tenant_id>/edit", "edit_tenant", self.edit_tenant, ["GET", "POST"]
        yield "/tenants/<tenant_id>/delete", "delete_tenant", self.delete_tenant, ["POST"]
        yield "/tenants/<tenant_id>/keys", "keys", self.keys, ["GET", "POST"]
        yield ("/tenants/<tenant_id>/keys/<key_id>/revoke", "revoke_key", self.revoke_key,
               ["POST"])
        yield ("/tenants/<tenant_id>/keys/<key_id>/rotate", "rotate_key", self.rotate_key,
               ["POST"])
        yield "/usage", "usage", usage, ["GET"]
        yield "/usage.csv", "usage_csv", usage_csv, ["GET"]
        yield "/requests", "requests", self.requests, ["GET"]
        yield "/providers", "providers", self.providers, ["GET"]
        yield ("/providers/<path:provider>/reset", "reset_breaker", self.reset_breaker,
               ["POST"])
        yield "/models", "models", models, ["GET"]
        yield "/playground", "playground", playground, ["GET", "POST"]
        yield "/playground/stream", "playground_stream", playground_stream, ["POST"]

    # --- tenants -----------------------------------------------------------------------

    async def tenants(self, visit: Visit) -> Response:
        answer = await visit.api.call(visit.api.stub.ListTenants, pb.ListTenantsRequest())
        tenants = sorted(answer.tenants, key=lambda t: t.name.lower())
        return await visit.render("tenants.html", title="Tenants", tenants=tenants,
                                  summaries={t.id: _limits(t) for t in tenants},
                                  budgets={t.id: _budgets(t) for t in tenants})

    async def new_tenant(self, visit: Visit) -> Response:
        values: Mapping[str, str] = {}
        problems: list[str] = []
        if visit.form:
            spec, problems = tenant_spec(visit.form)
            values = visit.form
            if not problems:
                try:
                    answer = await visit.api.call(visit.api.stub.CreateTenant,
                                                  pb.CreateTenantRequest(tenant=spec))
                except ApiError as exc:
                    if exc.status != 400 and exc.status != 409:
                        raise
                    problems = [exc.message]
                else:
                    return visit.redirect("/ui/tenants", f"Tenant {answer.tenant.name} created.")
        return await self._tenant_form(visit, "New tenant", "Create", values, problems,
                                       "/ui/tenants/new")

    async def edit_tenant(self, visit: Visit) -> Response:
        tenant_id = visit.params["tenant_id"]
        call, stub = visit.api.call, visit.api.stub
        tenant = (await call(stub.GetTenant, pb.GetTenantRequest(tenant_id=tenant_id))).tenant
        values: Mapping[str, str] = tenant_values(tenant)
        problems: list[str] = []
        if visit.form:
            spec, problems = tenant_spec(visit.form, tenant)  # keeps what is not on it
            values = visit.form
            if not problems:
                try:
                    await call(stub.UpdateTenant, pb.UpdateTenantRequest(tenant_id=tenant_id,
                                                                         tenant=spec))
                except ApiError as exc:
                    if exc.status != 400 and exc.status != 409:
                        raise
                    problems = [exc.message]
                else:
                    return visit.redirect("/ui/tenants", f"Tenant {spec.name} saved.")
        return await self._tenant_form(visit, f"Edit tenant {tenant.name}", "Save", values,
                                       problems, _tenants_url(tenant_id, "/edit"))

    async def _tenant_form(self, visit: Visit, heading: str, submit: str,
                           values: Mapping[str, str], problems: list[str], action: str
                           ) -> Response:
        """The form, with what is wrong with its last answer (a 200: the page is fine, the
        answer is not; a 4xx page is an error in the browser's console)."""
        call = visit.api.call
        providers, models = await asyncio.gather(
            call(visit.api.stub.ListProviders, pb.ListProvidersRequest()),
            _models(visit))
        return await visit.render(
            "tenant_form.html", title=heading, heading=heading, submit=submit,
            values=values, problems=problems, action=action, limits=LIMITS, budget=BUDGET,
            periods=PERIODS,
            providers=[p.name for p in providers.providers], models=models)

    async def delete_tenant(self, visit: Visit) -> Response:
        tenant_id = visit.params["tenant_id"]
        call, stub = visit.api.call, visit.api.stub
        tenant = (await call(stub.GetTenant, pb.GetTenantRequest(tenant_id=tenant_id))).tenant
        if visit.form.get("confirmed") != "yes":
            return await visit.render("confirm_delete.html", title="Delete tenant",
                                      tenant=tenant)
        await call(stub.DeleteTenant, pb.DeleteTenantRequest(tenant_id=tenant_id))
        return visit.redirect("/ui/tenants", f"Tenant {tenant.name} deleted, and its keys.")

    # --- keys --------------------------------------------------------------------------

    async def keys(self, visit: Visit) -> Response:
        tenant_id = visit.params["tenant_id"]
        call, stub = visit.api.call, visit.api.stub
        problems: list[str] = []
        if visit.form:
            budget, period, problems = key_budget(visit.form)
            ttl = visit.form.get("ttl_seconds", "")
            create = pb.CreateApiKeyRequest(
                tenant_id=tenant_id, name=visit.form.get("name", "").strip(),
                ttl_seconds=int(ttl) if ttl.isdigit() else 0, budget_period=period)
            if budget is not None:
                create.monthly_budget_usd = budget
            if not problems:
                try:
                    answer = await call(stub.CreateApiKey, create)
                except ApiError as exc:
                    if exc.status != 400:
                        raise
                    problems = [exc.message]
                else:
                    return _reveal(visit, tenant_id,
                                   answer.api_key.name or answer.api_key.prefix,
                                   answer.secret, "Key created.")
        tenant, keys = await asyncio.gather(
            call(stub.GetTenant, pb.GetTenantRequest(tenant_id=tenant_id)),
            call(stub.ListApiKeys, pb.ListApiKeysRequest(tenant_id=tenant_id)))
        reveal = visit.session.reveal
        visit.session.reveal = None  # shown on this page once, never again
        if reveal is not None and reveal.tenant_id != tenant_id:
            reveal = None
        now = time.time()
        rows = sorted(keys.api_keys, key=lambda k: -_seconds(k.created_at))
        return await visit.render(
            "keys.html", title=f"Keys of {tenant.tenant.name}", tenant=tenant.tenant,
            keys=[(k, _key_state(k, now), _key_budget(k)) for k in rows], reveal=reveal,
            ttls=_TTLS, problems=problems, values=visit.form, budget=KEY_BUDGET,
            periods=PERIODS)

    async def revoke_key(self, visit: Visit) -> Response:
        tenant_id, key_id = visit.params["tenant_id"], visit.params["key_id"]
        answer = await visit.api.call(visit.api.stub.RevokeApiKey,
                                      pb.RevokeApiKeyRequest(key_id=key_id))
        return visit.redirect(_tenants_url(tenant_id, "/keys"),
                              f"Key {answer.api_key.name or answer.api_key.prefix} revoked.")

    async def rotate_key(self, visit: Visit) -> Response:
        tenant_id, key_id = visit.params["tenant_id"], visit.params["key_id"]
        answer = await visit.api.call(visit.api.stub.RotateApiKey, pb.RotateApiKeyRequest(
            tenant_id=tenant_id, key_id=key_id))
        return _reveal(visit, tenant_id, answer.api_key.name or answer.api_key.prefix,
                       answer.secret, "Key rotated: the old key is revoked.")

    # --- request log -------------------------------------------------------------------

    async def requests(self, visit: Visit) -> Response:
        args = visit.args
        where = {name: args.get(name, "").strip() for name in
                 ("tenant_id", "model", "provider", "status")}
        call, stub = visit.api.call, visit.api.stub
        page, tenants, providers = await asyncio.gather(
            call(stub.ListRequests, pb.ListRequestsRequest(
                tenant_id=where["tenant_id"], model=where["model"],
                provider=where["provider"], status=where["status"],
                page_size=_PAGE_SIZE, page_token=args.get("page", ""))),
            call(stub.ListTenants, pb.ListTenantsRequest()),
            call(stub.ListProviders, pb.ListProvidersRequest()))
        names = {t.id: t.name for t in tenants.tenants}
        filters = {k: v for k, v in where.items() if v}
        older = ("/ui/requests?" + urlencode({**filters, "page": page.next_page_token})
                 if page.next_page_token else "")
        return await visit.render(
            "requests.html", title="Request log", entries=page.requests, names=names,
            where=where, filtered=bool(filters), paged=bool(args.get("page")), older=older,
            newest="/ui/requests" + ("?" + urlencode(filters) if filters else ""),
            tenants=sorted(tenants.tenants, key=lambda t: t.name.lower()),
            providers=[p.name for p in providers.providers], statuses=_STATUSES)

    # --- providers and breakers --------------------------------------------------------

    async def providers(self, visit: Visit) -> Response:
        call, stub = visit.api.call, visit.api.stub
        providers, breakers = await asyncio.gather(
            call(stub.ListProviders, pb.ListProvidersRequest()),
            call(stub.ListCircuitBreakers, pb.ListCircuitBreakersRequest()))
        by_provider = {b.provider: b for b in breakers.circuit_breakers}
        rows = []
        for provider in sorted(providers.providers, key=lambda p: p.name):
            breaker = by_provider.get(provider.name)
            state = _BREAKER_STATES.get(breaker.state, "closed") if breaker else "closed"
            keys = [(k, _KEY_STATES.get(k.state, "unknown")) for k in provider.keys]
            rows.append((provider, breaker, state, keys))
        return await visit.render("providers.html", title="Providers", rows=rows)

    async def reset_breaker(self, visit: Visit) -> Response:
        provider = visit.params["provider"]
        await visit.api.call(visit.api.stub.ResetCircuitBreaker,
                             pb.ResetCircuitBreakerRequest(provider=provider))
        return visit.redirect("/ui/providers", f"The breaker of {provider} is reset (closed).")


def _reveal(visit: Visit, tenant_id: str, name: str, secret: str, notice: str) -> Response:
    visit.session.reveal = Reveal(tenant_id, name, secret)
    return visit.redirect(_tenants_url(tenant_id, "/keys"), notice)


def _limits(tenant: pb.Tenant) -> list[str]:
    """The tenant's limits, as ``Burst: 20``."""
    shown = []
    for field in LIMITS:
        if tenant.limits.HasField(field.name):
            value = getattr(tenant.limits, field.name)
            shown.append(f"{field.label}: {fmt.count(value) if field.whole else f'{value:g}'}")
    return shown


def _budgets(tenant: pb.Tenant) -> tuple[str, list[str]]:
    """The tenant's budget (``$50.00 / day``; empty: none) and its models' budgets
    (``gpt-4o: $5.00 / day``)."""
    every = per(tenant.budget_period)
    own = (f"{fmt.money(tenant.monthly_budget_usd)} / {every}"
           if tenant.HasField("monthly_budget_usd") else "")
    return own, [f"{model}: {fmt.money(usd)} / {every}"
                 for model, usd in sorted(tenant.model_budgets.items())]


def _key_budget(key: pb.ApiKey) -> str:
    """The key's own budget, ``$5.00 / day``; empty: none."""
    if not key.HasField("monthly_budget_usd"):
        return ""
    return f"{fmt.money(key.monthly_budget_usd)} / {per(key.budget_period)}"


def _key_state(key: pb.ApiKey, now: float) -> str:
    if key.HasField("revoked_at"):
        return "revoked"
    if key.HasField("expires_at") and _seconds(key.expires_at) <= now:
        return "expired"
    return "active"


async def _models(visit: Visit) -> list[str]:
    """Every routable model, for the tenant form's hint (none when the call fails)."""
    try:
        answer = await visit.api.call(visit.api.gateway.ListModels, gw.ListModelsRequest())
    except ApiError:
        return []
    return sorted(m.id for m in answer.models)
