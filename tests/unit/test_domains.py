"""The domain map: deterministic, balanced, today's domains at k = 1, sticky updates."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import networkx as nx
import pytest

from benchmarks.storm import topology as bench_topology
from pipeline.domain.domains import (
    DomainMap,
    balance,
    build_domain_map,
    choose_k,
    cut_share,
    sticky_update,
)
from pipeline.domain.topology import Topology

ROOT = Path(__file__).resolve().parents[2]
BENCH = bench_topology(1000, components=1)

_PRINT_MAP = """
import hashlib, sys
from benchmarks.storm import topology
from pipeline.domain.domains import build_domain_map
print(hashlib.sha256(build_domain_map(topology(1000, components=1), 4).to_json()).hexdigest())
"""


def _reversed(topo: Topology) -> Topology:
    """The same topology with nodes and edges inserted in reverse order (file order)."""
    g: nx.DiGraph = nx.DiGraph()
    g.add_nodes_from(sorted(topo.graph.nodes, reverse=True))
    g.add_edges_from(sorted(topo.graph.edges, reverse=True))
    return Topology(name=topo.name, graph=g)


def test_the_map_is_the_same_in_every_process_and_for_any_file_order() -> None:
    digests = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        out = subprocess.run(
            [sys.executable, "-c", _PRINT_MAP], env=env, capture_output=True, text=True, check=True
        )
        digests.add(out.stdout.strip())
    assert len(digests) == 1
    assert build_domain_map(_reversed(BENCH), 4) == build_domain_map(BENCH, 4)


@pytest.mark.parametrize("k", [2, 4])
def test_domains_are_balanced_and_mapped_to_partitions_one_to_one(k: int) -> None:
    dmap = build_domain_map(BENCH, k)
    assert dmap.k == k
    assert sorted(dmap.partitions.values()) == list(range(k))
    assert balance(dmap) <= 1.06
    assert len(dmap.domains) == 1000
    assert 0.2 < cut_share(BENCH, dmap) < 0.5  # Louvain: FINDINGS.md 0.276 (k=2), 0.416 (k=4)
    for label, services in dmap.members().items():
        assert label == f"bench-1000/{services[0]}"


def test_k1_keeps_todays_domains_and_other_components_stay_apart(root: Path) -> None:
    topo = bench_topology(400, components=4)
    one = build_domain_map(topo, 1)
    assert all(one.domain(s) == topo.domain(s) for s in topo.services)
    assert one.domain("unknown") == topo.domain("unknown")
    assert one.domain("c0-svc-0-0", {"domain": "eu"}) == "eu"
    assert one.partition_count == 1
    split = build_domain_map(topo, 2)
    comps = list(nx.weakly_connected_components(topo.graph))
    domains_per_comp = sorted(len({split.domain(s) for s in c}) for c in comps)
    assert domains_per_comp == [1, 1, 1, 2]  # the largest split in two, the others whole
    assert len(split.partitions) == 5 and set(split.partitions.values()) == {0, 1}


def test_auto_is_one_domain_unless_the_largest_component_is_big(root: Path) -> None:
    boutique = Topology.load(root / "topologies" / "online-boutique.yaml")
    assert choose_k(boutique, "auto") == 1
    assert choose_k(BENCH, "auto") == 4
    assert choose_k(BENCH, 2) == 2
    with pytest.raises(ValueError):
        choose_k(BENCH, 0)


def test_json_round_trip() -> None:
    dmap = build_domain_map(BENCH, 2)
    assert DomainMap.from_json(dmap.to_json()) == dmap


def test_sticky_update_moves_no_known_service() -> None:
    old = build_domain_map(BENCH, 4)
    g = BENCH.graph.copy()
    edges = sorted(g.edges)
    g.remove_edges_from(edges[::100])  # 1% of the edges go
    g.add_edge("new-a", "c0-svc-7-986")  # a new caller of one service
    g.add_edge("new-b", "new-a")  # a new caller of the new one
    g.add_edge("island-1", "island-2")  # a new component
    g.remove_node("c0-svc-0-5")
    new = sticky_update(old, Topology(name=BENCH.name, graph=g))
    assert new.version == old.version + 1
    assert all(new.domains[s] == d for s, d in old.domains.items() if s in g)
    assert "c0-svc-0-5" not in new.domains
    assert new.domains["new-a"] == new.domains["new-b"] == old.domains["c0-svc-7-986"]
    assert new.domains["island-1"] == new.domains["island-2"] == "bench-1000/island-1"
    assert new.partitions["bench-1000/island-1"] in range(4)
    sizes = Counter(new.domains.values())
    assert sum(sizes.values()) == len(g)
