"""Keeping answers coming when providers misbehave: breakers, retries, the pipeline."""

from gateway.resilience.breaker import Breaker, BreakerBoard, BreakerState, LocalBreaker, Outcome
from gateway.resilience.pipeline import Pipeline
from gateway.resilience.retry import RetryPolicy

__all__ = [
    "Breaker",
    "BreakerBoard",
    "BreakerState",
    "LocalBreaker",
    "Outcome",
    "Pipeline",
    "RetryPolicy",
]
