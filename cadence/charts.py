"""Server-side SVG charts for the admin dashboard (no scripts, no CDN)."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

BAR = "#79aec8"
LINE = "#ba2121"


def bar_line_chart(
    labels: Sequence[str],
    bars: Sequence[float],
    line: Sequence[float] | None = None,
    *,
    title: str,
    bar_label: str,
    line_label: str = "",
    width: int = 720,
    height: int = 240,
    percent: bool = False,
) -> SafeString:
    """Return an SVG with one bar per label and, when given, a line over the bars (own scale)."""
    left, right, top, bottom = 40, 40, 24, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(labels), 1)
    slot = plot_w / n
    bar_max = max([*bars, 0]) or 1
    line_max = max([*(line or []), 0]) or 1
    fmt = (lambda v: f"{v:.1f}%") if percent else (lambda v: f"{v:,.0f}")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" style="max-width:{width}px" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#888"/>',
        f'<text x="{left}" y="14" font-size="11" fill="{BAR}">■ {escape(bar_label)} (max {fmt(bar_max)})</text>',
    ]
    if line is not None:
        parts.append(
            f'<text x="{left + plot_w / 2}" y="14" font-size="11" fill="{LINE}">'
            f"● {escape(line_label)} (max {line_max:,.0f})</text>"
        )
    for i, (label, value) in enumerate(zip(labels, bars, strict=False)):
        h = plot_h * value / bar_max
        x = left + i * slot + slot * 0.15
        parts.append(
            f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" fill="{BAR}">'
            f"<title>{escape(label)}: {fmt(value)}</title></rect>"
        )
        parts.append(
            f'<text x="{left + i * slot + slot / 2:.1f}" y="{top + plot_h + 14}" font-size="10" '
            f'text-anchor="middle">{escape(label[:12])}</text>'
        )
    if line:
        points = " ".join(
            f"{left + i * slot + slot / 2:.1f},{top + plot_h - plot_h * v / line_max:.1f}" for i, v in enumerate(line)
        )
        parts.append(f'<polyline points="{points}" fill="none" stroke="{LINE}" stroke-width="2"/>')
        for i, v in enumerate(line):
            parts.append(
                f'<circle cx="{left + i * slot + slot / 2:.1f}" cy="{top + plot_h - plot_h * v / line_max:.1f}" r="3" '
                f'fill="{LINE}"><title>{escape(labels[i])}: {v:,.0f}</title></circle>'
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))
