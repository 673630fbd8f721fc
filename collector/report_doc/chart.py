"""The trend chart as SVG, drawn here (no plotting library): rates 0–100 % over the
buckets, one line per series, the declared rate as a dashed line (the legend is the
page's: HTML wraps long names, SVG text does not).

A bucket without a rate (nothing judged) leaves a gap in its line rather than a drop to
zero. Every text is escaped; the caller gives the labels already formatted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["PALETTE", "Series", "trend_svg"]

PALETTE = ("#1f4e79", "#c0504d", "#4f9a3a", "#8064a2", "#e08a1e", "#2c9fae", "#7f7f7f")
"""Enterprise first, then the plants."""
DECLARED_COLOUR = "#b8860b"


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[float | None]
    """One per bucket, 0–1; None: no rate in that bucket."""
    colour: str
    width: float = 1.6


def _fmt(x: float) -> str:
    return f"{x:.1f}"


def _paths(series: Series, xs: Sequence[float], y: float, height: float) -> list[str]:
    """Polyline point lists, split where a value is missing."""
    runs: list[list[str]] = [[]]
    for x, value in zip(xs, series.values, strict=True):
        if value is None:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append(f"{_fmt(x)},{_fmt(y + height * (1 - max(0.0, min(1.0, value))))}")
    return [" ".join(run) for run in runs if run]


def trend_svg(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    declared: float | None = None,
    width: int = 680,
    height: int = 230,
    font_family: str = "sans-serif",
) -> str:
    """An SVG document (as text) of ``series`` over the buckets named by ``labels``."""
    left, right, top, bottom = 40.0, 16.0, 10.0, 24.0
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(labels)
    step = plot_w / max(1, n - 1)
    xs = [left + (i * step if n > 1 else plot_w / 2) for i in range(n)]
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" font-family="{escape(font_family)}" font-size="10">',
        f'<rect x="{left}" y="{top}" width="{_fmt(plot_w)}" height="{_fmt(plot_h)}" '
        'fill="#ffffff" stroke="#9a9a9a" stroke-width="0.8"/>',
    ]
    for tick in range(0, 101, 25):
        y = top + plot_h * (1 - tick / 100)
        out.append(
            f'<line x1="{left}" y1="{_fmt(y)}" x2="{_fmt(left + plot_w)}" y2="{_fmt(y)}" '
            'stroke="#e3e3e3" stroke-width="0.6"/>'
        )
        out.append(
            f'<text x="{left - 5}" y="{_fmt(y + 3.5)}" text-anchor="end" fill="#444">{tick}%</text>'
        )
    shown = max(1, -(-n // 12))  # at most about 12 labels on the axis
    for i, label in enumerate(labels):
        if i % shown:
            continue
        x = xs[i]
        out.append(
            f'<line x1="{_fmt(x)}" y1="{_fmt(top + plot_h)}" x2="{_fmt(x)}" '
            f'y2="{_fmt(top + plot_h + 4)}" stroke="#9a9a9a" stroke-width="0.6"/>'
        )
        out.append(
            f'<text x="{_fmt(x)}" y="{_fmt(top + plot_h + 15)}" text-anchor="middle" '
            f'fill="#444">{escape(label)}</text>'
        )
    if declared is not None:
        y = top + plot_h * (1 - max(0.0, min(1.0, declared)))
        out.append(
            f'<line x1="{left}" y1="{_fmt(y)}" x2="{_fmt(left + plot_w)}" y2="{_fmt(y)}" '
            f'stroke="{DECLARED_COLOUR}" stroke-width="1.2" stroke-dasharray="5,3"/>'
        )
    for s in reversed(series):  # the first (the enterprise) drawn last, on top
        for points in _paths(s, xs, top, plot_h):
            if " " not in points:  # a lone bucket: a dot
                cx, cy = points.split(",")
                out.append(f'<circle cx="{cx}" cy="{cy}" r="{s.width + 0.6}" fill="{s.colour}"/>')
                continue
            out.append(
                f'<polyline points="{points}" fill="none" stroke="{s.colour}" '
                f'stroke-width="{s.width}" stroke-linejoin="round"/>'
            )
    out.append("</svg>")
    return "\n".join(out)
