from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.domain.topology import Topology, TopologyError


def test_bundled_topologies_load(root: Path) -> None:
    for path in (root / "topologies").glob("*.yaml"):
        topo = Topology.load(path)
        assert len(topo.services) > 3


def test_domains_are_components_or_labels(root: Path) -> None:
    topo = Topology.load(root / "topologies" / "online-boutique.yaml")
    assert topo.domain("frontend") == topo.domain("paymentservice")
    assert topo.domain("not-in-graph") != topo.domain("frontend")
    assert topo.domain("frontend", {"domain": "eu"}) == "eu"
    assert "checkoutservice" in topo.callers("paymentservice")


def test_bad_topology_names_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "t.yaml"
    bad.write_text("services: [{team: x}]\n")
    with pytest.raises(TopologyError, match=r"services\[0\] needs a 'name'"):
        Topology.load(bad)
    with pytest.raises(TopologyError, match="does not exist"):
        Topology.load(tmp_path / "nope.yaml")
