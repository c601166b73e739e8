"""The incident pages' HTML: what they show, and that nothing from an alert can run in them."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import msgspec
import pytest

from pipeline.app.pages.handlers import wants_html
from pipeline.app.pages.render import error_html, incident_html, is_web_link, list_html, node_sub
from pipeline.app.pages.view import (
    RecordError,
    decode_record,
    incident_view,
    list_view,
)
from pipeline.domain.event_view import EventLimits, encode_incident
from pipeline.domain.incident_graph import GraphNode, Role
from pipeline.domain.pipeline import AlertPipeline
from pipeline.domain.schemas import Alert, AlertStatus, Incident, Severity
from pipeline.domain.topology import Topology

ROOT = Path(__file__).resolve().parents[2]
BOUTIQUE = Topology.load(ROOT / "topologies" / "online-boutique.yaml")
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)
EVIL = '<script>document.body.dataset.pwned="1"</script>'
EVIL_ATTR = '"><img src=x onerror="document.body.dataset.pwned=2">'

# productcatalogservice saturates; its callers see latency; two of them recover
STORM = [
    ("productcatalogservice", "CPUSaturation", Severity.critical, 0, None),
    ("recommendationservice", "HighLatencyP99", Severity.warning, 30, 240),
    ("checkoutservice", "HighLatencyP99", Severity.warning, 40, None),
    ("frontend", "HighLatencyP99", Severity.critical, 60, 300),
    ("frontend", "ErrorRateHigh", Severity.error, 70, None),
]


def _alerts(evil: bool = False) -> list[Alert]:
    out = []
    for i, (service, name, sev, fired, resolved) in enumerate(STORM):
        labels = {"pod": f"{service}-0"}
        annotations = {"summary": f"{name} on {service}"}
        alert_id, alert_name = f"a-{i}", name
        if evil and service == "frontend":
            alert_id, alert_name = f"a-{i}{EVIL_ATTR}", f"{name}{EVIL}"
            labels["team"] = EVIL
            annotations["summary"] = EVIL
        for status, dt in (("firing", fired), ("resolved", resolved)):
            if dt is None:
                continue
            out.append(
                Alert(
                    id=alert_id if status == "firing" else f"{alert_id}-r",
                    source="test",
                    service=service,
                    name=alert_name,
                    severity=sev,
                    status=AlertStatus(status),
                    timestamp=T0 + timedelta(seconds=dt),
                    labels=labels,
                    annotations=annotations,
                )
            )
    return sorted(out, key=lambda a: a.timestamp)


def _incident(evil: bool = False) -> Incident:
    """The storm's incident as the worker last published it (still open)."""
    pipeline = AlertPipeline(BOUTIQUE)
    outcome = pipeline.process_in_event_time(_alerts(evil), {}, tick_s=1.0)
    last = {ev.incident.id: ev.incident for ev in outcome.events}
    (inc,) = [i for i in last.values() if not i.merged_into]
    return inc


def _record(inc: Incident, **extra: Any) -> bytes:
    record = encode_incident(inc, EventLimits())
    if not extra:
        return record
    doc = msgspec.json.decode(record)
    doc.update(extra)
    return msgspec.json.encode(doc)


def _page(record: bytes, members: int = 5) -> str:
    return incident_html(incident_view(decode_record(record), BOUTIQUE, NOW, members))


class _Tags(HTMLParser):
    """Every tag and attribute of a page, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def _tags(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


def _assert_inert(html: str) -> None:
    for tag, attrs in _tags(html):
        assert tag not in ("script", "img", "iframe", "object", "embed"), tag
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name, value)
            if name in ("href", "src", "xlink:href") and value:
                assert value.startswith(("/", "#", "http://", "https://", "url(")), value


def _svgs(html: str) -> list[ET.Element]:
    return [ET.fromstring(m) for m in re.findall(r"<svg\b.*?</svg>", html, flags=re.S)]


def test_the_page_shows_picture_explanation_timeline_and_counts() -> None:
    inc = _incident()
    assert inc.root_cause == "productcatalogservice"
    html = _page(_record(inc))
    assert 'Root cause <span class="rc">productcatalogservice</span>' in html
    for section in ("topology", "explanation", "timeline", "services", "counts", "changes"):
        assert f'id="{section}"' in html
    for service in ("productcatalogservice", "recommendationservice", "frontend"):
        assert f'data-service="{service}"' in html
    assert re.search(r'class="node root"[^>]*data-service="productcatalogservice"', html)
    assert 'data-service="paymentservice"' in html  # a quiet neighbour is drawn too
    assert inc.explanation.splitlines()[0] in html
    # the timeline: one lane per service, resolved alerts faded, firing ones with a tip
    assert html.count('class="lane-label') == 4
    assert 'class="bar warning resolved"' in html and 'class="firing-tip"' in html
    assert "ErrorRateHigh" in html and "CPUSaturation" in html
    # responders and runbook only when the record has them
    assert 'id="responders"' not in html and 'id="runbook"' not in html
    pictures = [svg.get("class") for svg in _svgs(html) if svg.get("class")]
    assert pictures == ["topology", "timeline"]
    _assert_inert(html)


def test_resolves_are_on_the_timeline_with_their_time() -> None:
    inc = _incident()
    resolved = {r.service: r.resolved_at for r in inc.alerts if r.resolved_at is not None}
    assert resolved["recommendationservice"] == T0 + timedelta(seconds=240)
    html = _page(_record(inc))
    assert "resolved 2024-05-01 12:04:00Z" in html
    assert html.count('class="resolved-t"') == len(resolved)


def test_responders_and_runbook_are_shown_when_the_record_has_them() -> None:
    record = _record(
        _incident(),
        responders=[
            {"name": "alice", "team": "catalog", "reason": "owns productcatalogservice"},
            {"name": "bob", "team": "web"},
        ],
        runbook={"title": "Catalog saturation", "url": "https://runbooks.example/catalog"},
    )
    html = _page(record)
    assert 'id="responders"' in html and 'id="runbook"' in html
    assert "<td>" in html.split('id="responders"')[1].split("</section>")[0]  # a table
    assert "owns productcatalogservice" in html
    assert '<a href="https://runbooks.example/catalog"' in html


def test_nothing_from_an_alert_or_the_record_can_run() -> None:
    inc = _incident(evil=True)
    record = _record(
        inc,
        responders=[{"name": EVIL, "url": "javascript:alert(1)"}, EVIL_ATTR],
        runbook="javascript:document.body.dataset.pwned=3",
    )
    html = _page(record)
    assert "<script" not in html.lower()
    assert "&lt;script&gt;" in html
    assert 'href="javascript' not in html.lower()
    _assert_inert(html)
    for svg in _svgs(html):  # well-formed XML whatever the names hold
        assert svg.tag.endswith("svg")
    assert "a-3&#34;&gt;&lt;img src=x onerror=" in html  # the alert id, as text


def test_javascript_and_relative_urls_are_never_links() -> None:
    assert is_web_link("https://runbooks.example/x")
    for bad in ("javascript:alert(1)", " javascript:x", "data:text/html,x", "//evil", "/x", "a b"):
        assert not is_web_link(bad), bad


def test_a_record_that_does_not_decode_is_a_clear_error() -> None:
    with pytest.raises(RecordError, match="does not decode"):
        decode_record(b'{"id": 3}')


def test_the_list_shows_open_incidents_then_recently_closed_ones() -> None:
    inc = _incident()
    closed = msgspec.structs.replace(inc, id="old-1", resolved_at=T0, root_cause="cartservice")
    records = [_record(msgspec.structs.replace(inc, id="new-1")), _record(closed), None, b"junk"]
    view = list_view(["new-1", "old-1", "gone", "bad"], {"new-1"}, records, 7, NOW)
    assert [r.id for r in view.open] == ["new-1"] and [r.id for r in view.closed] == ["old-1"]
    assert view.unreadable == 1
    html = list_html(view, limit=100, max_limit=1000)
    assert "7 open (1 listed" in html
    assert '<a href="/incidents/new-1" title="new-1">' in html
    assert '<a href="/incidents/old-1" title="old-1">' in html
    assert html.index("new-1") < html.index("Recently closed") < html.index("old-1")
    _assert_inert(html)


def test_the_error_page_escapes_its_message() -> None:
    html = error_html(404, "No such incident", f"There is no incident {EVIL!r}")
    assert "404" in html and "&lt;script&gt;" in html and "<script" not in html


@dataclass
class _Request:
    query: dict[str, str]
    headers: dict[str, str]


@pytest.mark.parametrize(
    ("query", "accept", "html"),
    [
        ({}, "text/html,application/xhtml+xml,*/*;q=0.8", True),  # a browser
        ({}, "*/*", False),  # curl
        ({}, "application/json", False),
        ({"format": "json"}, "text/html", False),
        ({"format": "html"}, "application/json", True),
    ],
)
def test_browsers_get_html_and_api_clients_json(
    query: dict[str, str], accept: str, html: bool
) -> None:
    assert wants_html(_Request(query, {"Accept": accept})) is html


def test_firing_alerts_run_on_to_now_unless_now_is_far_beyond_the_incident() -> None:
    inc = decode_record(_record(_incident()))  # alerts from 12:00:00 to 12:05:00, 3 firing
    soon = incident_view(inc, BOUTIQUE, T0 + timedelta(minutes=8), 5)
    assert soon.timeline is not None and soon.timeline.end == T0 + timedelta(minutes=8)
    assert 'class="marker now"' in incident_html(soon)
    late = incident_view(inc, BOUTIQUE, NOW, 5)  # an hour later: the axis stays on the incident
    assert late.timeline is not None and late.timeline.end == T0 + timedelta(minutes=5)
    assert 'class="marker now"' not in incident_html(late)


def test_a_wide_incident_is_drawn_left_to_right_and_stays_well_formed() -> None:
    star = Topology.from_edges("star", [(f"api-{i:02}", "db") for i in range(30)])
    alerts = [
        Alert(
            id=f"s{i}",
            source="test",
            service="db" if i == 0 else f"api-{i:02}",
            name="CPUSaturation" if i == 0 else "HighLatencyP99",
            severity=Severity.critical,
            status=AlertStatus.firing,
            timestamp=T0 + timedelta(seconds=i),
        )
        for i in range(30)
    ]
    outcome = AlertPipeline(star).process_in_event_time(alerts, {}, tick_s=1.0)
    inc = outcome.events[-1].incident
    html = incident_html(incident_view(decode_record(_record(inc)), star, NOW, 30))
    assert "Callers are drawn left of the services they call" in html
    assert [svg.get("class") for svg in _svgs(html) if svg.get("class")] == [
        "topology",
        "timeline",
    ]
    _assert_inert(html)


def test_the_root_cause_box_line_leaves_out_the_firing_count() -> None:
    """In bold capitals the count overflowed the box ('OOT CAUSE · 1 alert, 1 firin')."""
    root = GraphNode("db", Role.root, 0.0, 0.0, 0, alerts=3, firing=2)
    caller = GraphNode("api", Role.alerting, 0.0, 0.0, 1, alerts=3, firing=2)
    assert node_sub(root) == "ROOT CAUSE · 3 alerts"
    assert node_sub(caller) == "3 alerts, 2 firing"
