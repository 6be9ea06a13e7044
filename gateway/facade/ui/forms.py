"""The tenant form: what the page shows in each field, and the ``TenantSpec`` its answer
makes. An empty limit field means no limit of that kind.

Example::

    spec, problems = tenant_spec({"name": "acme", "burst": "20", "monthly_budget_usd": "50"})
    assert not problems and spec.limits.burst == 20 and spec.monthly_budget_usd == 50
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from llmgateway.v1 import admin_service_pb2 as pb

__all__ = ["FIELDS", "Field", "tenant_spec", "tenant_values"]


@dataclass(frozen=True, slots=True)
class Field:
    """A number field: its form name, label, whether it is whole, and help text."""

    name: str
    label: str
    whole: bool
    hint: str = ""


LIMITS = (
    Field("requests_per_second", "Requests per second", False, "Sustained rate."),
    Field("burst", "Burst", True, "Requests allowed at once above the rate."),
    Field("requests_per_minute", "Requests per minute", True),
    Field("tokens_per_minute", "Tokens per minute", True),
    Field("concurrent_requests", "Concurrent requests", True),
    Field("daily_token_quota", "Daily token quota", True),
)
BUDGET = Field("monthly_budget_usd", "Monthly budget (USD)", False,
               "Spend allowed per calendar month; requests past it are refused.")
FIELDS = (*LIMITS, BUDGET)
_SPLIT = re.compile(r"[\s,]+")


def tenant_values(tenant: pb.Tenant) -> dict[str, str]:
    """The form's fields filled from ``tenant``."""
    values = {"name": tenant.name, "allowed_models": "\n".join(tenant.allowed_models),
              "default_provider": tenant.default_provider,
              "disabled": "on" if tenant.disabled else ""}
    for field in LIMITS:
        if tenant.limits.HasField(field.name):
            values[field.name] = _number(getattr(tenant.limits, field.name))
    if tenant.HasField("monthly_budget_usd"):
        values[BUDGET.name] = _number(tenant.monthly_budget_usd)
    return values


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def tenant_spec(form: Mapping[str, str]) -> tuple[pb.TenantSpec, list[str]]:
    """The spec the form's answer asks for, and what is wrong with it (by field label)."""
    problems: list[str] = []
    name = form.get("name", "").strip()
    if not name:
        problems.append("Name: required.")
    spec = pb.TenantSpec(name=name, default_provider=form.get("default_provider", "").strip(),
                         disabled=form.get("disabled") == "on")
    spec.allowed_models.extend(m for m in _SPLIT.split(form.get("allowed_models", "")) if m)
    for field in FIELDS:
        raw = form.get(field.name, "").strip().replace(",", "")
        if not raw:
            continue
        try:
            value: float = int(raw) if field.whole else float(raw)
        except ValueError:
            kind = "a whole number" if field.whole else "a number"
            problems.append(f"{field.label}: must be {kind}, got {raw!r}.")
            continue
        if not value >= 0 or value == float("inf"):
            problems.append(f"{field.label}: must be 0 or more.")
            continue
        try:
            if field is BUDGET:
                spec.monthly_budget_usd = value
            else:
                setattr(spec.limits, field.name, value)
        except ValueError:  # past the field's integer range
            problems.append(f"{field.label}: too large.")
    return spec, problems
