"""The grpc.aio core: servicers, interceptors, health, reflection."""

from gateway.service.server import CoreServer, create_server

__all__ = ["CoreServer", "create_server"]
