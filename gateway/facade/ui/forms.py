"""The UI's forms: what the tenant form shows in each field and the ``TenantSpec`` its
answer makes, and the key form's budget. An empty limit or budget field means none.

Example::

    spec, problems = tenant_spec({"name": "acme", "burst": "20", "monthly_budget_usd": "50",
                                  "budget_period": "daily", "model_budgets": "gpt-4o = 5"})
    assert not problems and spec.limits.burst == 20 and spec.model_budgets["gpt-4o"] == 5
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from llmgateway.v1 import admin_service_pb2 as pb
from llmgateway.v1 import budgets_pb2

__all__ = ["BUDGET", "KEY_BUDGET", "LIMITS", "PERIODS", "Field", "key_budget", "model_budgets",
           "per", "period_name", "tenant_spec", "tenant_values"]


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
# The API's field keeps "monthly" in its name whatever the period (docs/tenancy.md).
BUDGET = Field("monthly_budget_usd", "Budget (USD)", False,
               "Spend allowed per budget period (a calendar month, or a UTC day when the "
               "period is Daily); requests past it are refused.")
KEY_BUDGET = Field("monthly_budget_usd", "Budget (USD)", False,
                   "Optional: the key's own spend per period, on top of its tenant's.")
# (form value, label, enum): the first is the API's default.
PERIODS = (("monthly", "Monthly", budgets_pb2.BUDGET_PERIOD_MONTHLY),
           ("daily", "Daily", budgets_pb2.BUDGET_PERIOD_DAILY))
_PERIOD_NAMES = {budgets_pb2.BUDGET_PERIOD_UNSPECIFIED: "monthly",
                 **{enum: value for value, _, enum in PERIODS}}
_PER = {"monthly": "month", "daily": "day"}
_SPLIT = re.compile(r"[\s,]+")
_MODEL_BUDGETS = "Model budgets"


def period_name(period: budgets_pb2.BudgetPeriod) -> str:
    """``"monthly"`` or ``"daily"`` (unspecified is monthly)."""
    return _PERIOD_NAMES.get(period, "monthly")


def per(period: budgets_pb2.BudgetPeriod) -> str:
    """What a budget of ``period`` is counted per: ``"month"`` or ``"day"``."""
    return _PER[period_name(period)]


def tenant_values(tenant: pb.Tenant) -> dict[str, str]:
    """The form's fields filled from ``tenant``."""
    values = {"name": tenant.name, "allowed_models": "\n".join(tenant.allowed_models),
              "default_provider": tenant.default_provider,
              "disabled": "on" if tenant.disabled else "",
              "budget_period": period_name(tenant.budget_period),
              "model_budgets": "\n".join(f"{model} = {_number(usd)}" for model, usd
                                         in sorted(tenant.model_budgets.items()))}
    for field in LIMITS:
        if tenant.limits.HasField(field.name):
            values[field.name] = _number(getattr(tenant.limits, field.name))
    if tenant.HasField("monthly_budget_usd"):
        values[BUDGET.name] = _number(tenant.monthly_budget_usd)
    return values


def _number(value: float) -> str:
    """``value`` as a field shows it: in full, so that Save gives back the same number
    (``1234567.5``, never ``1.23457e+06``), without a trailing ``.0``."""
    if not isinstance(value, float):
        return str(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def tenant_spec(form: Mapping[str, str], current: pb.Tenant | None = None
                ) -> tuple[pb.TenantSpec, list[str]]:
    """The spec the form's answer asks for, and what is wrong with it (by field label).

    The spec replaces the tenant's whole: what ``current`` has that the form does not
    carry (its fallback providers; a field missing from the answer) is kept. Its provider
    credentials the admin API keeps itself when a spec names none."""
    problems: list[str] = []
    name = form.get("name", "").strip()
    if not name:
        problems.append("Name: required.")
    spec = pb.TenantSpec(name=name, default_provider=form.get("default_provider", "").strip(),
                         disabled=form.get("disabled") == "on")
    spec.allowed_models.extend(m for m in _SPLIT.split(form.get("allowed_models", "")) if m)
    for field in (*LIMITS, BUDGET):
        value = _amount(form.get(field.name, ""), field, problems)
        if value is None:
            continue
        try:
            if field is BUDGET:
                spec.monthly_budget_usd = value
            else:
                setattr(spec.limits, field.name, value)
        except ValueError:  # past the field's integer range
            problems.append(f"{field.label}: too large.")
    if current is not None:
        spec.fallback_providers.extend(current.fallback_providers)  # not on the form
    if "budget_period" in form:
        spec.budget_period = _period(form["budget_period"], "Budget period", problems)
    elif current is not None:
        spec.budget_period = current.budget_period
    if "model_budgets" in form:
        budgets, wrong = model_budgets(form["model_budgets"])
        spec.model_budgets.update(budgets)
        problems.extend(wrong)
    elif current is not None:
        spec.model_budgets.update(current.model_budgets)
    return spec, problems


def model_budgets(text: str) -> tuple[dict[str, float], list[str]]:
    """The model budgets of the form's text, one ``model = USD`` a line (blank lines
    skipped; none at all: no model budgets), and what is wrong with it, by line."""
    budgets: dict[str, float] = {}
    lines: dict[str, int] = {}
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        where = f"{_MODEL_BUDGETS}, line {number}"
        model, equals, usd = line.rpartition("=")
        model = model.strip()
        if not equals:
            problems.append(f"{where}: write it as model = USD, got {line!r}.")
        elif not model:
            problems.append(f"{where}: the model's name is missing.")
        elif model in lines:
            problems.append(f"{where}: {model} is already on line {lines[model]}.")
        else:
            lines[model] = number
            value = _amount(usd, Field("", f"{where} ({model})", False), problems,
                            required=True)
            if value is not None:
                budgets[model] = value
    return budgets, problems


def key_budget(form: Mapping[str, str]
               ) -> tuple[float | None, budgets_pb2.BudgetPeriod, list[str]]:
    """The key form's budget (``None``: none), its period, and what is wrong with them."""
    problems: list[str] = []
    budget = _amount(form.get(KEY_BUDGET.name, ""), KEY_BUDGET, problems)
    period = _period(form.get("budget_period", "monthly"), "Budget period", problems)
    return budget, period, problems


def _amount(raw: str, field: Field, problems: list[str], required: bool = False
            ) -> float | None:
    """The number ``raw`` says (``None`` when empty or wrong; wrong is in ``problems``)."""
    raw = raw.strip().removeprefix("$").replace(",", "")
    if not raw:
        if required:
            problems.append(f"{field.label}: the amount is missing.")
        return None
    try:
        value: float = int(raw) if field.whole else float(raw)
    except ValueError:
        kind = "a whole number" if field.whole else "a number"
        problems.append(f"{field.label}: must be {kind}, got {raw!r}.")
        return None
    if not 0 <= value < math.inf:
        problems.append(f"{field.label}: must be 0 or more.")
        return None
    return value


def _period(raw: str, label: str, problems: list[str]) -> budgets_pb2.BudgetPeriod:
    for value, _, enum in PERIODS:
        if raw == value:
            return enum
    problems.append(f"{label}: must be Monthly or Daily.")
    return budgets_pb2.BUDGET_PERIOD_MONTHLY
