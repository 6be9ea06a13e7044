"""The gateway's HTTP server: Hypercorn's public pieces started by :func:`serve`, with
subclasses of Hypercorn's connection, protocol and task group for the gateway's own
connections (two defect fixes and two stream trims). No Hypercorn or h11 module or class is
changed; on versions other than :data:`PINNED` the gateway serves with plain Hypercorn.

Example::

    await serve(app, config, shutdown_trigger=stop.wait)
"""

from gateway.edge.serve import PINNED, serve, version_mismatch

__all__ = ["PINNED", "serve", "version_mismatch"]
