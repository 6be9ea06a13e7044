"""A small SVG line chart of the concurrency sweep, written by hand (no plotting library is a
dependency): throughput, and p50 and p99 latency, against concurrency, one colour per path,
log scales on both axes (the direct upstream is tens of times faster than anything in front
of it, so a linear axis would flatten every other line).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

# Path name -> [(concurrency, value)], in the order the legend lists them.
Series = dict[str, list[tuple[float, float]]]

COLORS = ("#1f77b4", "#7f7f7f", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")
PANEL_W, PANEL_H = 300, 230
MARGIN_L, MARGIN_T, MARGIN_B, GAP = 58, 46, 44, 34


@dataclass(frozen=True)
class Line:
    name: str
    color: str
    dashed: bool
    points: list[tuple[float, float]]


def _ticks(lo: float, hi: float) -> list[float]:
    """Ticks at 1, 2, 5 x 10^k within [lo, hi]; only the powers of ten when that is many."""
    ticks = [m * 10.0**k
             for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
             for m in (1, 2, 5) if lo <= m * 10.0**k <= hi]
    if len(ticks) > 9:
        ticks = [t for t in ticks if math.log10(t).is_integer()]
    return ticks


def _label(v: float) -> str:
    return f"{v / 1000:g}k" if v >= 1000 else f"{v:g}"


def _panel(x0: float, title: str, unit: str, lines: list[Line], xs: Sequence[float]) -> list[str]:
    values = [v for line in lines for _, v in line.points if v > 0]
    if not values:
        return []
    lo = 10 ** math.floor(math.log10(min(values)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    hi = hi if hi > lo else lo * 10
    xlo, xhi = min(xs), max(xs)
    xspan = math.log(xhi / xlo) or 1.0

    def px(c: float) -> float:
        return x0 + math.log(c / xlo) / xspan * PANEL_W

    def py(v: float) -> float:
        return MARGIN_T + PANEL_H - math.log(v / lo) / math.log(hi / lo) * PANEL_H

    bottom = MARGIN_T + PANEL_H
    out = [
        f'<text x="{x0 + PANEL_W / 2}" y="{MARGIN_T - 12}" text-anchor="middle" '
        f'font-weight="bold">{escape(title)}</text>',
    ]
    for t in _ticks(lo, hi):
        y = py(t)
        out.append(f'<line x1="{x0}" x2="{x0 + PANEL_W}" y1="{y:.1f}" y2="{y:.1f}" '
                   'stroke="#e5e5e5"/>')
        out.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end">{_label(t)}</text>')
    for c in xs:
        x = px(c)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{MARGIN_T}" y2="{bottom}" '
                   'stroke="#eeeeee"/>')
        out.append(f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{_label(c)}</text>')
    out += [
        f'<rect x="{x0}" y="{MARGIN_T}" width="{PANEL_W}" height="{PANEL_H}" fill="none" '
        'stroke="#999"/>',
        f'<text x="{x0 + PANEL_W / 2}" y="{bottom + 34}" text-anchor="middle">'
        "concurrent connections (log)</text>",
        f'<text transform="translate({x0 - 44},{MARGIN_T + PANEL_H / 2}) rotate(-90)" '
        f'text-anchor="middle">{escape(unit)}</text>',
    ]
    for line in lines:
        pts = [(px(c), py(v)) for c, v in sorted(line.points) if v > 0]
        if not pts:
            continue
        dash = ' stroke-dasharray="5,3"' if line.dashed else ""
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{line.color}" '
                   f'stroke-width="2"{dash}><title>{escape(line.name)}</title></polyline>')
        out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{line.color}"/>'
                for x, y in pts]
    return out


def render(title: str, subtitle: str, throughput: Series, p50: Series, p99: Series,
           xs: Sequence[float]) -> str:
    """Two panels side by side: req/s by path; p50 (solid) and p99 (dashed) latency by path.
    ``subtitle`` may hold several lines (the machine, the placement, the run)."""
    names = list(throughput)
    color = {name: COLORS[i % len(COLORS)] for i, name in enumerate(names)}
    rps = [Line(n, color[n], False, throughput[n]) for n in names]
    lat = [Line(f"{n} {q}", color[n], q == "p99", s.get(n, []))
           for n in names for q, s in (("p50", p50), ("p99", p99))]
    x1 = MARGIN_L + PANEL_W + GAP + MARGIN_L
    width = x1 + PANEL_W + 20
    legend_y = MARGIN_T + PANEL_H + MARGIN_B + 12
    notes = subtitle.split("\n")
    height = legend_y + 20 * ((len(names) + 1) // 2) + 10 + 15 * len(notes)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13" '
        f'font-weight="bold">{escape(title)}</text>',
        *_panel(MARGIN_L, "throughput", "requests per second (log)", rps, xs),
        *_panel(x1, "latency: p50 solid, p99 dashed", "milliseconds (log)", lat, xs),
    ]
    for i, name in enumerate(names):
        lx = MARGIN_L + (i % 2) * (x1 - MARGIN_L)
        ly = legend_y + 20 * (i // 2)
        out.append(f'<line x1="{lx}" x2="{lx + 24}" y1="{ly}" y2="{ly}" stroke="{color[name]}" '
                   'stroke-width="2"/>')
        out.append(f'<text x="{lx + 30}" y="{ly + 4}">{escape(name)}</text>')
    for i, note in enumerate(notes):
        y = height - 8 - 15 * (len(notes) - 1 - i)
        out.append(f'<text x="{MARGIN_L}" y="{y}" fill="#555">{escape(note)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
