"""HTML of the incident pages (Jinja2 templates, every value escaped): pure, no I/O.

Alert fields (ids, services, names, labels, annotations, and whatever the record carries)
come from whoever sends alerts: the templates never mark anything safe, only ``http(s)``
URLs become links, and the pages carry no script at all (the web layer also forbids scripts
with a Content-Security-Policy).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
import msgspec

from pipeline.app.pages.view import IncidentView, ListView, fmt_time
from pipeline.domain.incident_graph import (
    NODE_H,
    NODE_W,
    EdgeKind,
    Flow,
    GraphEdge,
    GraphNode,
    Role,
)
from pipeline.domain.remediation.audit import AuditRecord
from pipeline.domain.remediation.audit import decode_record as decode_audit

#: list-of-objects values show as a table when their objects share at most this many keys
MAX_TABLE_COLUMNS = 8
_DRAW_ORDER = {EdgeKind.context: 0, EdgeKind.incident: 1, EdgeKind.cause: 2}


def clip(text: str, n: int) -> str:
    """``text`` cut to ``n`` characters (an ellipsis marks the cut)."""
    return text if len(text) <= n else text[: n - 1] + "…"


def from_epoch(t: float) -> datetime:
    """Epoch seconds (audit records' ``at``) as an aware UTC datetime."""
    return datetime.fromtimestamp(t, UTC)


def url_id(incident_id: str) -> str:
    """An incident id as one path segment."""
    return quote(incident_id, safe="")


def is_web_link(value: Any) -> bool:
    """Only absolute http(s) URLs become links (never ``javascript:`` and the like)."""
    if not isinstance(value, str) or any(c.isspace() for c in value.strip()):
        return False
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def table_columns(rows: Any) -> list[str]:
    """The columns of a list of objects shown as a table, or [] when it is not one."""
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        return []
    cols = list(dict.fromkeys(str(k) for r in rows for k in r))
    return cols if len(cols) <= MAX_TABLE_COLUMNS else []


def edge_path(points: Sequence[tuple[float, float]], flow: str = Flow.down) -> str:
    """SVG path data through ``points``: smooth curves between layers (vertical ones when
    layers are rows, horizontal when they are columns), an arc between two services of one
    layer (over the top of a row, out to the right of a column)."""
    (x0, y0), rest = points[0], points[1:]
    d = [f"M{x0:g},{y0:g}"]
    down = flow == Flow.down
    if len(points) == 2 and abs((points[1][1] - y0) if down else (points[1][0] - x0)) < 1:
        x1, y1 = points[1]
        lift = min(60.0, 18 + abs((x1 - x0) if down else (y1 - y0)) / 6)
        if down:
            d.append(f"C{x0:g},{y0 - lift:g} {x1:g},{y1 - lift:g} {x1:g},{y1:g}")
        else:
            d.append(f"C{x0 + lift:g},{y0:g} {x1 + lift:g},{y1:g} {x1:g},{y1:g}")
        return " ".join(d)
    px, py = x0, y0
    for x, y in rest:
        if down:
            mid = (py + y) / 2
            d.append(f"C{px:g},{mid:g} {x:g},{mid:g} {x:g},{y:g}")
        else:
            mid = (px + x) / 2
            d.append(f"C{mid:g},{py:g} {mid:g},{y:g} {x:g},{y:g}")
        px, py = x, y
    return " ".join(d)


def draw_order(edges: Iterable[GraphEdge]) -> list[GraphEdge]:
    """Edges to draw, the important ones last (on top)."""
    return sorted(edges, key=lambda e: _DRAW_ORDER[e.kind])


def node_sub(n: GraphNode) -> str:
    """The second line of a service's box."""
    alerts = f"{n.alerts} alert{'s' if n.alerts != 1 else ''}"
    if n.role is Role.root:  # bold capitals: with the firing count it overflowed the box
        return f"ROOT CAUSE · {alerts}" if n.alerts else "ROOT CAUSE · silent"
    if n.firing:
        alerts += f", {n.firing} firing"
    if n.role is Role.candidate:
        score = f"score {n.score:.2f}" if n.score is not None else "candidate"
        return f"{score} · {alerts}" if n.alerts else f"{score} · silent"
    if n.role is Role.neighbour:
        return "no alerts" if n.in_topology else "not in topology"
    return alerts + (" · symptom" if n.suppressed else "")


def node_title(n: GraphNode) -> str:
    """The tooltip of a service's box."""
    what = {
        Role.root: "root cause",
        Role.candidate: f"root-cause candidate #{n.rank}",
        Role.alerting: "alerting service",
        Role.neighbour: "neighbour without alerts",
    }[n.role]
    lines = [f"{n.name}: {what}", node_sub(n)]
    if n.suppressed:
        lines.append("its alerts are suppressed as symptoms of the root cause")
    if not n.in_topology:
        lines.append("not in the topology: drawn unconnected")
    return "\n".join(lines)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pipeline.app.pages", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        clip=clip,
        urlid=url_id,
        time=fmt_time,
        epoch=from_epoch,
        edge_path=edge_path,
        draw_order=draw_order,
        node_sub=node_sub,
        node_title=node_title,
        table_columns=table_columns,
    )
    env.tests["weblink"] = is_web_link
    env.globals.update(node_w=NODE_W, node_h=NODE_H)
    return env


_env = _environment()


def incident_html(view: IncidentView, remediation: Sequence[AuditRecord] = ()) -> str:
    """The incident's page; ``remediation``: its audit trail (the diagnostics' output, actions,
    refusals), shown under the runbook."""
    return _env.get_template("incident.html").render(view=view, remediation=remediation)


def remediation_rows(trail: Iterable[bytes]) -> list[AuditRecord]:
    """The audit records of ``trail`` that decode (an unreadable one is skipped)."""
    rows = []
    for raw in trail:
        try:
            rows.append(decode_audit(raw))
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
    return rows


def list_html(view: ListView, limit: int, max_limit: int) -> str:
    return _env.get_template("incidents.html").render(view=view, limit=limit, max_limit=max_limit)


def error_html(status: int, title: str, message: str, hint: str = "") -> str:
    return _env.get_template("error.html").render(
        status=status, title=title, message=message, hint=hint
    )
