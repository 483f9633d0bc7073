#!/usr/bin/env python3
"""Draws throughput and p99 latency against clients from `pocket bench --json` output.

    python3 scripts/chart.py bench-results docs/bench-clients.svg

No dependencies: the SVG is written by hand (two panels, log2 x axis).
"""
import json
import math
import pathlib
import sys

src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "bench-results")
dst = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else "docs/bench-clients.svg")
points = []
for f in sorted(src.glob("clients-*.json")):
    r = json.loads(f.read_text())
    points.append((r["clients"], r["payments_per_s"], r["requests_per_s"], r["latency"]["p99_ms"], r["latency"]["p50_ms"]))
points.sort()
if not points:
    sys.exit(f"no clients-*.json in {src}")

W, H, PAD = 720, 300, 60


def panel(x0, title, ys, unit, colour, label_fmt):
    top = max(ys) * 1.15 or 1
    xs = [math.log2(p[0]) for p in points]
    xmax = max(xs) or 1
    px = lambda x: x0 + PAD + (W / 2 - PAD - 20) * (x / xmax)
    py = lambda y: H - PAD + 10 - (H - 2 * PAD) * (y / top)
    out = [f'<text x="{x0 + W / 4}" y="24" text-anchor="middle" font-size="15" font-weight="bold">{title}</text>']
    out.append(f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(xmax)}" y2="{py(0)}" stroke="#333"/>')
    out.append(f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(0)}" y2="{py(top)}" stroke="#333"/>')
    for i in range(5):
        v = top * i / 4
        out.append(f'<text x="{px(0) - 6}" y="{py(v) + 4}" text-anchor="end" font-size="11">{label_fmt(v)}</text>')
        out.append(f'<line x1="{px(0)}" y1="{py(v)}" x2="{px(xmax)}" y2="{py(v)}" stroke="#ddd"/>')
    for (c, *_), x in zip(points, xs):
        out.append(f'<text x="{px(x)}" y="{py(0) + 16}" text-anchor="middle" font-size="11">{c}</text>')
    out.append(f'<text x="{x0 + W / 4}" y="{H - 8}" text-anchor="middle" font-size="12">clients</text>')
    out.append(f'<text x="{x0 + 14}" y="{H / 2}" font-size="12" transform="rotate(-90 {x0 + 14} {H / 2})" text-anchor="middle">{unit}</text>')
    path = " ".join(f"{'M' if i == 0 else 'L'}{px(x):.1f},{py(y):.1f}" for i, (x, y) in enumerate(zip(xs, ys)))
    out.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2.5"/>')
    for x, y in zip(xs, ys):
        out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="4" fill="{colour}"/>')
        out.append(f'<text x="{px(x):.1f}" y="{py(y) - 9:.1f}" text-anchor="middle" font-size="11">{label_fmt(y)}</text>')
    return out


parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif">',
         f'<rect width="{W}" height="{H}" fill="#fff"/>']
parts += panel(0, "Payments per second", [p[1] for p in points], "payments/s", "#0b5cad", lambda v: f"{v:,.0f}")
parts += panel(W / 2, "p99 latency per request", [p[3] for p in points], "ms", "#a4161a", lambda v: f"{v:.1f}")
parts.append("</svg>")
dst.parent.mkdir(parents=True, exist_ok=True)
dst.write_text("\n".join(parts) + "\n")
print(f"wrote {dst} from {len(points)} runs")
