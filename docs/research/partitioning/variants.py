"""Mirror vs ghost vs hybrid on a few storms (exploration; usage: python variants.py rca dsb dense medium sparse mirror ghost hybrid)."""
import sys
sys.path[:0]=['/work/scratch/partition/snap','/work/scratch/partition']
from storms import load_rca, labelled_storm
from partition import partition, domain_map
import run
from pipeline.domain.topology import Topology
from pipeline.bench.storm import topology as btopo
which = sys.argv[1:]
cases = []
if 'rca' in which: cases.append(('rca', *load_rca()[:2]))
if 'dsb' in which:
    t = Topology.load('/work/shared/data/topologies/deathstarbench-social-network.yaml')
    cases.append(('dsb-social 300', t, labelled_storm(t, 10000, fault_every_s=300)[0]))
b = btopo(1000, components=1)
if 'dense' in which: cases.append(('bench dense', b, labelled_storm(b, 30000)[0]))
if 'medium' in which: cases.append(('bench medium', b, labelled_storm(b, 30000, fault_every_s=120)[0]))
if 'sparse' in which: cases.append(('bench sparse', b, labelled_storm(b, 30000, fault_every_s=300)[0]))
modes = [m for m in ('mirror', 'ghost', 'hybrid') if m in which] or ['ghost']
for name, topo, alerts in cases:
    single = run.single_domain(topo, alerts)
    for mode in modes:
        for step_s in (None, 10.0):
            row = []
            for k in (2, 8):
                dom = domain_map(topo.name, partition(topo.graph, k, 'louvain'))
                g = run.partitioned(topo, alerts, dom, step_s=step_s, mode=mode)
                p, r, f = run.pair_scores(single, g)
                row.append(f"K={k} P{p:.2f} R{r:.2f} F{f:.3f} lost={g.stats['merger'].get('declared_lost',0)} fan={g.stats['ghost_fanout']:.1f}")
            print(name, mode, step_s, *row, flush=True)
