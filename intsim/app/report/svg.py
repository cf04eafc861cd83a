"""The report's charts as inline SVG, drawn by hand (no plotting library).

Four kinds: :func:`line_chart` (lines with markers and optional error bars),
:func:`heatmap` (a grid of coloured cells with their values),
:func:`scatter_front` (points with a highlighted front joined by a line) and
:func:`bar_chart` (horizontal bars). Each returns one ``<svg>`` element as a
string; every text in it is escaped. Legends are not drawn inside the SVG:
:func:`legend_html` gives one as HTML, which wraps instead of overlapping the
plot. Text widths are estimated (:func:`text_width`), for a sans-serif font
at the sizes used here.
"""
from __future__ import annotations

import math
from html import escape

#: line colours (Okabe-Ito, then three more dark ones); cycled with DASHES
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#555555",
           "#8c564b", "#6a3d9a", "#000000")
DASHES = ("", "6 3", "2 3", "8 3 2 3")
FONT = 12
#: the heatmap's colour scale, 0 -> 1 (light yellow to dark red)
HEAT = ("#fff7bc", "#fee391", "#fec44f", "#fe9929", "#ec7014", "#cc4c02", "#8c2d04")
ZERO_FILL = "#f4f6f8"
EMPTY_FILL = "#ffffff"


def style(i: int) -> tuple[str, str]:
    """(colour, dash pattern) of the i-th line."""
    return PALETTE[i % len(PALETTE)], DASHES[(i // len(PALETTE)) % len(DASHES)]


def text_width(s: str, size: float = FONT) -> float:
    """Estimated width in px of ``s`` in a sans-serif font of ``size`` px."""
    return 0.6 * size * len(s)


def fmt_num(v: float) -> str:
    """A tick or cell value: integers bare, otherwise up to 3 significant digits."""
    if v is None or not math.isfinite(v):
        return "-"
    if v == int(v) and abs(v) < 1e6:
        return str(int(v))
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def tick_texts(ticks: list[float]) -> list[str]:
    """Tick labels with as many decimals as it takes to tell them apart (at most 6)."""
    for d in range(0, 7):
        texts = [f"{t:,.{d}f}" for t in ticks]
        if len(set(texts)) == len(texts) and all(
                abs(float(x.replace(",", "")) - t) <= 1e-9 * max(1.0, abs(t))
                for x, t in zip(texts, ticks)):
            return texts
    return [f"{t:.6g}" for t in ticks]


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    v = first
    while v < hi + step * 0.5:
        ticks.append(round(v, 10))
        v += step
        if len(ticks) > 50:
            break
    return ticks


def _heat(t: float) -> str:
    """The colour of ``t`` in [0, 1] on :data:`HEAT`."""
    t = min(max(t, 0.0), 1.0) * (len(HEAT) - 1)
    i = min(int(t), len(HEAT) - 2)
    f = t - i
    a, b = HEAT[i], HEAT[i + 1]
    rgb = [round(int(a[k:k + 2], 16) * (1 - f) + int(b[k:k + 2], 16) * f) for k in (1, 3, 5)]
    return "#" + "".join(f"{c:02x}" for c in rgb)


def heat_colour(v: float | None, vmax: float) -> tuple[str, str]:
    """(fill, text colour) of a heatmap cell: white for no value, grey for 0, else on
    the scale; white text on the dark end."""
    if v is None:
        return EMPTY_FILL, "#888888"
    if v <= 0:
        return ZERO_FILL, "#444444"
    t = v / vmax if vmax > 0 else 1.0
    return _heat(0.08 + 0.92 * t), ("#ffffff" if t > 0.6 else "#222222")


def _open(width: float, height: float, label: str, cls: str) -> str:
    return (f'<svg class="chart {cls}" width="{width:.0f}" '
            f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
            f'aria-label="{escape(label)}"><title>{escape(label)}</title>')


def _text(x, y, s, anchor="middle", size=FONT, extra="") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"'
            f'{extra}>{escape(str(s))}</text>')


class _Axes:
    """A linear (or log) mapping from data to pixels, with the frame and ticks."""

    def __init__(self, x0, y0, w, h, xr, yr, log_x=False):
        self.x0, self.y0, self.w, self.h = x0, y0, w, h
        self.xr, self.yr, self.log_x = xr, yr, log_x

    def _fx(self, x):
        return math.log10(x) if self.log_x else x

    def px(self, x):
        a, b = (self._fx(v) for v in self.xr)
        return self.x0 + (self._fx(x) - a) / ((b - a) or 1.0) * self.w

    def py(self, y):
        a, b = self.yr
        return self.y0 + self.h - (y - a) / ((b - a) or 1.0) * self.h

    def frame(self, xticks, yticks, x_label, y_label, xtick_text=None) -> list[str]:
        out = []
        xtick_text = xtick_text or tick_texts(xticks)
        for t, lab in zip(yticks, tick_texts(yticks)):
            y = self.py(t)
            out.append(f'<line x1="{self.x0:.1f}" y1="{y:.1f}" x2="{self.x0 + self.w:.1f}" '
                       f'y2="{y:.1f}" class="grid"/>')
            out.append(_text(self.x0 - 6, y + 4, lab, "end"))
        for i, t in enumerate(xticks):
            x = self.px(t)
            out.append(f'<line x1="{x:.1f}" y1="{self.y0 + self.h:.1f}" x2="{x:.1f}" '
                       f'y2="{self.y0 + self.h + 4:.1f}" class="tick"/>')
            out.append(_text(x, self.y0 + self.h + 17, xtick_text[i]))
        out.append(f'<rect x="{self.x0:.1f}" y="{self.y0:.1f}" width="{self.w:.1f}" '
                   f'height="{self.h:.1f}" class="frame"/>')
        out.append(_text(self.x0 + self.w / 2, self.y0 + self.h + 36, x_label))
        cy = self.y0 + self.h / 2
        out.append(_text(14, cy, y_label, extra=f' transform="rotate(-90 14 {cy:.1f})"'))
        return out


def _range(values, pad=0.05, floor=None, ceil=None):
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return 0.0, 1.0
    lo, hi = min(vals), max(vals)
    span = (hi - lo) or (abs(hi) or 1.0)
    lo, hi = lo - pad * span, hi + pad * span
    if floor is not None:
        lo = max(lo, floor)
    if ceil is not None:
        hi = min(hi, ceil)
    return lo, hi


def line_chart(series: list[dict], x_label: str, y_label: str, *, label: str,
               y_range: tuple[float, float] | None = None, x_ticks: list[float] | None = None,
               x_tick_text: list[str] | None = None, width: int = 640,
               height: int = 300) -> str:
    """Lines of ``series`` (dicts: "label", "xs", "ys", optional "err" (+- bars),
    "colour", "dash"); points with a value get a marker whose tooltip gives it."""
    xs = [x for s in series for x in s["xs"]]
    lows = [y - (e or 0) for s in series for y, e in
            zip(s["ys"], s.get("err") or [0] * len(s["ys"])) if y is not None]
    highs = [y + (e or 0) for s in series for y, e in
             zip(s["ys"], s.get("err") or [0] * len(s["ys"])) if y is not None]
    if y_range is None:
        lo, hi = _range(lows + highs, floor=0.0 if min(lows, default=0) >= 0 else None)
        yticks = nice_ticks(lo, hi)
        y_range = (yticks[0], yticks[-1])
    else:
        yticks = nice_ticks(*y_range)
        yticks = [t for t in yticks if y_range[0] - 1e-9 <= t <= y_range[1] + 1e-9]
    if x_ticks is None:
        x_ticks = nice_ticks(*_range(xs, pad=0.0))
    xr = (min(xs + x_ticks), max(xs + x_ticks)) if xs else (0.0, 1.0)
    if xr[0] == xr[1]:
        xr = (xr[0] - 1, xr[1] + 1)
    pad = (xr[1] - xr[0]) * 0.04
    left = 16 + 8 + max(text_width(t) for t in tick_texts(yticks)) + 8
    ax = _Axes(left, 12, width - left - 16, height - 12 - 46,
               (xr[0] - pad, xr[1] + pad), y_range)
    out = [_open(width, height, label, "line-chart")]
    out += ax.frame(x_ticks, yticks, x_label, y_label, x_tick_text)
    with_err = [k for k, s in enumerate(series) if any(s.get("err") or [])]
    for k, s in enumerate(series):
        colour, dash = s["colour"], s.get("dash", "")
        err = s.get("err") or [None] * len(s["ys"])
        # lines with error bars are shifted apart by a few pixels, so bars at one x
        # do not hide each other
        dx = ((with_err.index(k) - (len(with_err) - 1) / 2) * min(4.0, 24.0 / len(with_err))
              if k in with_err and len(with_err) > 1 else 0.0)
        pts = [(ax.px(x) + dx, ax.py(y), x, y, e) for x, y, e in zip(s["xs"], s["ys"], err)
               if y is not None and math.isfinite(y)]
        for px, py, _, y, e in pts:
            if e:
                y1, y2 = ax.py(y - e), ax.py(y + e)
                out.append(f'<path d="M{px:.1f},{y1:.1f}V{y2:.1f}M{px - 4:.1f},{y1:.1f}'
                           f'h8M{px - 4:.1f},{y2:.1f}h8" stroke="{colour}" fill="none" '
                           f'stroke-width="1.2"/>')
        if len(pts) > 1:
            d = "M" + " L".join(f"{px:.1f},{py:.1f}" for px, py, *_ in pts)
            out.append(f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="2"'
                       + (f' stroke-dasharray="{dash}"' if dash else "") + "/>")
        for px, py, x, y, e in pts:
            tip = f"{s['label']}: {x_label} {fmt_num(x)}, {y_label} {y:.2f}" + (
                f" +- {e:.2f}" if e else "")
            out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3.5" fill="{colour}">'
                       f'<title>{escape(tip)}</title></circle>')
    out.append("</svg>")
    return "".join(out)


def legend_html(entries: list[tuple[str, str, str]], href: list[str | None] | None = None) -> str:
    """A legend as HTML: (label, colour, dash) per entry, each with a line swatch;
    with ``href``, each label links to its anchor."""
    items = []
    for i, (lab, colour, dash) in enumerate(entries):
        sw = (f'<svg width="28" height="10" aria-hidden="true"><line x1="1" y1="5" x2="27" '
              f'y2="5" stroke="{colour}" stroke-width="2.5"'
              + (f' stroke-dasharray="{dash}"' if dash else "") + "/></svg>")
        text = escape(lab)
        if href and href[i]:
            text = f'<a href="{escape(href[i])}">{text}</a>'
        items.append(f"<li>{sw} {text}</li>")
    return f'<ul class="legend">{"".join(items)}</ul>'


def heatmap(rows: list[str], cols: list[str], values: dict, vmax: float, *, label: str,
            unit: str = "%") -> str:
    """A grid of ``rows`` x ``cols`` cells coloured by ``values[(row, col)]`` on
    [0, vmax] (None or absent: an empty cell marked '-'), each showing its value,
    with a colour bar below."""
    cw, ch = 86, 24
    left = max([text_width(r) for r in rows] + [40]) + 12
    top = 24
    width = left + cw * len(cols) + 12
    bar_y = top + ch * len(rows) + 16
    height = bar_y + 40
    width = max(width, left + 250)
    out = [_open(width, height, label, "heatmap")]
    for j, c in enumerate(cols):
        out.append(_text(left + cw * j + cw / 2, top - 8, c))
    for i, r in enumerate(rows):
        y = top + ch * i
        out.append(_text(left - 8, y + ch / 2 + 4, r, "end"))
        for j, c in enumerate(cols):
            v = values.get((r, c))
            fill, ink = heat_colour(v, vmax)
            x = left + cw * j
            tip = f"{r}, {c}: " + ("no value" if v is None else f"{v:.4g} {unit}")
            out.append(f'<g><title>{escape(tip)}</title><rect x="{x + 1}" y="{y + 1}" '
                       f'width="{cw - 2}" height="{ch - 2}" fill="{fill}" class="cell"/>'
                       + _text(x + cw / 2, y + ch / 2 + 4, "-" if v is None else _cell(v),
                               extra=f' style="fill:{ink}"') + "</g>")
    # colour bar: 0 .. vmax
    bw = 200
    n = 40
    for k in range(n):
        t = k / (n - 1)
        fill = _heat(0.08 + 0.92 * t)
        out.append(f'<rect x="{left + bw * k / n:.1f}" y="{bar_y}" width="{bw / n + 0.6:.1f}" '
                   f'height="10" fill="{fill}"/>')
    out.append(_text(left, bar_y + 24, "0", "start", 11))
    out.append(_text(left + bw, bar_y + 24, f"{fmt_num(vmax)} {unit}", "end", 11))
    out.append("</svg>")
    return "".join(out)


def _cell(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 0.1:
        return f"{v:.2f}"
    return f"{v:.1e}" if abs(v) < 0.01 else f"{v:.3f}"


def scatter_front(points: list[dict], front: list[int], x_label: str, y_label: str, *,
                  label: str, width: int = 640, height: int = 340) -> str:
    """Points (dicts: "x", "y", optional "xerr", "yerr", "label", "n" (number shown
    beside the point)); those of ``front`` filled and joined in order. The x axis is
    logarithmic when its values span more than a factor of 20."""
    xs = [p["x"] for p in points]
    ys = [p["y"] for p in points]
    log_x = bool(xs) and min(xs) > 0 and max(xs) / min(xs) > 20
    if log_x:
        lo, hi = math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs)))
        hi = max(hi, lo + 1)
        xticks = [10.0 ** k for k in range(lo, hi + 1)]
        xr = (xticks[0], xticks[-1])
    else:
        xticks = nice_ticks(*_range([x - (p.get("xerr") or 0) for x, p in zip(xs, points)]
                                    + [x + (p.get("xerr") or 0) for x, p in zip(xs, points)]))
        xr = (xticks[0], xticks[-1])
    yticks = nice_ticks(*_range([y - (p.get("yerr") or 0) for y, p in zip(ys, points)]
                                + [y + (p.get("yerr") or 0) for y, p in zip(ys, points)]))
    left = 16 + 8 + max(text_width(t) for t in tick_texts(yticks)) + 8
    ax = _Axes(left, 12, width - left - 20, height - 12 - 46, xr, (yticks[0], yticks[-1]),
               log_x=log_x)
    out = [_open(width, height, label, "scatter")]
    out += ax.frame(xticks, yticks, x_label + (" (log scale)" if log_x else ""), y_label,
                    [f"{t:g}" for t in xticks] if log_x else None)
    fr = [points[i] for i in front]
    if len(fr) > 1:
        d = "M" + " L".join(f"{ax.px(p['x']):.1f},{ax.py(p['y']):.1f}" for p in fr)
        out.append(f'<path d="{d}" fill="none" stroke="#d55e00" stroke-width="1.8" '
                   f'stroke-dasharray="5 3"/>')
    on_front = set(front)
    for i, p in enumerate(points):
        px, py = ax.px(p["x"]), ax.py(p["y"])
        if p.get("yerr"):
            out.append(f'<path d="M{px:.1f},{ax.py(p["y"] - p["yerr"]):.1f}'
                       f'V{ax.py(p["y"] + p["yerr"]):.1f}" stroke="#777" fill="none"/>')
        if p.get("xerr") and not log_x:
            out.append(f'<path d="M{ax.px(p["x"] - p["xerr"]):.1f},{py:.1f}'
                       f'H{ax.px(p["x"] + p["xerr"]):.1f}" stroke="#777" fill="none"/>')
        colour = "#d55e00" if i in on_front else "#0072b2"
        fill = colour if i in on_front else "#ffffff"
        tip = f"{p.get('label', '')}: {x_label} {p['x']:.4g}, {y_label} {p['y']:.2f}" + (
            " (Pareto front)" if i in on_front else "")
        out.append(f'<g><title>{escape(tip)}</title><circle cx="{px:.1f}" cy="{py:.1f}" r="5" '
                   f'fill="{fill}" stroke="{colour}" stroke-width="2"/>'
                   + (_text(px + 8, py - 6, p["n"], "start", 11) if "n" in p else "") + "</g>")
    out.append("</svg>")
    return "".join(out)


def bar_chart(items: list[tuple[str, float]], *, label: str, unit: str,
              width: int = 640, fmt=fmt_num) -> str:
    """Horizontal bars, one per (label, value), the value written after the bar."""
    bh = 22
    left = max([text_width(k) for k, _ in items] + [30]) + 12
    right = 90
    height = bh * len(items) + 16
    vmax = max((v for _, v in items), default=0.0) or 1.0
    out = [_open(width, height, label, "bars")]
    for i, (k, v) in enumerate(items):
        y = 8 + bh * i
        w = max((width - left - right) * v / vmax, 0.0)
        out.append(_text(left - 8, y + bh / 2 + 4, k, "end"))
        out.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{bh - 6}" '
                   f'fill="#0072b2"><title>{escape(f"{k}: {fmt(v)} {unit}")}</title></rect>')
        out.append(_text(left + w + 6, y + bh / 2 + 4, f"{fmt(v)} {unit}", "start"))
    out.append("</svg>")
    return "".join(out)
