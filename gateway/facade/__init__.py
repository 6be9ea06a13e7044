"""The REST facade: OpenAI-compatible HTTP in front of the gRPC core.

Each REST operation is one handler (:mod:`~gateway.facade.handlers`,
:mod:`~gateway.facade.admin`, :mod:`~gateway.facade.ops`) in one route table
(:mod:`~gateway.facade.routes`), served by a lean ASGI adapter (:mod:`~gateway.facade.hot`)
and by Quart (:mod:`~gateway.facade.app`). It is a client of the core (generated stubs, its
translators, its error mapping) and imports nothing of service, tenancy, routing,
resilience or providers, so it runs unchanged in its own process
(``gateway serve --only http``).
"""

from gateway.facade.app import create_app
from gateway.lifecycle import DrainState

__all__ = ["DrainState", "create_app"]
