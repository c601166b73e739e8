"""``stormwatch dev``'s view: the board of incidents and what the terminal shows of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
from rich.console import Console

from pipeline.app.devview import (
    IncidentBoard,
    LiveDisplay,
    PlainDisplay,
    board_table,
    describe,
    page_state,
)
from pipeline.domain.schemas import (
    EscalationPage,
    EventType,
    Incident,
    IncidentEvent,
    IncidentStatus,
    PagedResponder,
    ResponderRef,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
PAGES = "http://127.0.0.1:6066/incidents"


def _event(
    etype: EventType, iid: str, version: int, minutes: float, **fields: object
) -> IncidentEvent:
    at = T0 + timedelta(minutes=minutes)
    inc = Incident(
        id=iid,
        status=fields.pop("status", IncidentStatus.open),  # type: ignore[arg-type]
        opened_at=T0,
        updated_at=at,
        version=version,
        **fields,  # type: ignore[arg-type]
    )
    return IncidentEvent(type=etype, incident=inc, at=at)


def _text(renderable: object, width: int = 160) -> str:
    console = Console(record=True, width=width, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_the_board_keeps_the_newest_state_of_each_incident() -> None:
    board = IncidentBoard()
    board.apply(_event(EventType.opened, "i1", 1, 0, root_cause="db", services=["db"]))
    board.apply(_event(EventType.escalated, "i1", 3, 6, root_cause="db", alert_count=9, page=True))
    board.apply(_event(EventType.updated, "i1", 2, 5, root_cause="db"))  # redelivered, older
    board.apply(_event(EventType.opened, "i2", 1, 7, root_cause="cache", page=False))
    assert [i.id for i in board.open()] == ["i1", "i2"]  # paged first
    assert board.incidents["i1"].alert_count == 9 and board.events == 4
    assert board.age(board.incidents["i1"]) == "7.0 min"  # on the event clock
    board.apply(
        _event(
            EventType.resolved,
            "i2",
            2,
            9,
            status=IncidentStatus.resolved,
            resolved_at=T0 + timedelta(minutes=9),
        )
    )
    board.apply(_event(EventType.merged, "i3", 4, 9, merged_into="i1"))
    assert [i.id for i in board.open()] == ["i1"]
    assert [i.id for i in board.recently_closed(5)] == ["i3", "i2"]
    board.apply(_event(EventType.reopened, "i2", 3, 10, root_cause="cache"))
    assert {i.id for i in board.open()} == {"i1", "i2"} and board.closed == ["i3"]


def test_the_table_shows_root_cause_services_alerts_age_and_paging() -> None:
    board = IncidentBoard()
    board.apply(
        _event(
            EventType.opened,
            "inc-1",
            1,
            4,
            root_cause="productcatalogservice",
            services=["checkoutservice", "frontend", "productcatalogservice", "recommendation"],
            alert_count=12,
            page=True,
        )
    )
    board.apply(_event(EventType.opened, "inc-2", 1, 4, root_cause="[red]x[/]", page=False))
    board.apply(_event(EventType.opened, "inc-3", 1, 4, root_cause="db", verdict="noise"))
    text = _text(board_table(board, PAGES))
    assert "open incidents: 3" in text
    row = next(line for line in text.splitlines() if "inc-1" in line)
    for cell in ("productcatalogservice", "checkoutservice, frontend", "+1", "12", "4.0 min"):
        assert cell in row, (cell, row)
    assert " page " in row and "opened" in row
    assert "[red]x[/]" in text  # markup in a root cause is shown, not interpreted
    assert "no page" in next(line for line in text.splitlines() if "inc-2" in line)
    assert "noise" in next(line for line in text.splitlines() if "inc-3" in line)
    assert page_state(board.incidents["inc-3"]) == "noise"


def test_the_live_display_redraws_and_the_plain_one_prints_lines() -> None:
    console = Console(record=True, width=140, color_system=None, force_terminal=True)
    live = LiveDisplay(console, PAGES)
    with live.running():
        live.status(10, 338)
        live.event(_event(EventType.opened, "inc-1", 1, 1, root_cause="db", page=True))
    out = console.export_text()
    assert "inc-1" in out and "alerts sent 10/338" in out and PAGES in out
    plain = Console(record=True, width=140, color_system=None)
    PlainDisplay(plain).event(_event(EventType.opened, "inc-9", 1, 3, root_cause="db"))
    line = plain.export_text()
    assert line.startswith("opened") and "inc-9" in line and "root cause db" in line
    assert "age   3.0 min" in line


def test_an_escalation_page_is_a_line_of_its_own_in_both_displays() -> None:
    ev = _event(EventType.escalated, "inc-4", 2, 5, root_cause="db", page=True)
    ev.escalation = EscalationPage(
        policy="payments",
        team="payments",
        step=2,
        steps=3,
        cycle=1,
        due_at=ev.at,
        next_at=ev.at + timedelta(minutes=10),
        paged=[PagedResponder(person="bob", name="Bob Brown", target="person:bob", reason="x")],
    )
    expected = (
        "escalated          inc-4  step 2/3 of policy payments (team payments): paged Bob Brown; "
        "next step in 10.0 min unless acknowledged"
    )
    plain = Console(record=True, width=160, color_system=None)
    PlainDisplay(plain).event(ev)
    assert plain.export_text().strip() == expected
    console = Console(record=True, width=160, color_system=None, force_terminal=True)
    live = LiveDisplay(console, PAGES)
    with live.running():
        live.event(ev)
        ev.escalation = msgspec.structs.replace(ev.escalation, paged=[], next_at=None, cycle=2)
        live.event(ev)
    out = console.export_text()
    assert expected in out
    again = "step 2/3 (pass 2) of policy payments (team payments): paged nobody (no one on call)"
    assert again in out
    # an escalated event without an escalation (severity raised) stays an ordinary line
    quiet = Console(record=True, width=160, color_system=None)
    PlainDisplay(quiet).event(_event(EventType.escalated, "inc-5", 1, 1, root_cause="db"))
    assert "root cause db" in quiet.export_text()


def test_the_top_recommended_responder_is_shown() -> None:
    top = ResponderRef(person="erin", score=0.9, reason="resolved 3 similar", team="web")
    board = IncidentBoard()
    board.apply(_event(EventType.opened, "inc-1", 1, 2, root_cause="db", responders=[top]))
    board.apply(_event(EventType.opened, "inc-2", 1, 2, root_cause="db"))
    text = _text(board_table(board, PAGES))
    assert "erin (web)" in next(line for line in text.splitlines() if "inc-1" in line)
    assert "erin" not in next(line for line in text.splitlines() if "inc-2" in line)
    line = describe(_event(EventType.opened, "inc-1", 1, 2, root_cause="db", responders=[top]))
    assert line.plain.endswith("responder erin (web)")
