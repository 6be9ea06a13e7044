"""One page request of a signed-in admin, and how pages answer: a template rendered with
the page's frame (navigation, the session's CSRF token, its notice), or a redirect.

Example::

    async def tenants(visit: Visit) -> Response:
        answer = await visit.api.call(visit.api.stub.ListTenants, pb.ListTenantsRequest())
        return await visit.render("tenants.html", tenants=answer.tenants)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from quart import Response, render_template

from gateway.facade.ui.client import AdminApi
from gateway.facade.ui.sessions import Session

__all__ = ["NAV", "Page", "Visit", "see_other"]

# The navigation: (endpoint, label).
NAV = (("ui.overview", "Overview"), ("ui.tenants", "Tenants"), ("ui.usage", "Usage"),
       ("ui.requests", "Request log"), ("ui.providers", "Providers"), ("ui.models", "Models"),
       ("ui.playground", "Playground"))


@dataclass(slots=True)
class Visit:
    """What a page handler gets: the session, the admin API as this admin, the path's
    parameters, the query and, for a POST, the form (never empty then: it holds the CSRF
    token; a GET's is)."""

    session: Session
    api: AdminApi
    params: Mapping[str, str]
    args: Mapping[str, str]
    form: Mapping[str, str] = field(default_factory=dict)
    endpoint: str = ""

    async def render(self, template: str, status: int = 200, **context: Any) -> Response:
        """``template`` in the signed-in frame."""
        body = await render_template(
            template, nav=NAV, current=self.endpoint, csrf=self.session.csrf,
            signed_in=True, notice=self.session.take_notice(), **context)
        return Response(body, status=status, content_type="text/html; charset=utf-8")

    def redirect(self, location: str, notice: str = "") -> Response:
        """A 303 to ``location`` (Post/Redirect/Get), with ``notice`` on the page after."""
        if notice:
            self.session.notice = notice
        return see_other(location)


Page = Callable[[Visit], Awaitable[Response]]


def see_other(location: str) -> Response:
    """303 See Other: the browser GETs ``location`` next."""
    return Response("", status=303, headers={"Location": location})
