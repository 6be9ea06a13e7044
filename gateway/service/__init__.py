"""The grpc.aio core: servicers, interceptors, health, reflection."""

from gateway.service.server import CoreServer, CoreServices, create_server

__all__ = ["CoreServer", "CoreServices", "create_server"]
