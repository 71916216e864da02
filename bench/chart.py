"""Draws one bench/run as an SVG chart, written as plain text (no plotting
library): for each scenario, its rate as a share of what bounds it (the HTTP
ceiling, the bcrypt bound, or for import_hashes its 5,000 rows/s target)
and its p99 latency beside it on a log scale. Every scenario ran several
times: the solid bar is the median, the lighter bar behind it reaches the
largest run, and a whisker spans the smallest to the largest. The targets'
PASS/FAIL/SKIP lines are listed below the bars."""
import math
from xml.sax.saxutils import escape

ROW = 22
LABEL_W = 230
RATE_W = 420
GAP = 150
P99_W = 300
TOP = 86
MAX_SHARE = 1.5  # bars are clipped here
P99_MIN, P99_MAX = 0.1, 10000.0  # ms, log scale
COLORS = {  # (median, the lighter bar behind it up to the largest run)
    "ceiling": ("#3b78c4", "#b9d0ec"),
    "bcrypt": ("#e08a1e", "#f5d3a6"),
    "target": ("#2e8b57", "#b5dcc5"),
    "p99": ("#8a8a8a", "#d4d4d4"),
}
STATUS = {"PASS": "#1a7f37", "FAIL": "#c62828", "SKIP": "#888"}


def _text(x, y, s, size=12, anchor="start", fill="#222", weight="normal"):
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'fill="{fill}" font-weight="{weight}">{escape(s)}</text>')


def _rect(x, y, w, h, fill):
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{h:.1f}" fill="{fill}"/>'


def _line(x1, y1, x2, y2, stroke="#888", dash="", width=1):
    d = f' stroke-dasharray="{dash}"' if dash else ""
    return (f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}" '
            f'stroke-width="{width}"{d}/>')


def _p99_x(ms, x0):
    ms = min(max(ms, P99_MIN), P99_MAX)
    span = math.log10(P99_MAX) - math.log10(P99_MIN)
    return x0 + P99_W * (math.log10(ms) - math.log10(P99_MIN)) / span


def _spread_bar(x0, y, to_x, med, lo, hi, colors):
    """The lighter bar to the largest run, the median's solid bar over it,
    and a whisker from the smallest run to the largest."""
    dark, light = colors
    mid = y + ROW / 2
    return [_rect(x0, y + 3, to_x(hi) - x0, ROW - 6, light),
            _rect(x0, y + 3, to_x(med) - x0, ROW - 6, dark),
            _line(to_x(lo), mid, to_x(hi), mid, "#222", width=1.5),
            _line(to_x(lo), y + 6, to_x(lo), y + ROW - 6, "#222", width=1.5),
            _line(to_x(hi), y + 6, to_x(hi), y + ROW - 6, "#222", width=1.5)]


def svg(title, bars, checks, skipped=0):
    """bars: [{name, conns, runs, kind ("ceiling" | "bcrypt" | "target" |
    None), share: (median, min, max) or None, rate (text), p99: (median,
    min, max) or None (no run answered)}]; checks: [(label, "PASS" | "FAIL" | "SKIP", detail)];
    skipped: how many targets were not judged (not listed)."""
    rate_x = LABEL_W
    p99_x = LABEL_W + RATE_W + GAP
    width = p99_x + P99_W + 110
    bars_h = ROW * len(bars)
    height = TOP + bars_h + 40 + 16 * (len(checks) + 1) + 20
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif">',
           _rect(0, 0, width, height, "#fff"),
           _text(10, 20, title, 13, weight="bold"),
           _text(10, 38, "each scenario ran n times (interleaved rounds): solid bar = median, "
                 "lighter bar = largest run, whisker = smallest to largest run", 11, fill="#444"),
           _text(rate_x, TOP - 22, "rate as a share of the ceiling (blue), the bcrypt bound (orange) "
                 "or the 5,000 rows/s target (green)", 11),
           _text(p99_x, TOP - 22, "p99 latency, ms (log scale)", 11)]

    def share_x(share):
        return rate_x + RATE_W * min(max(share, 0), MAX_SHARE) / MAX_SHARE

    def p99_at(ms):
        return _p99_x(ms, p99_x)

    for share in (0.25, 0.5, 0.75, 1.0, 1.25):
        x = share_x(share)
        out.append(_line(x, TOP - 4, x, TOP + bars_h, "#444" if share == 1.0 else "#ddd",
                         "" if share == 1.0 else "3,3"))
        out.append(_text(x, TOP - 7, f"{share:.0%}", 10, "middle", "#666"))
    for ms in (1, 10, 100, 1000):
        x = p99_at(ms)
        out.append(_line(x, TOP - 4, x, TOP + bars_h, "#ddd", "3,3"))
        out.append(_text(x, TOP - 7, f"{ms}", 10, "middle", "#666"))
    for i, b in enumerate(bars):
        y = TOP + i * ROW
        label = f"{b['name']} (c{b['conns']}, n{b['runs']})"
        out.append(_text(LABEL_W - 8, y + 15, label, 12, "end"))
        if b["share"] is not None and b["kind"] in COLORS:
            med, lo, hi = b["share"]
            out += _spread_bar(rate_x, y, share_x, med, lo, hi, COLORS[b["kind"]])
            spread = f" [{lo:.0%}-{hi:.0%}]" if b["runs"] > 1 else ""
            out.append(_text(share_x(hi) + 4, y + 15, f"{b['rate']}  {med:.0%}{spread}", 11))
        else:
            out.append(_text(rate_x + 4, y + 15, f"{b['rate']}  (no reference)", 11, fill="#666"))
        if b["p99"] is None:
            out.append(_text(p99_x + 4, y + 15, "no answer", 11, fill="#666"))
            continue
        med, lo, hi = b["p99"]
        out += _spread_bar(p99_x, y, p99_at, med, lo, hi, COLORS["p99"])
        spread = f" [{lo:.1f}-{hi:.1f}]" if b["runs"] > 1 else ""
        out.append(_text(p99_at(hi) + 4, y + 15, f"{med:.1f}{spread}", 11))
    y = TOP + bars_h + 30
    for label, status, detail in checks:
        out.append(_text(10, y, status, 12, fill=STATUS[status], weight="bold"))
        out.append(_text(60, y, label + (f"  ({detail})" if detail else ""), 12))
        y += 16
    if skipped:
        out.append(_text(10, y, f"{skipped} targets skipped: their scenarios were not run", 12, fill="#888"))
    out.append("</svg>")
    return "\n".join(out) + "\n"
