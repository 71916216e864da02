"""Draws one bench/run as an SVG chart, written as plain text (no plotting
library): for each scenario, its rate as a share of what bounds it (the HTTP
ceiling, or the bcrypt bound for login and register) with the absolute rate
printed on the bar, and its p99 latency beside it on a log scale. The
targets' PASS/FAIL lines are listed below the bars."""
import math
from xml.sax.saxutils import escape

ROW = 22
LABEL_W = 190
RATE_W = 420
GAP = 40
P99_W = 300
TOP = 70
MAX_SHARE = 1.2  # bars are clipped here; a share above 100% is noise
P99_MIN, P99_MAX = 0.1, 10000.0  # ms, log scale


def _text(x, y, s, size=12, anchor="start", fill="#222", weight="normal"):
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'fill="{fill}" font-weight="{weight}">{escape(s)}</text>')


def _rect(x, y, w, h, fill):
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{h:.1f}" fill="{fill}"/>'


def _line(x1, y1, x2, y2, stroke="#888", dash=""):
    d = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}"{d}/>'


def _p99_x(ms, x0):
    ms = min(max(ms, P99_MIN), P99_MAX)
    span = math.log10(P99_MAX) - math.log10(P99_MIN)
    return x0 + P99_W * (math.log10(ms) - math.log10(P99_MIN)) / span


def svg(title, rows, reference, checks):
    """rows: name -> {rps, ok_rps, p99, conns, ...}; reference(name) ->
    (label, rate) or None; checks: [(label, ok, detail)]."""
    names = list(rows)
    rate_x = LABEL_W
    p99_x = LABEL_W + RATE_W + GAP
    width = p99_x + P99_W + 90
    bars_h = ROW * len(names)
    height = TOP + bars_h + 40 + 16 * len(checks) + 20
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif">',
           _rect(0, 0, width, height, "#fff"),
           _text(10, 20, title, 13, weight="bold"),
           _text(rate_x, TOP - 22, "rate as a share of the ceiling (blue) or the bcrypt bound (orange)", 11),
           _text(p99_x, TOP - 22, "p99 latency, ms (log scale)", 11)]
    full = rate_x + RATE_W / MAX_SHARE
    for share in (0.25, 0.5, 0.75, 1.0):
        x = rate_x + RATE_W * share / MAX_SHARE
        out.append(_line(x, TOP - 4, x, TOP + bars_h, "#444" if share == 1.0 else "#ddd",
                         "" if share == 1.0 else "3,3"))
        out.append(_text(x, TOP - 7, f"{share:.0%}", 10, "middle", "#666"))
    for ms in (1, 10, 100, 1000):
        x = _p99_x(ms, p99_x)
        out.append(_line(x, TOP - 4, x, TOP + bars_h, "#ddd", "3,3"))
        out.append(_text(x, TOP - 7, f"{ms}", 10, "middle", "#666"))
    for i, name in enumerate(names):
        r = rows[name]
        y = TOP + i * ROW
        label = name if r.get("conns") is None else f"{name} (c{r['conns']})"
        out.append(_text(LABEL_W - 8, y + 15, label, 12, "end"))
        ref = reference(name)
        rate = r["ok_rps"] if ref and ref[0] == "bcrypt" else r["rps"]
        if ref and ref[1] and not math.isnan(ref[1]):
            share = rate / ref[1]
            color = "#e08a1e" if ref[0] == "bcrypt" else "#3b78c4"
            w = RATE_W * min(share, MAX_SHARE) / MAX_SHARE
            out.append(_rect(rate_x, y + 3, w, ROW - 6, color))
            out.append(_text(rate_x + w + 4, y + 15, f"{rate:,.0f}/s  {share:.0%}", 11))
        else:
            out.append(_text(rate_x + 4, y + 15, f"{rate:,.0f}/s  (peer, no reference)", 11, fill="#666"))
        p99 = r["p99"]
        w = _p99_x(p99, p99_x) - p99_x
        out.append(_rect(p99_x, y + 3, w, ROW - 6, "#8a8a8a"))
        out.append(_text(p99_x + w + 4, y + 15, f"{p99:.1f}", 11))
    out.append(_line(full, TOP + bars_h, full, TOP + bars_h + 4, "#444"))
    y = TOP + bars_h + 30
    for label, ok, detail in checks:
        mark, fill = ("PASS", "#1a7f37") if ok else ("FAIL", "#c62828")
        out.append(_text(10, y, mark, 12, fill=fill, weight="bold"))
        out.append(_text(60, y, label + (f"  ({detail})" if detail else ""), 12))
        y += 16
    out.append("</svg>")
    return "\n".join(out) + "\n"
