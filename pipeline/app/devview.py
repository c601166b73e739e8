"""What ``stormwatch dev`` shows: a live table of open incidents (a terminal), or one line per
incident event (pipes, CI logs).

:class:`IncidentBoard` folds the events read from ``incidents`` into the latest state of
each incident; ages are measured on the event clock (the newest event's time), so a storm
replayed at 240x shows storm time. :class:`LiveDisplay` redraws a rich table of the open
incidents (root cause, services, alerts, age, paged or not, last change) and the recently
closed ones, with a line above it for each escalation step paged; :class:`PlainDisplay`
prints each event as a line.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from urllib.parse import quote

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from pipeline.domain.explain import fmt_delay
from pipeline.domain.schemas import Incident, IncidentEvent, IncidentStatus

#: open incidents shown at most (the rest are counted), and recently closed ones
MAX_OPEN_ROWS = 15
MAX_CLOSED_ROWS = 5
_EVENT_STYLE = {
    "opened": "bold red",
    "reopened": "bold red",
    "root_cause_changed": "yellow",
    "escalated": "magenta",
    "resolved": "green",
    "merged": "dim",
}


def page_state(inc: Incident) -> str:
    """``noise`` (a responder said so), ``page`` (it pages its responders) or ``no page``
    (below the paging threshold, held, or over before its page went out)."""
    if inc.verdict == "noise":
        return "noise"
    return "page" if inc.page else "no page"


def alerts_of(inc: Incident) -> int:
    return max(inc.alert_count, len(inc.alert_ids))


@dataclass
class IncidentBoard:
    """The latest state of every incident seen on ``incidents``."""

    incidents: dict[str, Incident] = field(default_factory=dict)
    last: dict[str, IncidentEvent] = field(default_factory=dict)
    #: event time of the newest event
    clock: datetime | None = None
    events: int = 0
    #: ids in the order they closed (resolved or merged), newest last
    closed: list[str] = field(default_factory=list)

    def apply(self, ev: IncidentEvent) -> None:
        """Fold one event in; an older version of an incident than the one known (a
        redelivery) changes nothing but the counts."""
        self.events += 1
        inc = ev.incident
        if self.clock is None or ev.at > self.clock:
            self.clock = ev.at
        known = self.incidents.get(inc.id)
        if known is not None and inc.version < known.version:
            return
        self.incidents[inc.id] = inc
        self.last[inc.id] = ev
        if inc.id in self.closed:
            self.closed.remove(inc.id)
        if not self.is_open(inc):
            self.closed.append(inc.id)

    @staticmethod
    def is_open(inc: Incident) -> bool:
        return inc.merged_into is None and inc.status is not IncidentStatus.resolved

    def open(self) -> list[Incident]:
        """Open incidents: paged ones first, then by alerts, most first."""
        live = [i for i in self.incidents.values() if self.is_open(i)]
        return sorted(live, key=lambda i: (not i.page, -alerts_of(i), i.opened_at, i.id))

    def recently_closed(self, n: int) -> list[Incident]:
        return [self.incidents[i] for i in reversed(self.closed[-n:])]

    def age(self, inc: Incident) -> str:
        end = inc.resolved_at or self.clock or inc.updated_at
        return fmt_delay((end - inc.opened_at).total_seconds())


def page_url(base: str, incident_id: str) -> str:
    return f"{base}/{quote(incident_id, safe='')}"


def _services(inc: Incident, n: int = 3) -> Text:
    names = inc.services
    text = Text(", ".join(names[:n]))
    if len(names) > n:
        text.append(f" +{len(names) - n}", style="dim")
    return text


def _page(inc: Incident) -> Text:
    state = page_state(inc)
    style = {"page": "bold white on red", "noise": "dim italic"}.get(state, "dim")
    return Text(f" {state} " if state == "page" else state, style=style)


def responder(inc: Incident) -> Text:
    """The top recommended responder (docs/oncall.md), or a dim dash without one."""
    if not inc.responders:
        return Text("-", style="dim")
    top = inc.responders[0]
    return Text(top.person + (f" ({top.team})" if top.team else ""), style="magenta")


def board_table(board: IncidentBoard, pages: str) -> RenderableType:
    """The open incidents and the recently closed ones, as rich renderables."""
    table = Table(
        title=f"open incidents: {sum(1 for _ in board.open())}",
        title_justify="left",
        title_style="bold",
        expand=True,
        header_style="bold",
    )
    table.add_column("incident", no_wrap=True, max_width=28, overflow="ellipsis")
    table.add_column("root cause", style="bold red", no_wrap=True)
    table.add_column("services", overflow="fold")
    table.add_column("alerts", justify="right")
    table.add_column("age", justify="right", no_wrap=True)
    table.add_column("page", no_wrap=True)
    table.add_column("responder", no_wrap=True, overflow="ellipsis", max_width=24)
    table.add_column("last change", overflow="ellipsis", no_wrap=True, max_width=44)
    rows = board.open()
    for inc in rows[:MAX_OPEN_ROWS]:
        ev = board.last[inc.id]
        link = page_url(pages, inc.id)
        table.add_row(
            Text(inc.id, style=f"link {link}"),
            escape(inc.root_cause or "?"),
            _services(inc),
            str(alerts_of(inc)),
            board.age(inc),
            _page(inc),
            responder(inc),
            Text(ev.type.value, style=_EVENT_STYLE.get(ev.type.value, "cyan")),
        )
    if len(rows) > MAX_OPEN_ROWS:
        table.add_row(Text(f"… {len(rows) - MAX_OPEN_ROWS} more", style="dim"))
    parts: list[RenderableType] = [table]
    closed = board.recently_closed(MAX_CLOSED_ROWS)
    if closed:
        done = Table(title="recently closed", title_justify="left", expand=True, show_header=False)
        done.add_column("incident", no_wrap=True, max_width=28, overflow="ellipsis")
        done.add_column("what", no_wrap=True)
        done.add_column("root cause", no_wrap=True)
        done.add_column("alerts", justify="right")
        done.add_column("lasted", justify="right")
        for inc in closed:
            what = f"merged into {inc.merged_into}" if inc.merged_into else inc.status.value
            done.add_row(
                Text(inc.id, style=f"dim link {page_url(pages, inc.id)}"),
                Text(what, style="green" if not inc.merged_into else "dim"),
                escape(inc.root_cause or "?"),
                str(alerts_of(inc)),
                board.age(inc),
                style="dim",
            )
        parts.append(done)
    return Group(*parts)


def describe(ev: IncidentEvent) -> Text:
    """One line for an incident event (plain mode)."""
    inc = ev.incident
    age = max(0.0, (ev.at - inc.opened_at).total_seconds())
    line = Text()
    line.append(f"{ev.type.value:<18}", style=_EVENT_STYLE.get(ev.type.value, "cyan"))
    line.append(f" {inc.id}  root cause ")
    line.append(inc.root_cause or "?", style="bold")
    line.append(f"  {len(inc.services)} services  {alerts_of(inc)} alerts  age {age / 60:5.1f} min")
    if not inc.page:
        line.append(f" ({page_state(inc)})", style="dim")
    if inc.responders:
        line.append("  responder ")
        line.append_text(responder(inc))
    return line


def describe_escalation(ev: IncidentEvent) -> Text | None:
    """One line for an escalation page (None: the event is not one): which step of whose
    policy paged whom, and when the next step follows."""
    esc = ev.escalation
    if esc is None:
        return None
    line = Text()
    line.append(f"{'escalated':<18}", style=_EVENT_STYLE["escalated"])
    line.append(f" {ev.incident.id}  step {esc.step}/{esc.steps}")
    if esc.cycle > 1:
        line.append(f" (pass {esc.cycle})")
    line.append(f" of policy {esc.policy} (team {esc.team}): paged ")
    names = ", ".join(p.name or p.person for p in esc.paged)
    line.append(names or "nobody (no one on call)", style="bold" if names else "bold red")
    if esc.next_at is not None:
        wait = max(0.0, (esc.next_at - esc.due_at).total_seconds())
        line.append(f"; next step in {fmt_delay(wait)} unless acknowledged", style="dim")
    return line


class Display(Protocol):
    def note(self, message: str) -> None: ...

    def event(self, ev: IncidentEvent) -> None: ...

    def status(self, sent: int, total: int) -> None: ...


class PlainDisplay:
    """One line per event: readable in CI logs and pipes."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def note(self, message: str) -> None:
        self.console.print(message, soft_wrap=True)

    def event(self, ev: IncidentEvent) -> None:
        self.console.print(describe_escalation(ev) or describe(ev), soft_wrap=True)

    def status(self, sent: int, total: int) -> None:
        pass


class LiveDisplay:
    """The open incidents as a table redrawn in place (a terminal)."""

    def __init__(self, console: Console, pages: str) -> None:
        self.console = console
        self.pages = pages
        self.board = IncidentBoard()
        self.sent = self.total = 0
        self._live: Live | None = None

    @contextmanager
    def running(self) -> Iterator[LiveDisplay]:
        with Live(
            self._render(), console=self.console, refresh_per_second=4, auto_refresh=True
        ) as live:
            self._live = live
            try:
                yield self
            finally:
                live.update(self._render(), refresh=True)
                self._live = None

    def note(self, message: str) -> None:
        self.console.print(message)

    def event(self, ev: IncidentEvent) -> None:
        self.board.apply(ev)
        paged = describe_escalation(ev)
        if paged is not None:  # printed above the table, which is redrawn below it
            self.console.print(paged)
        self._refresh()

    def status(self, sent: int, total: int) -> None:
        if (sent, total) != (self.sent, self.total):
            self.sent, self.total = sent, total
            self._refresh()

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render())

    def _render(self) -> RenderableType:
        b = self.board
        footer = Text(
            f"alerts sent {self.sent}/{self.total} · {b.events} incident events · "
            f"{len(b.closed)} closed · pages: {self.pages} · Ctrl-C stops",
            style="dim",
        )
        return Group(board_table(b, self.pages), footer)
