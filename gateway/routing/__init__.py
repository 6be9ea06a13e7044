"""Model names to provider deployments: aliases, weights, fallbacks."""

from gateway.routing.registry import ModelRegistry, Route, Target
from gateway.routing.router import Router

__all__ = ["ModelRegistry", "Route", "Router", "Target"]
