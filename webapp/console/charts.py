"""Horizontal bar charts drawn on the server: the geometry of the statistics page's SVGs.

No chart library and no script: a page an operator opens on a NOC network without internet
must draw, and an SVG of a dozen rectangles is all a success rate or a p95 needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

WIDTH = 760
LABEL_WIDTH = 220
VALUE_WIDTH = 200
ROW_HEIGHT = 24
BAR_HEIGHT = 16


@dataclass(frozen=True)
class Part:
    """One piece of a bar: its value, CSS class and tooltip."""

    value: float
    css: str
    title: str


@dataclass(frozen=True)
class Item:
    label: str
    parts: Sequence[Part]
    value_label: str


@dataclass(frozen=True)
class Segment:
    x: float
    width: float
    css: str
    title: str


@dataclass(frozen=True)
class ChartRow:
    label: str
    y: float
    segments: list[Segment]
    value_label: str


@dataclass
class Chart:
    title: str
    width: int = WIDTH
    height: float = 0
    plot_x: float = LABEL_WIDTH
    plot_width: float = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    rows: list[ChartRow] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)


def bar_chart(
    title: str,
    items: Sequence[Item],
    *,
    scale_max: float | None = None,
    legend: Sequence[tuple[str, str]] = (),
) -> Chart:
    """Stacked horizontal bars, one per item, scaled to ``scale_max`` (default: the largest)."""
    chart = Chart(title=title, legend=list(legend))
    largest = max((sum(p.value for p in item.parts) for item in items), default=0.0)
    top = scale_max if scale_max is not None else largest
    y = 4.0
    for item in items:
        x = chart.plot_x
        segments = []
        for part in item.parts:
            width = part.value / top * chart.plot_width if top > 0 else 0.0
            if width > 0:
                segments.append(Segment(x, max(width, 1.5), part.css, part.title))
            x += width
        chart.rows.append(ChartRow(item.label, y, segments, item.value_label))
        y += ROW_HEIGHT
    chart.height = y + 4
    return chart
