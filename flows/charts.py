"""Inline SVG charts for the monthly report, built in Python with no dependencies.

Every function returns `markupsafe.Markup`. Text is only ever put into the SVG through
`Markup.format`, which escapes each argument, so a label taken from the data (a
competence title, a region name) can never become markup. Numbers are formatted by the
caller (the report localises them) and are escaped the same way.

The charts scale with the page (`viewBox` plus `width="100%"`) and inherit the page's
font, so they stay crisp when printed or zoomed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

FONT_SIZE = 13
CHAR_WIDTH = 8.0  # a generous average advance of a 13 px sans-serif glyph (Cyrillic, DejaVu), for wrapping
MUTED = "#b8c2d1"
AXIS = "#c9d2df"
TEXT = "#1d2433"
SUBTLE = "#5a6679"
UP = "#2f855a"
DOWN = "#c53030"


@dataclass(frozen=True)
class Bar:
    """One bar: `value` in [0, 1] (a share) sets the length; `text` is printed beside it."""

    label: str
    value: float
    text: str
    color: str
    muted: bool = False  # low count: drawn pale and marked
    tooltip: str = ""


@dataclass(frozen=True)
class Change:
    """One row of a diverging chart: `value` in percentage points."""

    label: str
    value: float
    text: str


@dataclass(frozen=True)
class Segment:
    """One part of a 100 % stacked bar."""

    label: str
    value: float  # share in [0, 1]
    text: str
    color: str


def wrap(text: str, width: int, lines: int = 2) -> list[str]:
    """Split `text` into at most `lines` lines of about `width` characters (… when cut)."""
    words, out, line = text.split(), [], ""
    for word in words:
        candidate = f"{line} {word}".strip()
        if len(candidate) <= width or not line:
            line = candidate
            continue
        out.append(line)
        line = word
    if line:
        out.append(line)
    if len(out) > lines:
        out = out[:lines]
        out[-1] = out[-1][: max(1, width - 1)].rstrip(" ,;") + "…"
    return [s if len(s) <= width else s[: width - 1] + "…" for s in out] or [""]


def _label(x: float, y: float, lines: list[str], line_height: float, anchor: str = "end") -> Markup:
    """A (possibly two-line) text label vertically centred on `y`."""
    first = y - (len(lines) - 1) * line_height / 2
    spans = Markup("").join(
        Markup('<tspan x="{}" y="{}">{}</tspan>').format(_n(x), _n(first + i * line_height), line)
        for i, line in enumerate(lines)
    )
    return Markup('<text text-anchor="{}" dominant-baseline="middle" fill="{}">{}</text>').format(anchor, TEXT, spans)


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _svg(width: float, height: float, title: str, css_class: str, body: Markup) -> Markup:
    return Markup(
        '<svg class="chart {}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" width="100%" '
        'preserveAspectRatio="xMinYMin meet" role="img" aria-label="{}" font-size="{}"><title>{}</title>{}</svg>'
    ).format(css_class, _n(width), _n(height), title, FONT_SIZE, title, body)


def bar_chart(bars: Sequence[Bar], title: str, *, width: int = 760, label_width: int = 350,
              scale_max: float | None = None) -> Markup:
    """Horizontal bars with a wrapped label on the left and the value on the right."""
    if not bars:
        return Markup("")
    row_h, pad_top, gap = 34, 6, 8
    text_w = 64
    bar_x = label_width + gap
    bar_w_max = width - bar_x - text_w - gap
    top = scale_max or max((b.value for b in bars), default=0.0) or 1.0
    chars = int(label_width / CHAR_WIDTH)
    parts = []
    for i, bar in enumerate(bars):
        y = pad_top + i * row_h
        mid = y + row_h / 2
        length = max(0.0, min(1.0, bar.value / top)) * bar_w_max
        color = MUTED if bar.muted else bar.color
        tip = bar.tooltip or f"{bar.label}: {bar.text}"
        parts.append(Markup('<g class="bar-row"><title>{}</title>').format(tip))
        parts.append(_label(label_width, mid, wrap(bar.label, chars), 15))
        parts.append(Markup('<rect x="{}" y="{}" width="{}" height="{}" rx="2" fill="#eef2f7"/>').format(
            bar_x, _n(y + 8), _n(bar_w_max), row_h - 16))
        parts.append(Markup('<rect class="chart-bar" x="{}" y="{}" width="{}" height="{}" rx="2" fill="{}"/>').format(
            bar_x, _n(y + 8), _n(max(length, 1.5)), row_h - 16, color))
        parts.append(Markup('<text x="{}" y="{}" dominant-baseline="middle" fill="{}" font-weight="600">{}</text>')
                     .format(_n(bar_x + bar_w_max + gap), _n(mid), SUBTLE if bar.muted else TEXT, bar.text))
        parts.append(Markup("</g>"))
    height = pad_top * 2 + len(bars) * row_h
    return _svg(width, height, title, "bars", Markup("").join(parts))


def change_chart(changes: Sequence[Change], title: str, *, width: int = 760, label_width: int = 330) -> Markup:
    """Diverging bars around zero: rises to the right in green, falls to the left in red."""
    if not changes:
        return Markup("")
    row_h, pad_top, gap, text_w = 34, 6, 8, 96
    left = label_width + gap
    span = width - left - gap
    mid_x = left + span / 2
    half = span / 2 - text_w
    top = max(abs(c.value) for c in changes) or 1.0
    chars = int(label_width / CHAR_WIDTH)
    parts = []
    height = pad_top * 2 + len(changes) * row_h
    parts.append(Markup('<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="1"/>').format(
        _n(mid_x), pad_top, _n(mid_x), _n(height - pad_top), AXIS))
    for i, change in enumerate(changes):
        y = pad_top + i * row_h
        mid = y + row_h / 2
        length = max(1.5, abs(change.value) / top * half)
        rising = change.value >= 0
        x = mid_x if rising else mid_x - length
        parts.append(Markup('<g class="change-row"><title>{}: {}</title>').format(change.label, change.text))
        parts.append(_label(label_width, mid, wrap(change.label, chars), 15))
        parts.append(Markup('<rect class="chart-bar" x="{}" y="{}" width="{}" height="{}" rx="2" fill="{}"/>').format(
            _n(x), _n(y + 8), _n(length), row_h - 16, UP if rising else DOWN))
        text_x = mid_x + length + 6 if rising else mid_x - length - 6
        parts.append(Markup('<text x="{}" y="{}" text-anchor="{}" dominant-baseline="middle" fill="{}" '
                            'font-weight="600">{}</text>').format(
            _n(text_x), _n(mid), "start" if rising else "end", UP if rising else DOWN, change.text))
        parts.append(Markup("</g>"))
    return _svg(width, height, title, "changes", Markup("").join(parts))


def stacked_bar(segments: Sequence[Segment], title: str, *, width: int = 760) -> Markup:
    """One 100 % bar split into segments, with a legend underneath."""
    shown = [s for s in segments if s.value > 0]
    if not shown:
        return Markup("")
    bar_h, legend_row = 34, 22
    total = sum(s.value for s in shown)
    parts, x = [], 0.0
    for seg in shown:
        w = seg.value / total * width
        parts.append(Markup('<rect class="segment" x="{}" y="0" width="{}" height="{}" fill="{}">'
                            '<title>{}: {}</title></rect>').format(_n(x), _n(w), bar_h, seg.color, seg.label, seg.text))
        if w > 48:
            parts.append(Markup('<text x="{}" y="{}" text-anchor="middle" dominant-baseline="middle" fill="{}" '
                                'font-weight="600">{}</text>').format(_n(x + w / 2), bar_h / 2, ink_on(seg.color),
                                                                       seg.text))
        x += w
    columns = 3
    col_w = width / columns
    for i, seg in enumerate(shown):
        lx = (i % columns) * col_w
        ly = bar_h + 12 + (i // columns) * legend_row
        parts.append(Markup('<rect x="{}" y="{}" width="12" height="12" rx="2" fill="{}"/>').format(
            _n(lx), _n(ly), seg.color))
        parts.append(Markup('<text x="{}" y="{}" dominant-baseline="middle" fill="{}">{} — {}</text>').format(
            _n(lx + 18), _n(ly + 6), TEXT, seg.label, seg.text))
    rows = (len(shown) + columns - 1) // columns
    height = bar_h + 12 + rows * legend_row
    return _svg(width, height, title, "stacked", Markup("").join(parts))


def ink_on(background: str) -> str:
    """White or dark text, whichever reads better on a `#rrggbb` background."""
    r, g, b = (int(background[i:i + 2], 16) for i in (1, 3, 5))
    return "#ffffff" if 0.299 * r + 0.587 * g + 0.114 * b < 150 else TEXT


def heat_color(value: float, top: float) -> tuple[str, str]:
    """Background and text colour for a heat-map cell: white → deep blue as `value` nears `top`."""
    t = 0.0 if top <= 0 else max(0.0, min(1.0, value / top))
    lo, hi = (247, 250, 253), (31, 78, 156)
    rgb = tuple(round(a + (b - a) * t) for a, b in zip(lo, hi, strict=True))
    return f"#{rgb[0]:02x}{rgb[1]:02x}{rgb[2]:02x}", ("#ffffff" if t > 0.55 else TEXT)
