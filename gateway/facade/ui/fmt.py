"""Numbers and times as the UI shows them: thousands separated, money in dollars with
the cents (or the first two significant digits of a smaller amount), latency in ms.
Registered as Jinja filters by :func:`gateway.facade.ui.ui_blueprint`.

Example::

    count(1234567) == "1,234,567"; money(0.000123) == "$0.00012"; ms(1234.5) == "1,235 ms"
"""

from __future__ import annotations

import math
import time

__all__ = ["FILTERS", "clock", "count", "money", "ms", "percent", "rate", "unit_price", "when"]


def count(value: float) -> str:
    """A whole number, thousands separated: ``12,345``."""
    return f"{round(value):,}"


def money(value: float) -> str:
    """Dollars: ``$1,234.50``; below a cent, two significant digits (``$0.00012``)."""
    if value == 0:
        return "$0.00"
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value >= 0.01:
        return f"{sign}${value:,.2f}"
    digits = min(10, 1 - math.floor(math.log10(value)))
    return f"{sign}${value:.{digits}f}"


def unit_price(value: float) -> str:
    """A price per unit, in full: ``$3.00``, ``$0.075`` (never rounded to the cent)."""
    if value == round(value, 2):
        return f"${value:,.2f}"
    return f"${value:,.8f}".rstrip("0")


def ms(value: float) -> str:
    """A latency: ``812 ms``, ``4.2 ms`` under ten, ``12,345 ms``."""
    return f"{value:,.1f} ms" if 0 < value < 10 else f"{value:,.0f} ms"


def rate(value: float) -> str:
    """A rate (per second): two decimals, more while they would all be zero."""
    if value == 0 or abs(value) >= 0.01:
        return f"{value:,.2f}"
    return f"{value:.{min(8, 1 - math.floor(math.log10(abs(value))))}f}"


def percent(value: float) -> str:
    """A fraction as a percentage with one decimal: ``0.125`` -> ``12.5%``."""
    return f"{value * 100:.1f}%"


def when(seconds: float) -> str:
    """A moment in UTC, to the second: ``2026-12-07 13:04:05 UTC``."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def clock(seconds: float) -> str:
    """A time of day in UTC: ``13:04``."""
    return time.strftime("%H:%M", time.gmtime(seconds))


FILTERS = {"count": count, "money": money, "ms": ms, "rate": rate, "percent": percent,
           "when": when, "clock": clock, "unit_price": unit_price}
