"""The models page: every name clients can ask for, from ``ListModelRoutes``: aliases with
their targets (provider, upstream model, weight), strategy, hedge, timeout and fallbacks,
then each provider's own ``provider/model`` names; each target with the price the gateway
charges for it, per million tokens. Read only: the model table is the config file's.

Example::

    blueprint.add_url_rule("/models", "models", guarded(models))
"""

from __future__ import annotations

from llmgateway.v1 import admin_service_pb2 as pb
from quart import Response

from gateway.facade.ui.visit import Visit

__all__ = ["models"]


async def models(visit: Visit) -> Response:
    answer = await visit.api.call(visit.api.stub.ListModelRoutes, pb.ListModelRoutesRequest())
    aliases = [r for r in answer.routes if r.alias]
    direct = [r for r in answer.routes if not r.alias]
    return await visit.render("models.html", title="Models", aliases=aliases, direct=direct,
                              default_provider=answer.default_provider,
                              shares={r.name: _shares(r) for r in aliases})


def _shares(route: pb.ModelRoute) -> list[float]:
    """Each target's share of the traffic its weight asks for (weighted routing)."""
    total = sum(max(t.weight, 0.0) for t in route.targets)
    return [max(t.weight, 0.0) / total if total else 0.0 for t in route.targets]
