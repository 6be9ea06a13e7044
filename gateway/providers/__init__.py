"""Provider adapters: one module per provider over one shared transport."""

from gateway.providers.base import Provider
from gateway.providers.registry import build_providers

__all__ = ["Provider", "build_providers"]
