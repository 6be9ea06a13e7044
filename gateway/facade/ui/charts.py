"""Line charts drawn on the server: the geometry of an SVG chart from a series of values.

:func:`line_chart` places each series' values on a fixed 640 x 220 canvas (a gap where a
value is None), picks a round top for the y axis and labels a few times on the x axis; the
template ``_chart.html`` writes the SVG elements from it (Jinja escapes every label), so
the page needs no script and no chart library.

Example::

    chart = line_chart("Requests", [0.0, 60.0, 120.0], [("requests", [1, 4, 2])], fmt=str)
    chart.lines[0].segments  # ("64.0,196.0 ...",): polyline points, one string a segment
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway.facade.ui.fmt import clock

__all__ = ["Chart", "Line", "line_chart", "nice_top"]

WIDTH, HEIGHT = 480, 200
LEFT, RIGHT, TOP, BOTTOM = 66, 8, 12, 30
_X_LABELS = 5


@dataclass(frozen=True, slots=True)
class Line:
    """One series: its ``label``, its CSS class (``series-0``...), its polylines (a new one
    after each gap) and its points as ``(x, y)``."""

    label: str
    css: str
    segments: tuple[str, ...]
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    summary: str  # what a screen reader says for the picture
    lines: tuple[Line, ...]
    y_ticks: tuple[tuple[float, str], ...]  # (y, label), bottom up
    x_ticks: tuple[tuple[float, str, str], ...]  # (x, label, text-anchor), left to right
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM


def nice_top(value: float, whole: bool = False) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least ``value``
    (1 for nothing); ``whole``: of 2, 4, 10 times one, at least 2 (its half is whole)."""
    if whole:
        value = max(value, 2.0)
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (2.0, 4.0, 10.0) if whole else (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * power * (1 + 1e-9):
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


def line_chart(title: str, times: Sequence[float],
               series: Sequence[tuple[str, Sequence[float | None]]],
               fmt: Callable[[float], str], *, unit: str = "", whole: bool = False) -> Chart:
    """The chart of ``series`` (label, one value or None per time in ``times``); ``whole``
    numbers get whole ticks."""
    n = len(times)
    values = [v for _, vs in series for v in vs if v is not None]
    top_value = nice_top(max(values, default=0.0), whole)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_of(i: int) -> float:
        return round(LEFT + (plot_w * i / (n - 1) if n > 1 else plot_w / 2), 1)

    def y_of(v: float) -> float:
        return round(TOP + plot_h * (1 - min(v, top_value) / top_value), 1)

    lines = []
    for index, (label, vs) in enumerate(series):
        segments: list[str] = []
        current: list[str] = []
        points = []
        for i, v in enumerate(vs):
            if v is None:
                if current:
                    segments.append(" ".join(current))
                current = []
                continue
            point = (x_of(i), y_of(v))
            points.append(point)
            current.append(f"{point[0]},{point[1]}")
        if current:
            segments.append(" ".join(current))
        lines.append(Line(label, f"series-{index}", tuple(segments), tuple(points)))
    y_ticks = tuple((y_of(top_value * f), fmt(top_value * f)) for f in (0.0, 0.5, 1.0))
    picks = sorted({round(i * (n - 1) / (_X_LABELS - 1)) for i in range(_X_LABELS)}) if n else []
    x_ticks = tuple((x_of(i), clock(times[i]),
                     "start" if i == 0 else "end" if i == n - 1 else "middle") for i in picks)
    return Chart(title, _summary(title, series, fmt, unit), tuple(lines), y_ticks, x_ticks)


def _summary(title: str, series: Sequence[tuple[str, Sequence[float | None]]],
             fmt: Callable[[float], str], unit: str) -> str:
    parts = []
    for label, vs in series:
        known = [v for v in vs if v is not None]
        if known:
            parts.append(f"{label}: peak {fmt(max(known))}{unit}, latest {fmt(known[-1])}{unit}")
        else:
            parts.append(f"{label}: no data")
    return f"{title}. " + "; ".join(parts) + "."
