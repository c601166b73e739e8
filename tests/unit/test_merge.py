"""The cross-domain merge stage on small hand-made topologies split by hand: each case is
compared with what one correlator (single-domain replay) makes of the same alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec

from pipeline.domain.correlate import CorrelationSettings
from pipeline.domain.domains import DomainMap
from pipeline.domain.event_view import EventLimits, encode_event
from pipeline.domain.merge import ControlKind, MergeOutput, Merger, Summary
from pipeline.domain.merge.controls import Control, apply_control
from pipeline.domain.pipeline import AlertPipeline
from pipeline.domain.schemas import (
    Alert,
    AlertStatus,
    EventType,
    Feedback,
    FeedbackAction,
    Incident,
    IncidentEvent,
    Severity,
)
from pipeline.domain.topology import Topology
from pipeline.offline.partitioned import PartitionedReplay
from pipeline.offline.replay import replay_alerts

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def alert(aid: str, service: str, name: str, dt: float, end: bool = False) -> Alert:
    return Alert(
        id=aid,
        source="test",
        service=service,
        name=name,
        severity=Severity.error,
        status=AlertStatus.resolved if end else AlertStatus.firing,
        timestamp=T0 + timedelta(seconds=dt),
    )


def split(topo: Topology, *parts: list[str]) -> DomainMap:
    """A hand-made map: one domain per list, on partitions 0, 1, ..."""
    labels = [f"{topo.name}/{min(p)}" for p in parts]
    return DomainMap(
        version=1,
        k=len(parts),
        topology=topo.name,
        domains={s: labels[i] for i, p in enumerate(parts) for s in p},
        partitions={label: i for i, label in enumerate(labels)},
    )


def groups(incidents: list[Incident]) -> set[frozenset[str]]:
    return {frozenset(i.alert_ids) for i in incidents if i.alert_ids}


class Recorder(PartitionedReplay):
    """A partitioned replay that keeps every published event and control."""

    def __init__(
        self,
        topo: Topology,
        dmap: DomainMap,
        settings: CorrelationSettings | None = None,
        limits: EventLimits | None = None,
    ) -> None:
        super().__init__(topo, dmap, settings, step=1, limits=limits)
        self.published: list[IncidentEvent] = []
        self.controls: list[Control] = []

    def _publish(self, out: MergeOutput) -> None:
        self.published.extend(out.events)
        self.controls.extend(out.controls)
        super()._publish(out)


# a -> b -> c -> d (a calls b, ...)
CHAIN = Topology.from_edges("chain", [("a", "b"), ("b", "c"), ("c", "d")])


def test_incidents_related_across_the_cut_merge_with_the_explanation() -> None:
    alerts = [
        alert("1", "d", "CPUSaturation", 0),
        alert("2", "c", "ErrorRateHigh", 10),
        alert("3", "b", "HighLatencyP99", 20),
        alert("4", "a", "HighLatencyP99", 30),
    ]
    single = replay_alerts(CHAIN, alerts)
    run = Recorder(CHAIN, split(CHAIN, ["a", "b"], ["c", "d"]))
    merged = run.run(alerts)
    assert groups(merged) == groups(single) == {frozenset("1234")}
    (inc,) = merged
    assert inc.explanation.startswith("Merged across 2 correlation domains (chain/a, chain/c)")
    assert "depends on" in inc.explanation
    assert inc.root_cause == single[0].root_cause == "d"
    assert inc.alert_count == 4
    # the member that joined in the step it opened was never published on its own
    assert {ev.incident.id for ev in run.published} == {inc.id}
    group_types = [ev.type for ev in run.published if "Merged across" in ev.incident.explanation]
    assert group_types[0] is EventType.merged and group_types[-1] is EventType.resolved
    versions = [ev.incident.version for ev in run.published if ev.incident.id == inc.id]
    assert versions == sorted(versions)
    assert inc.id == single[0].id  # the group id is the member opened first


def test_an_incident_published_before_it_was_merged_gets_a_merged_event() -> None:
    # a -> b -> c -> d -> e: a and e unrelated until c alerts (2 hops from both)
    topo = Topology.from_edges("chain5", [("a", "b"), ("b", "c"), ("c", "d"), ("d", "e")])
    alerts = [
        alert("1", "a", "ErrorRateHigh", 0),
        alert("2", "e", "CPUSaturation", 10),
        alert("3", "c", "ErrorRateHigh", 20),
    ]
    single = replay_alerts(topo, alerts)
    run = Recorder(topo, split(topo, ["a", "b"], ["c", "d", "e"]))
    merged = run.run(alerts)
    assert groups(merged) == groups(single) == {frozenset("123")}
    (inc,) = merged
    absorbed = [ev for ev in run.published if ev.incident.merged_into]
    assert [(ev.type, ev.incident.merged_into) for ev in absorbed] == [(EventType.merged, inc.id)]
    assert "same burst" in inc.explanation
    last = {ev.incident.id: ev.incident.version for ev in run.published}
    assert last[absorbed[0].incident.id] == absorbed[0].incident.version


def test_unrelated_incidents_of_two_domains_stay_apart() -> None:
    # a -> b -> c <- d <- e: a and e are 4 hops apart, no shared direct dependency
    topo = Topology.from_edges("vee", [("a", "b"), ("b", "c"), ("e", "d"), ("d", "c")])
    alerts = [alert("1", "a", "ErrorRateHigh", 0), alert("2", "e", "ErrorRateHigh", 5)]
    single = replay_alerts(topo, alerts)
    merged = Recorder(topo, split(topo, ["a", "b", "c"], ["d", "e"])).run(alerts)
    assert groups(merged) == groups(single) == {frozenset("1"), frozenset("2")}
    assert not any(i.explanation.startswith("Merged across") for i in merged)


def test_a_member_is_cut_when_its_group_reaches_max_span() -> None:
    settings = CorrelationSettings(max_span_s=300)
    alerts = [
        alert("1", "b", "ErrorRateHigh", 0),  # domain 0 opens the group
        alert("2", "c", "ErrorRateHigh", 100),  # domain 1 opens a member (joins the group)
        alert("3", "d", "CPUSaturation", 250),  # joins the member
        alert("4", "d", "DiskFull", 350),  # group older than 300 s: a new incident
    ]
    single = replay_alerts(CHAIN, alerts, settings)
    run = Recorder(CHAIN, split(CHAIN, ["a", "b"], ["c", "d"]), settings)
    merged = run.run(alerts)
    assert groups(merged) == groups(single) == {frozenset("123"), frozenset("4")}
    spans = [c for c in run.controls if c.kind is ControlKind.span_start]
    assert [(c.partition, c.t) for c in spans] == [(1, alerts[0].epoch)]


def test_another_domains_series_undoes_a_provisional_reopen() -> None:
    # a calls b; b's alert resolves, fires again (reopen), then a alerts: a new burst
    topo = Topology.from_edges("pair", [("a", "b")])
    alerts = [
        alert("1", "b", "ErrorRateHigh", 0),
        alert("2", "b", "ErrorRateHigh", 10, end=True),
        alert("3", "b", "ErrorRateHigh", 150),  # resolved at 130: reopens
        alert("4", "a", "HighLatencyP99", 160),  # a series the incident never had
    ]
    single = replay_alerts(topo, alerts)
    run = Recorder(topo, split(topo, ["b"], ["a"]))
    merged = run.run(alerts)
    assert groups(single) == {frozenset("1"), frozenset("34")}
    assert groups(merged) == groups(single)
    assert [c.kind for c in run.controls if c.kind is ControlKind.split_reopened] == [
        ControlKind.split_reopened
    ]


def test_apply_control_splits_a_reopen_and_ignores_what_it_cannot_apply() -> None:
    topo = Topology.from_edges("pair", [("a", "b")])
    pipe = AlertPipeline(topo)
    pipe.process_in_event_time(
        [
            alert("1", "b", "ErrorRateHigh", 0),
            alert("2", "b", "ErrorRateHigh", 10, end=True),
            alert("3", "b", "ErrorRateHigh", 150),
        ],
        {},
    )
    (inc,) = pipe.correlator.incidents()
    t = (T0 + timedelta(seconds=160)).timestamp()
    late = Control(
        kind=ControlKind.split_reopened, incident=inc.id, domain="", partition=0, t=t + 600
    )
    assert apply_control(pipe, late) == []
    unknown = Control(kind=ControlKind.span_start, incident="nope", domain="", partition=0, t=t)
    assert apply_control(pipe, unknown) == []
    ctl = Control(kind=ControlKind.split_reopened, incident=inc.id, domain="", partition=0, t=t)
    events = apply_control(pipe, ctl)
    assert [ev.type for ev in events] == [EventType.resolved, EventType.opened]
    assert events[1].incident.alert_ids == ["3"]
    assert pipe.correlator.book.states[events[1].incident.id].split_from == inc.id


def _capture(topo: Topology, dmap: DomainMap, alerts: list[Alert]) -> list[tuple[bytes, float]]:
    """The merge stage's input of a partitioned replay: (encoded batch, watermark after)."""
    calls: list[tuple[bytes, float]] = []
    run = PartitionedReplay(topo, dmap, step=2)
    merger = run.merger
    on_batch, advance = merger.on_batch, merger.advance

    def record_batch(batch: list[Summary]) -> MergeOutput:
        calls.append((msgspec.msgpack.encode(batch), float("nan")))
        return on_batch(batch)

    def record_advance(now: float) -> None:
        data, _ = calls[-1]
        calls[-1] = (data, now)
        advance(now)

    merger.on_batch = record_batch  # type: ignore[method-assign]
    merger.advance = record_advance  # type: ignore[method-assign]
    run.run(alerts)
    return calls


def _play(merger: Merger, calls: list[tuple[bytes, float]]) -> list[bytes]:
    out: list[bytes] = []
    dec = msgspec.msgpack.Decoder(list[Summary])
    for data, now in calls:
        res = merger.on_batch(dec.decode(data))
        out.append(msgspec.json.encode([res.events, res.controls, res.unions]))
        if now == now:  # not NaN
            merger.advance(now)
    return out


def test_snapshot_and_restore_give_identical_subsequent_output() -> None:
    alerts = [
        alert("1", "d", "CPUSaturation", 0),
        alert("2", "c", "ErrorRateHigh", 10),
        alert("3", "b", "HighLatencyP99", 20),
        alert("4", "a", "HighLatencyP99", 30),
        alert("5", "a", "HighLatencyP99", 40, end=True),
        alert("6", "b", "ErrorRateHigh", 60),
        alert("7", "d", "CPUSaturation", 900),
        alert("8", "a", "ErrorRateHigh", 905),
    ]
    dmap = split(CHAIN, ["a", "b"], ["c", "d"])
    calls = _capture(CHAIN, dmap, alerts)
    whole = _play(Merger(dmap.apply(CHAIN)), calls)
    assert any(b"Merged across" in part for part in whole)
    for cut in range(1, len(calls)):
        first = Merger(dmap.apply(CHAIN))
        head = _play(first, calls[:cut])
        second = Merger(dmap.apply(CHAIN))
        second.restore(first.snapshot())
        assert head + _play(second, calls[cut:]) == whole


def test_feedback_on_a_group_fans_out_to_its_members() -> None:
    alerts = [alert("1", "d", "CPUSaturation", 0), alert("2", "b", "ErrorRateHigh", 10)]
    run = Recorder(CHAIN, split(CHAIN, ["a", "b"], ["c", "d"]))
    (inc,) = run.run(alerts)
    members = run.merger.members(inc.id)
    assert sorted((d, p) for _, d, p in members) == [("chain/a", 0), ("chain/c", 1)]
    fb = Feedback(incident_id=inc.id, action=FeedbackAction.ack, timestamp=T0, user="sre")
    fanned = run.merger.fan_out(fb)
    assert sorted((p, f.incident_id) for p, f in fanned) == sorted((p, i) for i, _, p in members)
    assert all(f.action is FeedbackAction.ack and f.user == "sre" for _, f in fanned)


def test_group_events_keep_the_event_bounds() -> None:
    alerts = [alert(str(i), "abcd"[i % 4], f"Alert{i}", 3 * i) for i in range(12)]
    limits = EventLimits(max_alerts=3, max_counts=4)
    run = Recorder(CHAIN, split(CHAIN, ["a", "b"], ["c", "d"]), limits=limits)
    (inc,) = run.run(alerts)
    group_events = [ev for ev in run.published if "Merged across" in ev.incident.explanation]
    assert group_events
    for ev in group_events:
        g = ev.incident
        assert len(g.alerts) == len(g.alert_ids) <= 3
        assert len(g.alert_counts) <= 4
        assert g.alerts_omitted == g.alert_count - len(g.alerts)
        assert len(encode_event(ev, limits)) <= limits.max_bytes
    last = group_events[-1].incident
    assert last.alert_count == 12 and last.counts_omitted == 12 - 4
    assert sorted(inc.alert_ids) == sorted(a.id for a in alerts)
