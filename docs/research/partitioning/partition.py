"""Split one connected service graph into K correlation domains (NetworkX only).

Every method works on a *canonical* undirected view of the topology (nodes added in sorted
order, edges sorted), so the result depends only on the set of services and edges, not on the
order of the YAML file, and every method is seeded.

Methods (name -> function(graph, k, seed) -> list of K sets of services):

* ``hash``      CRC-32 of the service name mod K (baseline: what routing by service would do)
* ``bfs``       services in BFS order from the smallest name, cut into K equal chunks
* ``louvain``   ``louvain_communities`` (seeded), then capacity-constrained packing of the
                communities into K domains (a community larger than the capacity is split by
                Louvain on its own subgraph, then KL bisection as a last resort)
* ``greedy``    ``greedy_modularity_communities(cutoff=K, best_n=K)`` (exactly K, no balance)
* ``kl``        recursive ``kernighan_lin_bisection`` (seeded), K a power of two
* ``fluid``     ``asyn_fluidc(k=K, seed)``

The domain *label* is ``<topology name>/<smallest service of the domain>`` like the
weakly-connected-component labels today, so a label survives small topology changes as long
as its smallest service stays in it.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter, deque
from collections.abc import Callable

import networkx as nx


def canonical(graph: nx.DiGraph) -> nx.Graph:
    """Undirected, self-loop-free, insertion order sorted: same input set -> same graph."""
    g = nx.Graph()
    g.add_nodes_from(sorted(graph.nodes))
    g.add_edges_from(sorted({tuple(sorted((a, b))) for a, b in graph.edges if a != b}))
    return g


def _sorted_parts(parts) -> list[set[str]]:
    parts = [set(p) for p in parts if p]
    parts.sort(key=lambda p: min(p))
    return parts


def part_hash(g: nx.Graph, k: int, seed: int = 0) -> list[set[str]]:
    out: list[set[str]] = [set() for _ in range(k)]
    for n in g.nodes:
        out[zlib.crc32(n.encode()) % k].add(n)
    return _sorted_parts(out)


def part_bfs(g: nx.Graph, k: int, seed: int = 0) -> list[set[str]]:
    order: list[str] = []
    seen: set[str] = set()
    for start in sorted(g.nodes):
        if start in seen:
            continue
        seen.add(start)
        q = deque([start])
        while q:
            u = q.popleft()
            order.append(u)
            for v in sorted(g.adj[u]):
                if v not in seen:
                    seen.add(v)
                    q.append(v)
    size = math.ceil(len(order) / k)
    return _sorted_parts(set(order[i : i + size]) for i in range(0, len(order), size))


def _kl_split(g: nx.Graph, nodes: set[str], seed: int) -> tuple[set[str], set[str]]:
    sub = g.subgraph(sorted(nodes))
    a, b = nx.community.kernighan_lin_bisection(sub, seed=seed)
    return set(a), set(b)


def part_kl(g: nx.Graph, k: int, seed: int = 0) -> list[set[str]]:
    parts = [set(g.nodes)]
    while len(parts) < k:
        parts.sort(key=lambda p: (-len(p), min(p)))
        big = parts.pop(0)
        if len(big) < 2:
            parts.append(big)
            break
        parts.extend(_kl_split(g, big, seed))
    return _sorted_parts(parts)


def part_greedy(g: nx.Graph, k: int, seed: int = 0) -> list[set[str]]:
    return _sorted_parts(nx.community.greedy_modularity_communities(g, cutoff=k, best_n=k))


def part_fluid(g: nx.Graph, k: int, seed: int = 0) -> list[set[str]]:
    return _sorted_parts(nx.community.asyn_fluidc(g, k, seed=seed))


def part_louvain(
    g: nx.Graph, k: int, seed: int = 0, slack: float = 0.05, resolution: float = 1.0
) -> list[set[str]]:
    """Louvain communities packed into K domains of at most ``(1 + slack) * n / K`` services.

    Communities are placed largest first into the domain they share most edges with among
    those with room (ties: the lightest, then the lowest index); one that fits nowhere is
    split (Louvain on its subgraph with a higher resolution, KL bisection if that does not
    split it) and its pieces are queued again.
    """
    n = g.number_of_nodes()
    cap = max(1, math.ceil((1 + slack) * n / k))
    comms = [set(c) for c in nx.community.louvain_communities(g, seed=seed, resolution=resolution)]
    queue = sorted(comms, key=lambda c: (-len(c), min(c)))
    bins: list[set[str]] = [set() for _ in range(k)]
    where: dict[str, int] = {}
    while queue:
        c = queue.pop(0)
        links = Counter()
        for u in c:
            for v in g.adj[u]:
                b = where.get(v)
                if b is not None:
                    links[b] += 1
        fits = [i for i in range(k) if len(bins[i]) + len(c) <= cap]
        if fits:
            best = max(fits, key=lambda i: (links[i], -len(bins[i]), -i))
            bins[best] |= c
            for u in c:
                where[u] = best
            continue
        # split: Louvain inside at a higher resolution, else a bisection
        sub = g.subgraph(sorted(c))
        pieces = [set(p) for p in nx.community.louvain_communities(sub, seed=seed, resolution=2.0)]
        if len(pieces) < 2:
            pieces = list(_kl_split(g, c, seed)) if len(c) > 1 else [c]
        if len(pieces) < 2:  # one node larger than cap cannot happen (cap >= 1)
            raise RuntimeError("cannot split")
        queue.extend(pieces)
        queue.sort(key=lambda x: (-len(x), min(x)))
    return _sorted_parts(bins)


METHODS: dict[str, Callable[..., list[set[str]]]] = {
    "hash": part_hash,
    "bfs": part_bfs,
    "louvain": part_louvain,
    "greedy": part_greedy,
    "kl": part_kl,
    "fluid": part_fluid,
}


def partition(graph: nx.DiGraph, k: int, method: str = "louvain", seed: int = 0) -> list[set[str]]:
    """K domains. The largest weakly connected component is split by ``method``; any other
    component (a topology may have a few small islands) joins the smallest domain so far,
    whole (components in order of their smallest service)."""
    g = canonical(graph)
    k = max(1, min(k, g.number_of_nodes()))
    if k == 1:
        return [set(g.nodes)]
    comps = sorted((set(c) for c in nx.connected_components(g)), key=lambda c: (-len(c), min(c)))
    main = canonical_from(g.subgraph(comps[0]))
    k = min(k, len(comps[0]))
    parts = METHODS[method](main, k, seed) if k > 1 else [set(comps[0])]
    for c in sorted(comps[1:], key=min):
        smallest = min(range(len(parts)), key=lambda i: (len(parts[i]), i))
        parts[smallest] |= c
    return _sorted_parts(parts)


def canonical_from(g: nx.Graph) -> nx.Graph:
    h = nx.Graph()
    h.add_nodes_from(sorted(g.nodes))
    h.add_edges_from(sorted(tuple(sorted(e)) for e in g.edges))
    return h


def domain_map(name: str, parts: list[set[str]]) -> dict[str, str]:
    """service -> domain label ``<name>/<smallest service of its domain>``."""
    out: dict[str, str] = {}
    for p in parts:
        label = f"{name}/{min(p)}"
        for s in p:
            out[s] = label
    return out


# ------------------------------------------------------------------------------ metrics


def cut_share(graph: nx.DiGraph, dom: dict[str, str]) -> float:
    edges = [(a, b) for a, b in graph.edges if a != b]
    return sum(1 for a, b in edges if dom[a] != dom[b]) / max(1, len(edges))


def balance(parts: list[set[str]], k: int) -> float:
    """Largest domain / ideal size (1.0 = perfect)."""
    n = sum(len(p) for p in parts)
    return max(len(p) for p in parts) / (n / k)


def boundary_share(graph: nx.DiGraph, dom: dict[str, str], hops: int = 2) -> float:
    """Share of services related (correlator relation: dependency path within ``hops`` either
    direction, or a shared direct dependency) to a service in another domain."""
    return halo(graph, dom, hops)[0]


def halo(graph: nx.DiGraph, dom: dict[str, str], hops: int = 2) -> tuple[float, float]:
    """(boundary share, mean number of domains an alert would have to reach if boundary
    alerts were routed to every domain holding a related service: 1.0 = no replication)."""
    succ = {n: list(graph.successors(n)) for n in graph}
    pred = {n: list(graph.predecessors(n)) for n in graph}

    def within(start: str, adj: dict[str, list[str]]) -> set[str]:
        seen = {start}
        frontier = [start]
        for _ in range(hops):
            nxt = []
            for u in frontier:
                for v in adj[u]:
                    if v not in seen:
                        seen.add(v)
                        nxt.append(v)
            frontier = nxt
        return seen

    b = 0
    fan = 0
    for s in graph:
        rel = within(s, succ) | within(s, pred)
        for d in succ[s]:
            rel.update(pred[d])
        doms = {dom[x] for x in rel} | {dom[s]}
        fan += len(doms)
        if len(doms) > 1:
            b += 1
    n = max(1, graph.number_of_nodes())
    return b / n, fan / n


def moved_share(old: dict[str, str], new: dict[str, str]) -> tuple[float, float]:
    """(share of services whose domain label changed, share that moved after the best
    one-to-one matching of old to new domains by overlap)."""
    common = [s for s in old if s in new]
    by_label = sum(1 for s in common if old[s] != new[s]) / max(1, len(common))
    overlap = Counter((old[s], new[s]) for s in common)
    used_o: set[str] = set()
    used_n: set[str] = set()
    kept = 0
    for (o, nw), c in overlap.most_common():
        if o in used_o or nw in used_n:
            continue
        used_o.add(o)
        used_n.add(nw)
        kept += c
    return by_label, 1 - kept / max(1, len(common))


def sticky_update(old: dict[str, str], graph: nx.DiGraph, name: str) -> dict[str, str]:
    """Carry a domain map over to a changed topology without moving anyone: every service
    keeps its domain; a new service joins the domain most of its neighbours are in (ties:
    the domain with fewer services, then the smaller label), in order of name, so the result
    is deterministic; a service whose neighbours are all new too gets the smallest domain.
    Repartition from scratch (a new map version) only when the cut or the balance drifted
    past a threshold."""
    g = canonical(graph)
    dom = {s: d for s, d in old.items() if s in g}
    sizes = Counter(dom.values())
    pending = sorted(s for s in g.nodes if s not in dom)
    while pending:
        progress = []
        for s in pending:
            votes = Counter(dom[v] for v in g.adj[s] if v in dom)
            if votes:
                best = max(votes, key=lambda d: (votes[d], -sizes[d], d))
                progress.append((s, best))
        if not progress:  # islands of new services: smallest domain
            s = pending[0]
            best = min(sizes, key=lambda d: (sizes[d], d)) if sizes else f"{name}/{s}"
            progress.append((s, best))
        for s, d in progress:
            dom[s] = d
            sizes[d] += 1
        done = {s for s, _ in progress}
        pending = [s for s in pending if s not in done]
    return dom
