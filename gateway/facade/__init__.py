"""The REST facade: OpenAI-compatible HTTP in front of the gRPC core.

It is a client of the core (generated stubs, its translators, its error mapping)
and imports nothing of routing, resilience or providers, so it runs unchanged in
its own process (``gateway serve --only http``).
"""

from gateway.facade.app import create_app
from gateway.lifecycle import DrainState

__all__ = ["DrainState", "create_app"]
