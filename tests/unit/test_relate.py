"""Relating an alert to open incidents through the join indices, on hand-built incidents."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pipeline.domain.correlate.relate import JoinIndex, Match
from pipeline.domain.correlate.settings import CorrelationSettings, span_end
from pipeline.domain.correlate.state import IncidentState
from pipeline.domain.graphs import GraphIndex
from tests.unit.correlate_parts import T0, TOPO, add_member, make_alert, new_state


class Fixture:
    def __init__(self, **kw: object) -> None:
        self.settings = CorrelationSettings(**kw)  # type: ignore[arg-type]
        self.states: dict[str, IncidentState] = {}
        self.index = JoinIndex(GraphIndex(TOPO, self.settings.hops), self.settings, self.states)

    def incident(
        self, iid: str, *services: str, dt: float = 0.0, labels: tuple[str, ...] = ()
    ) -> IncidentState:
        st = new_state(iid, dt)
        for svc in services:
            add_member(st, svc, dt, labels=labels)
        self.states[iid] = st
        st.indexed = False
        self.index.index(st)
        return st

    def matches(self, service: str, dt: float, **labels: str) -> dict[str, tuple[float, str, str]]:
        found = self.index.matches(make_alert(service, dt, labels=labels), service, T0 + dt)
        return {iid: (strength, rel, via) for strength, iid, rel, via in found}


def test_same_service_and_dependency_paths_within_hops() -> None:
    f = Fixture()
    f.incident("inc-db", "db")
    f.incident("inc-checkout", "checkout")
    # checkout -> payment -> db: 2 hops apart; frontend -> checkout: 1 hop
    assert f.matches("db", 10) == {
        "inc-db": (0.0, "graph", "db"),
        "inc-checkout": (2, "graph", "checkout"),
    }
    assert f.matches("checkout", 10) == {
        "inc-checkout": (0.0, "graph", "checkout"),
        "inc-db": (2, "graph", "db"),
    }
    assert f.matches("frontend", 10) == {
        "inc-checkout": (1, "graph", "checkout"),
        "inc-db": (2, "graph", "db"),  # frontend -> cart -> db
    }


def test_shared_direct_dependency() -> None:
    f = Fixture()
    f.incident("inc-search", "search")
    assert f.matches("cart", 10) == {"inc-search": (2.5, "shared-dependency", "db")}
    g = Fixture(shared_dependency=False, undirected_burst_s=0)
    g.incident("inc-search", "search")
    assert g.matches("cart", 10) == {}


def test_blast_radius_of_the_incidents_root_cause() -> None:
    f = Fixture(hops=1, undirected_burst_s=0)
    st = f.incident("inc-db", "db")
    assert f.matches("frontend", 10) == {}  # 2 hops from db
    st.inc.root_cause = "db"
    assert f.matches("frontend", 10) == {"inc-db": (2.0, "blast-radius", "db")}


def test_undirected_path_only_within_the_burst_and_when_nothing_closer() -> None:
    f = Fixture(undirected_burst_s=60)
    f.incident("inc-checkout", "checkout")
    # cart and checkout are both called by frontend: 2 hops apart ignoring direction
    assert f.matches("cart", 30) == {"inc-checkout": (3.7, "near", "checkout")}
    assert f.matches("cart", 90) == {}  # the incident's first alert is 90 s old
    f.incident("inc-frontend", "frontend", dt=20)
    # a joinable incident relates closer (frontend calls cart): no undirected relations
    assert f.matches("cart", 30) == {"inc-frontend": (1, "graph", "frontend")}


def test_link_labels_relate_services_missing_from_the_topology() -> None:
    f = Fixture()
    f.incident("inc-batch", "batch-job", labels=("host=h1",))
    assert f.matches("cron", 10, host="h1") == {"inc-batch": (4.0, "label", "host=h1")}
    assert f.matches("cron", 10, host="h2") == {}
    assert f.matches("cron", 10, pod="h1") == {}  # not a link label
    assert f.matches("batch-job", 10) == {"inc-batch": (0.0, "graph", "batch-job")}


def test_joinable_window_and_max_span() -> None:
    f = Fixture(join_gap_s=180, allowed_lateness_s=60, max_span_s=600, undirected_burst_s=0)
    st = f.incident("inc-db", "db")
    assert "inc-db" in f.matches("db", 180)
    assert f.matches("db", 181) == {}  # past the join gap after the latest alert
    assert "inc-db" in f.matches("db", -240)  # late: join gap + allowed lateness earlier
    assert f.matches("db", -241) == {}
    add_member(st, "db", 500, fp="again")
    assert "inc-db" in f.matches("db", 600)
    assert f.index.too_old(st, T0 + 601)
    assert f.matches("db", 601) == {}  # 600 s after the first alert: closed to new series


def test_lookup_and_scan_of_the_neighbourhood_agree() -> None:
    def run(padding: int, scan: bool) -> dict[str, tuple[float, str, str]]:
        f = Fixture()
        f.incident("inc-payment", "payment")
        f.incident("inc-frontend", "frontend")
        for k in range(padding):  # services missing from the topology: only the cost changes
            f.incident(f"inc-pad{k}", f"pad{k}")
        # db's neighbourhood within 2 hops: payment, cart, search, checkout, frontend
        assert (f.index.scan_cost(5) < 5) is scan
        return f.matches("db", 10)

    scanned, looked_up = run(0, scan=True), run(10, scan=False)
    assert (
        scanned
        == looked_up
        == {
            "inc-payment": (1, "graph", "payment"),
            "inc-frontend": (2, "graph", "frontend"),
        }
    )


def test_unindexed_incidents_relate_to_nothing() -> None:
    f = Fixture()
    st = f.incident("inc-db", "db", labels=("host=h1",))
    assert f.index.is_indexed(st)
    f.index.unindex(st)
    assert not st.indexed and not f.index.is_indexed(st)
    assert f.matches("db", 10) == {}
    assert f.matches("cart", 10, host="h1") == {}
    f.index.index(st)
    assert "inc-db" in f.matches("cart", 10, host="h1")


def test_index_labels_records_link_labels_only() -> None:
    f = Fixture()
    st = f.incident("inc-x", "x")
    f.index.index_labels(st, {"host": "h1", "pod": "p1", "cluster": ""})
    f.index.index_labels(st, {"host": "h1"})
    assert st.labels == ["host=h1"]
    assert "inc-x" in f.matches("y", 10, host="h1")


def test_best_match_is_closest_then_latest_then_by_id() -> None:
    f = Fixture()
    f.incident("inc-b", "db", dt=0)
    f.incident("inc-a", "db", dt=0)
    f.incident("inc-late", "db", dt=5)
    f.incident("inc-pay", "payment", dt=9)
    ms: list[Match] = [
        (1, "inc-pay", "graph", "payment"),
        (0.0, "inc-b", "graph", "db"),
        (0.0, "inc-a", "graph", "db"),
        (0.0, "inc-late", "graph", "db"),
    ]
    f.index.sort_best_first(ms)
    assert [m[1] for m in ms] == ["inc-late", "inc-a", "inc-b", "inc-pay"]


def test_reason_names_the_relation() -> None:
    f = Fixture()
    idx = f.index
    assert idx.reason((2, "i", "graph", "db"), "checkout", 40) == (
        "checkout -> db (2 hops: checkout depends on db), 40 s after the first alert"
    )
    assert idx.reason((0.0, "i", "graph", "db"), "db", 5).startswith("same service db")
    assert idx.reason((2.5, "i", "shared-dependency", "db"), "cart", 5).startswith(
        "cart and an alerting service both depend on db"
    )
    assert "blast radius of db" in idx.reason((3.0, "i", "blast-radius", "db"), "frontend", 5)
    assert "both called by frontend" in idx.reason((3.7, "i", "near", "checkout"), "cart", 5)
    assert idx.reason((4.0, "i", "label", "host=h1"), "cron", 5).startswith("shares label host=h1")


def test_an_incident_records_at_most_max_labels_link_labels() -> None:
    f = Fixture(max_labels=2)
    st = f.incident("inc-x", "x")
    for h in ("h1", "h2", "h3"):
        f.index.index_labels(st, {"host": h})
    f.index.index_labels(st, {"host": "h1"})
    assert st.labels == ["host=h1", "host=h2"]
    assert "inc-x" in f.matches("y", 10, host="h2")
    assert f.matches("y", 10, host="h3") == {}  # the third value relates it to nothing


@given(
    start=st.floats(min_value=0, max_value=4e9, allow_nan=False),
    span=st.sampled_from([60.0, 900.0, 3600.0, 86400.0]),
)
def test_span_cuts_fall_on_a_fixed_grid(start: float, span: float) -> None:
    """An incident is cut on a whole multiple of ``max_span_s``, 0.5-1.5 spans after it
    started: the next incident of a storm starts just after that cut, so its own cut does not
    depend on where the first one started."""
    end = span_end(start, span)
    assert end % span == 0
    assert span / 2 - 1e-6 <= end - start <= 1.5 * span + 1e-6
    assert span_end(end + 1e-3, span) == end + span


def test_span_cut_examples() -> None:
    assert span_end(0.0, 3600.0) == 3600.0
    assert span_end(1800.0, 3600.0) == 3600.0  # exactly half a span before the hour
    assert span_end(1800.5, 3600.0) == 7200.0
