"""Inline SVG plots for the insights report: plain strings, no script, no external resource.

Every function returns one ``<svg>`` element sized in pixels, with text escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import networkx as nx
from markupsafe import escape

from pipeline.domain.insights.quality import RuleQuality
from pipeline.domain.insights.recurring import RecurringIncident
from pipeline.domain.insights.timing import Timing
from pipeline.domain.insights.topology import EdgeSuggestion, StaleEdge

FONT = 'font-family="system-ui,sans-serif" font-size="12"'
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def _svg(width: float, height: float, body: list[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{escape(label)}" {FONT}>'
        + "".join(body)
        + "</svg>"
    )


def _text(x: float, y: float, s: str, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {extra}>{escape(s)}</text>'


def rule_noise_bars(rules: Sequence[RuleQuality], limit: int = 15) -> str:
    """Horizontal bars: each rule's noise share (bar) and its lower bound (dark part), the
    rules to fix first on top; the number of pages at the right."""
    rows = list(rules[:limit])
    label_w, bar_w, row_h, top = 300.0, 360.0, 22.0, 28.0
    height = top + row_h * len(rows) + 10
    body = [
        _text(label_w, 16, "P(background) (light: noise share)", extra='fill="#444"'),
        _text(label_w + bar_w + 60, 16, "pages", "end", 'fill="#444"'),
    ]
    for i, q in enumerate(rows):
        y = top + i * row_h
        body.append(_text(label_w - 8, y + 14, f"{q.service} / {q.name}", "end"))
        body.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{bar_w}" height="{row_h - 6}" fill="#eee"/>'
        )
        color = "#d62728" if q.noisy else "#7f7f7f"
        body.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{bar_w * q.noise_share:.1f}" '
            f'height="{row_h - 6}" fill="{color}" fill-opacity="0.35"/>'
        )
        body.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{bar_w * q.noise_probability:.1f}" '
            f'height="{row_h - 6}" fill="{color}"/>'
        )
        body.append(_text(label_w + bar_w + 60, y + 14, str(q.pages), "end"))
    return _svg(label_w + bar_w + 70, height, body, "noise share per alert rule")


def _day(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")


def trend_lines(timings: Sequence[Timing], title: str, limit: int = 6) -> str:
    """MTTR per trend bucket for the keys with most incidents (one line each, minutes)."""
    series = [t for t in timings if any(p.mttr_s is not None for p in t.trend)][:limit]
    w, h, left, bottom, top = 640.0, 240.0, 56.0, 36.0, 24.0
    xs = sorted({p.bucket_start for t in series for p in t.trend})
    ys = [p.mttr_s / 60 for t in series for p in t.trend if p.mttr_s is not None]
    body = [_text(left, 14, title, extra='fill="#444"')]
    if not xs or not ys:
        body.append(_text(w / 2, h / 2, "no resolved incidents", "middle"))
        return _svg(w, h, body, title)
    y_max = max(ys) * 1.1 or 1.0
    plot_w = w - left - 170

    def px(x: float) -> float:
        return left + (plot_w * xs.index(x) / (len(xs) - 1) if len(xs) > 1 else plot_w / 2)

    def py(y: float) -> float:
        return h - bottom - (h - bottom - top) * y / y_max

    body.append(
        f'<line x1="{left}" y1="{h - bottom}" x2="{left + plot_w}" y2="{h - bottom}" '
        'stroke="#999"/>'
    )
    body.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h - bottom}" stroke="#999"/>')
    for frac in (0.0, 0.5, 1.0):
        body.append(_text(left - 6, py(y_max * frac) + 4, f"{y_max * frac:.0f}", "end"))
    body.append(_text(14, top - 6, "min", extra='fill="#444"'))
    for x in (xs[0], xs[-1]) if len(xs) > 1 else (xs[0],):
        body.append(_text(px(x), h - bottom + 16, _day(x)[:10], "middle"))
    for k, t in enumerate(series):
        color = PALETTE[k % len(PALETTE)]
        pts = [(px(p.bucket_start), py(p.mttr_s / 60)) for p in t.trend if p.mttr_s is not None]
        if len(pts) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            body.append(
                f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>'
            )
        body.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in pts)
        body.append(
            f'<rect x="{w - 160}" y="{top + k * 18}" width="10" height="10" fill="{color}"/>'
        )
        body.append(_text(w - 145, top + k * 18 + 9, f"{t.key} ({t.incidents})"))
    return _svg(w, h, body, title)


def recurrence_strip(items: Sequence[RecurringIncident], limit: int = 10) -> str:
    """One row per recurring signature: a tick at its first and last time, the count."""
    rows = list(items[:limit])
    w, label_w, row_h, top = 760.0, 320.0, 22.0, 24.0
    h = top + row_h * len(rows) + 24
    body: list[str] = []
    if not rows:
        return _svg(w, 40, [_text(10, 24, "no recurring incidents")], "recurring incidents")
    t0 = min(r.first_at for r in rows)
    t1 = max(r.last_at for r in rows)
    span = (t1 - t0) or 1.0
    plot_w = w - label_w - 50

    def px(t: float) -> float:
        return label_w + plot_w * (t - t0) / span

    for i, r in enumerate(rows):
        y = top + i * row_h + 11
        label = f"{r.root_cause}: {', '.join(r.alert_names) or '-'}"
        body.append(_text(label_w - 8, y + 4, label[:48], "end"))
        body.append(
            f'<line x1="{px(r.first_at):.1f}" y1="{y}" x2="{px(r.last_at):.1f}" y2="{y}" '
            'stroke="#1f77b4" stroke-width="6" stroke-opacity="0.4"/>'
        )
        body.append(_text(w - 40, y + 4, f"x{r.count}"))
    body.append(_text(label_w, h - 6, _day(t0), "start", 'fill="#444"'))
    body.append(_text(label_w + plot_w, h - 6, _day(t1), "end", 'fill="#444"'))
    return _svg(w, h, body, "recurring incidents over time")


def topology_findings(
    graph: nx.DiGraph,
    suggested: Sequence[EdgeSuggestion],
    stale: Sequence[StaleEdge],
    max_nodes: int = 60,
) -> str:
    """The services the findings concern and their neighbours, in layers (callers above);
    known edges grey, suggested edges red and dashed, likely stale edges orange and dotted."""
    g = nx.DiGraph(graph)
    focus: set[str] = set()
    for e in suggested:
        focus |= {e.caller, e.callee}
    for s in stale:
        if s.likely_stale:
            focus |= {s.caller, s.callee}
    if not focus:
        return _svg(400, 40, [_text(10, 24, "no topology findings")], "topology findings")
    for e in suggested:
        g.add_nodes_from([e.caller, e.callee])
    nodes = set(focus)
    for n in sorted(focus):
        nodes |= set(g.predecessors(n)) | set(g.successors(n))
    nodes = set(sorted(nodes, key=lambda n: (n not in focus, n))[:max_nodes])
    sub = g.subgraph(nodes).copy()
    for e in suggested:
        sub.add_edge(e.caller, e.callee)
    cond = nx.condensation(sub)
    layer_of: dict[str, int] = {}
    for depth, gen in enumerate(nx.topological_generations(cond)):
        for c in gen:
            for n in cond.nodes[c]["members"]:
                layer_of[n] = depth
    layers: dict[int, list[str]] = {}
    for n, d in layer_of.items():
        layers.setdefault(d, []).append(n)
    slot_w, layer_h, box_w, box_h = 190.0, 90.0, 170.0, 30.0
    width = max(len(v) for v in layers.values()) * slot_w + 20
    height = len(layers) * layer_h + 20
    pos: dict[str, tuple[float, float]] = {}
    for d, members in layers.items():
        members.sort()
        off = (width - len(members) * slot_w) / 2
        for i, n in enumerate(members):
            pos[n] = (off + i * slot_w + slot_w / 2, 20 + d * layer_h + box_h / 2)
    body = [
        '<defs><marker id="arr" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker>'
        "</defs>"
    ]
    stale_set = {(s.caller, s.callee) for s in stale if s.likely_stale}
    sugg_set = {(e.caller, e.callee) for e in suggested}
    for a, b in sorted(sub.edges):
        (x1, y1), (x2, y2) = pos[a], pos[b]
        y1 += box_h / 2 if y2 > y1 else -box_h / 2
        y2 -= box_h / 2 if y2 > y1 else -box_h / 2
        if (a, b) in sugg_set:
            style = 'stroke="#d62728" stroke-width="2.5" stroke-dasharray="7 4"'
        elif (a, b) in stale_set:
            style = 'stroke="#ff7f0e" stroke-width="2.5" stroke-dasharray="2 4"'
        else:
            style = 'stroke="#bbb" stroke-width="1.2"'
        body.append(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" {style} '
            'marker-end="url(#arr)"/>'
        )
    for n, (x, y) in sorted(pos.items()):
        fill = "#fde0dc" if n in focus else "#f4f4f4"
        body.append(
            f'<rect x="{x - box_w / 2:.1f}" y="{y - box_h / 2:.1f}" width="{box_w}" '
            f'height="{box_h}" rx="5" fill="{fill}" stroke="#888"/>'
        )
        body.append(_text(x, y + 4, n[:26], "middle"))
    return _svg(width, height, body, "topology findings")
