#!/usr/bin/env python3
"""Draws docs/national-scale.svg from bench-national.sh results: wall time and peak memory of a
night's screening (and of its features alone, where measured), the state's first build and its
nightly update, against households.

    python3 scripts/chart-national.py OUT.svg HOUSEHOLDS=RESULTS.tsv [HOUSEHOLDS=RESULTS.tsv ...]

Standard library only (the figure is a plain SVG, readable in any browser and on GitHub).
"""
import sys

SERIES = [
    ("screen-state", "lantern screen: the whole night", "#d62728"),
    ("features", "features of one night (signal state)", "#1f77b4"),
    ("state-first-build", "state: first build", "#ff7f0e"),
    ("state-update-tonight", "state: tonight's update", "#2ca02c"),
]


def load(arg):
    n, path = arg.split("=", 1)
    rows = {}
    for line in open(path, encoding="utf-8"):
        parts = line.strip().split("\t")
        if len(parts) == 3:
            rows[parts[0]] = (float(parts[1]), float(parts[2]) / 1024 / 1024)
    return int(n), rows


def panel(x0, title, unit, points, index, width=420, height=300):
    """One chart: x = households (millions), y = value; returns SVG elements."""
    out = []
    xs = [n for n, _ in points]
    ys = [rows[k][index] for _, rows in points for k, _, _ in SERIES if k in rows]
    xmax = max(xs) / 1e6 * 1.1
    ymax = max(ys) * 1.15 if ys else 1
    left, top, w, h = x0 + 60, 40, width - 80, height - 90
    sx = lambda v: left + v / xmax * w
    sy = lambda v: top + h - v / ymax * h
    out.append(f'<text x="{x0 + width / 2}" y="22" text-anchor="middle" font-size="14">{title}</text>')
    out.append(f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" stroke="#333"/>')
    out.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + h}" stroke="#333"/>')
    for i in range(5):
        v = ymax * i / 4
        out.append(f'<text x="{left - 6}" y="{sy(v) + 4:.1f}" text-anchor="end" font-size="10">{v:.1f}</text>')
        out.append(f'<line x1="{left}" y1="{sy(v):.1f}" x2="{left + w}" y2="{sy(v):.1f}" stroke="#eee"/>')
    for n in xs:
        out.append(f'<text x="{sx(n / 1e6):.1f}" y="{top + h + 14}" text-anchor="middle" font-size="10">{n / 1e6:g}</text>')
    out.append(f'<text x="{left + w / 2}" y="{top + h + 30}" text-anchor="middle" font-size="11">households (millions)</text>')
    out.append(f'<text x="{x0 + 14}" y="{top + h / 2}" font-size="11" transform="rotate(-90 {x0 + 14} {top + h / 2})" text-anchor="middle">{unit}</text>')
    for k, label, colour in SERIES:
        pts = [(n / 1e6, rows[k][index]) for n, rows in points if k in rows]
        if not pts:
            continue
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in pts:
            out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}"/>')
    return out


def main():
    out_path = sys.argv[1]
    points = sorted(load(a) for a in sys.argv[2:])
    body = panel(0, "Wall time of one night", "seconds", points, 0)
    body += panel(440, "Peak memory (RSS)", "GiB", points, 1)
    for i, (_, label, colour) in enumerate(SERIES):
        y = 305
        x = 20 + i * 215
        body.append(f'<rect x="{x}" y="{y}" width="12" height="12" fill="{colour}"/>')
        body.append(f'<text x="{x + 16}" y="{y + 10}" font-size="11">{label}</text>')
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="880" height="330" '
        'font-family="sans-serif" style="background:#fff">'
        + "".join(body)
        + "</svg>\n"
    )
    open(out_path, "w", encoding="utf-8").write(svg)


if __name__ == "__main__":
    main()
