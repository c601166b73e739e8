"""Old checkpoints keep restoring: ``tests/fixtures/correlator-snapshot-v1.msgpack`` was
written by the correlator before it was split into parts (commit b838bec), from
:func:`scenario`, before incidents had their event-schema-2 fields (counts). Checkpoints of
that format in Redis must restore to the state today's code reaches from the same alerts
(learning from the alerts aside: an old checkpoint has none, its learner starts empty)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.domain.correlate import CorrelationSettings, Correlator
from pipeline.domain.schemas import Alert, AlertStatus, Feedback, FeedbackAction, Severity
from tests.unit.test_correlate import TOPO

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "correlator-snapshot-v1.msgpack"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


NO_LEARNING = CorrelationSettings(learn_cooccurrence=False)


def scenario(settings: CorrelationSettings | None = None) -> Correlator:
    """A storm on db, a flapping alert, an unknown service linked by label, a resolved
    incident and feedback: most of the state's fields are set."""
    c = Correlator(TOPO, settings)
    n = 0

    def fire(
        service: str, name: str, dt: float, sev: str = "critical", end: bool = False, **labels: str
    ) -> None:
        nonlocal n
        n += 1
        ts = T0 + timedelta(seconds=dt)
        a = Alert(
            id=f"a{n}",
            source="test",
            service=service,
            name=name,
            severity=Severity(sev),
            status=AlertStatus.resolved if end else AlertStatus.firing,
            timestamp=ts,
            labels=labels,
        )
        c.advance(a.epoch)
        c.process(a)

    fire("db", "CPUSaturation", 0)
    fire("payment", "HighLatencyP99", 20, "warning")
    fire("cart", "ErrorRateHigh", 25)
    fire("checkout", "HighLatencyP99", 40, "warning")
    fire("batch-job", "JobFailed", 50, "error", host="h1")
    fire("cron", "JobFailed", 55, "warning", host="h1")
    for k in range(3):
        fire("search", "HighLatencyP99", 60 + 30 * k, "warning")
        fire("search", "HighLatencyP99", 70 + 30 * k, "warning", end=True)
    fire("cron", "JobFailed", 400, "warning", end=True, host="h1")
    fire("batch-job", "JobFailed", 410, "error", end=True, host="h1")
    c.advance((T0 + timedelta(seconds=560)).timestamp())
    first = c.incidents()[0]
    c.apply_feedback(
        Feedback(
            incident_id=first.id,
            action=FeedbackAction.root_cause,
            root_cause="db",
            user="sre",
            timestamp=T0 + timedelta(seconds=570),
        )
    )
    c.apply_feedback(
        Feedback(
            incident_id=first.id,
            action=FeedbackAction.ack,
            user="sre",
            timestamp=T0 + timedelta(seconds=580),
        )
    )
    return c


def test_an_old_checkpoint_restores_to_the_state_of_todays_code() -> None:
    restored = Correlator.restore(TOPO, NO_LEARNING, FIXTURE.read_bytes())
    today = scenario(NO_LEARNING)
    for st in today.book.states.values():  # labels the fixture never recorded: none claimed
        st.common = {service: {} for service in st.common}
    # the candidates, their reasons and the explanation are the ranking's output, stored as
    # the last ranking left them: compare them as today's ranking gives them
    for c in (restored, today):
        for st in c.book.states.values():
            c.ranker.rerank(st)
    assert restored.snapshot() == today.snapshot()


def test_an_old_checkpoint_restores_and_carries_on() -> None:
    restored = Correlator.restore(TOPO, None, FIXTURE.read_bytes())
    assert [i.id for i in restored.incidents()] == [i.id for i in scenario().incidents()]
    later = (T0 + timedelta(seconds=100_000)).timestamp()
    assert [e.type for e in restored.advance(later)] == [e.type for e in scenario().advance(later)]


def test_a_compacted_incident_restores_with_what_it_forgot() -> None:
    settings = CorrelationSettings(max_members=4)
    live = Correlator(TOPO, settings)

    def send(c: Correlator, service: str, pod: int, dt: float, end: bool = False) -> None:
        a = Alert(
            id=f"{service}-{pod}-{'resolved' if end else 'firing'}",
            source="test",
            service=service,
            name="ErrorRateHigh",
            severity=Severity.critical,
            status=AlertStatus.resolved if end else AlertStatus.firing,
            timestamp=T0 + timedelta(seconds=dt),
            labels={"pod": str(pod)},
        )
        c.advance(a.epoch)
        c.process(a)

    for k in range(9):
        send(live, ("db", "cart", "payment")[k % 3], k, 10 * k)
    [st] = live.book.states.values()
    assert st.archive is not None and st.inc.alert_count == 9 and len(st.members) <= 4
    restored = Correlator.restore(TOPO, settings, live.snapshot())
    assert restored.snapshot() == live.snapshot()
    for c in (live, restored):
        send(c, "search", 9, 100)
        send(c, "db", 0, 101, end=True)  # its series was forgotten: not tracked any more
        send(c, "payment", 8, 102, end=True)
        c.advance((T0 + timedelta(seconds=1000)).timestamp())
    assert restored.snapshot() == live.snapshot()
