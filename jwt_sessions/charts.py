"""Plain SVG charts drawn on the server: no script, no CDN, nothing fetched, so the admin's
dashboard works offline and under a strict Content-Security-Policy.

Two shapes are enough for the dashboard: columns over time and labelled horizontal bars.
Every label goes through `format_html`, so a value from the database cannot inject markup.
Each mark carries a `<title>` (the browser shows it on hover, screen readers read it).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext

FONT = "font-family:-apple-system,'Segoe UI',system-ui,Roboto,sans-serif;font-size:12px"
AXIS_COLOUR, GRID_COLOUR, TEXT_COLOUR = "#999", "#e5e5e5", "#333"
DEFAULT_COLOUR = "#417690"  # the admin's own blue


@dataclass(frozen=True)
class Column:
    """One column of a time series: its value, its hover text, and a tick label under it
    ("" for none)."""

    value: int
    title: str
    tick: str = ""


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    colour: str = DEFAULT_COLOUR


def _n(value: float) -> str:
    """A coordinate with one decimal: short SVG, and exact enough at any zoom."""
    return f"{value:.1f}"


def _nice_ceiling(value: int) -> int:
    """The y-axis top: 1, 2 or 5 times a power of ten, at least `value` (and at least 1)."""
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if magnitude * step >= value:
                return magnitude * step
        magnitude *= 10


def column_chart(columns: Sequence[Column], label: str, *, width: int = 960,
                 height: int = 220) -> SafeString:
    """Columns over time (e.g. sessions opened per hour), with a y-axis top label and
    ticks under the columns that have one."""
    left, right, top, bottom = 40, 8, 12, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    ceiling = _nice_ceiling(max((c.value for c in columns), default=0))
    step = plot_w / max(len(columns), 1)
    bars = format_html_join("", (
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}">'
        "<title>{}</title></rect>"), (
        (_n(left + i * step + step * 0.1), _n(top + plot_h - c.value / ceiling * plot_h),
         _n(max(step * 0.8, 0.5)), _n(c.value / ceiling * plot_h), DEFAULT_COLOUR, c.title)
        for i, c in enumerate(columns)))
    ticks = format_html_join("", (
        '<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="{3}"/>'
        '<text x="{0}" y="{4}" fill="{5}">{6}</text>'), (
        (_n(left + i * step), top, top + plot_h + 4, GRID_COLOUR, height - 6, TEXT_COLOUR,
         c.tick)
        for i, c in enumerate(columns) if c.tick))
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" '
        'role="img" aria-label="{label}" style="{font};max-width:{w}px">'
        "<title>{label}</title>{ticks}"
        '<line x1="{l}" y1="{t}" x2="{r}" y2="{t}" stroke="{grid}"/>'
        '<line x1="{l}" y1="{base}" x2="{r}" y2="{base}" stroke="{axis}"/>'
        '<text x="{lt}" y="{tt}" text-anchor="end" fill="{text}">{ceiling}</text>'
        '<text x="{lt}" y="{base}" text-anchor="end" fill="{text}">0</text>'
        "{bars}</svg>",
        w=width, h=height, label=label, font=FONT, ticks=ticks, l=left, t=top,
        r=width - right, base=top + plot_h, grid=GRID_COLOUR, axis=AXIS_COLOUR,
        lt=left - 6, tt=top + 4, text=TEXT_COLOUR, ceiling=ceiling, bars=bars)


def bar_chart(bars: Sequence[Bar], label: str, *, width: int = 620,
              row_height: int = 26) -> SafeString:
    """Labelled horizontal bars with their values (e.g. active sessions by device type);
    "No data" when there is nothing to draw."""
    label_w, value_w = 280, 60  # room for "Ended by another service (Shared Signals)"
    plot_w = width - label_w - value_w
    height = max(len(bars), 1) * row_height + 4
    ceiling = max((bar.value for bar in bars), default=0) or 1
    rows = format_html_join("", (
        '<text x="{}" y="{}" text-anchor="end" fill="{}">{}</text>'
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}" rx="2">'
        "<title>{}: {}</title></rect>"
        '<text x="{}" y="{}" fill="{}">{}</text>'), (
        (label_w - 8, _n(i * row_height + row_height * 0.65), TEXT_COLOUR, bar.label,
         label_w, i * row_height + 4, _n(max(bar.value / ceiling * plot_w, 1)),
         row_height - 8, bar.colour, bar.label, bar.value,
         _n(label_w + bar.value / ceiling * plot_w + 6),
         _n(i * row_height + row_height * 0.65), TEXT_COLOUR, bar.value)
        for i, bar in enumerate(bars)))
    if not bars:
        rows = format_html('<text x="{}" y="{}" fill="{}">{}</text>', label_w,
                           row_height * 0.65, AXIS_COLOUR, gettext("No data"))
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" '
        'role="img" aria-label="{label}" style="{font};max-width:{w}px">'
        "<title>{label}</title>{rows}</svg>",
        w=width, h=height, label=label, font=FONT, rows=rows)
