"""Small inline SVG charts for the HTML report (no JavaScript, no external files)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

_WIDTH, _HEIGHT = 440, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 12, 42, 56
_COLOURS = ("#3b6ea8", "#d9822b", "#4c9a5f", "#a8413b")


def _number(value: float) -> str:
    return f"{value:.0f}" if value >= 100 or value == int(value) else f"{value:.2f}".rstrip("0").rstrip(".")


def _text(x: float, y: float, content: str, css: str, anchor: str = "middle") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" class="{css}">{escape(content)}</text>'


def _rect(x: float, y: float, width: float, height: float, colour: str, tooltip: str = "") -> str:
    title = f"<title>{escape(tooltip)}</title>" if tooltip else ""
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" fill="{colour}">{title}</rect>'


def bar_chart(
    title: str,
    labels: Sequence[str],
    series: dict[str, Sequence[float | None]],
    *,
    unit: str = "",
    max_value: float | None = None,
) -> Markup:
    """Grouped vertical bars: one group per label, one bar per series; None draws no bar ("n/a")."""
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM
    baseline = _TOP + plot_h
    values = [v for bars in series.values() for v in bars if v is not None]
    top = max_value if max_value is not None else max(values, default=0.0) or 1.0
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {_HEIGHT}" '
        f'role="img" aria-label="{escape(title)}">',
        _text(_WIDTH / 2, 18, title, "chart-title"),
    ]
    for tick in range(5):
        y = baseline - plot_h * tick / 4
        parts.append(f'<line x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(_text(_LEFT - 6, y + 4, f"{_number(top * tick / 4)}{unit}", "tick", anchor="end"))
    slot = plot_w / max(1, len(labels))
    bar_w = slot * 0.8 / max(1, len(series))
    for index, label in enumerate(labels):
        x0 = _LEFT + slot * index + slot * 0.1
        for k, (name, bars) in enumerate(series.items()):
            value, x = bars[index], x0 + k * bar_w
            if value is None:
                parts.append(_text(x + bar_w / 2, baseline - 4, "n/a", "tick"))
                continue
            height = plot_h * min(value, top) / top
            tooltip = f"{label} · {name}: {_number(value)}{unit}"
            parts.append(_rect(x, baseline - height, bar_w * 0.92, height, _COLOURS[k % len(_COLOURS)], tooltip))
            parts.append(_text(x + bar_w / 2, baseline - height - 3, _number(value), "value"))
        parts.append(_text(x0 + slot * 0.4, baseline + 16, label, "tick"))
    if len(series) > 1:
        for k, name in enumerate(series):
            parts.append(_rect(_LEFT + k * 130, _HEIGHT - 18, 10, 10, _COLOURS[k % len(_COLOURS)]))
            parts.append(_text(_LEFT + k * 130 + 14, _HEIGHT - 9, name, "tick", anchor="start"))
    parts.append("</svg>")
    return Markup("".join(parts))
