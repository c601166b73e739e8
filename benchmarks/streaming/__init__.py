"""``make bench``: end-to-end throughput of the streaming worker next to its ceilings and a peer.

On one Tansu broker and one redis-server started here (``pipeline.app.localstack``):

1. transport ceiling: confluent-kafka produce and consume rates for storm-sized messages;
2. Faust ceiling: :mod:`benchmarks.streaming.faust_apps` subprocesses with the worker's
   settings, an agent that only consumes (``take_events`` batches) and one that also forwards;
3. full pipeline: the real worker (``python -m pipeline worker``) on a pre-produced storm over a
   generated 1,000-service topology (:mod:`benchmarks.storm`): alerts/s until it has
   processed them all (``stormwatch_stage_items_total{stage="dedup"}`` on its /metrics), peak
   RSS, Redis commands per alert, CPU cores used by worker, broker and Redis; then, with alerts
   produced at half that rate, the processing latency (``stormwatch_alert_processing_seconds``:
   arrival on alerts.raw -> its correlate step published) and produce -> first incident event
   carrying the alert (which includes the deliberate rate limit of ``updated`` events), next
   to two latency floors at that rate, the pipeline's two hops with no work: through Faust
   with the worker's settings, and through raw confluent-kafka clients (each of the three on
   a fresh broker, see ``processes.fresh_broker``); and 1 vs 2 workers on 4 by-domain
   partitions;
4. peer: Prometheus Alertmanager ingesting the same alerts through ``POST /api/v2/alerts``;
5. ratios.

Each phase deletes its topics when it is done, so the next one starts on a broker without the
last one's data (Tansu keeps everything in memory here; a broker in service has retention).

Usage: ``python -m benchmarks.streaming [--alerts N] [--quick] [--budget-s S] [--json OUT]``;
``--latency-at R [R ...]`` (``make bench-latency``) runs only the latency phase and both floors
at the given rates.

Modules: ``cli`` (options, order of the phases), ``ceilings`` (phases 1-2), ``backlog``
(phase 3 throughput and scaling), ``latency`` (latency phase), ``floors`` (latency floors),
``alertmanager`` (phase 4), ``report`` (tables, JSON), ``processes`` (workers, brokers),
``kafka`` (client helpers), ``metrics`` (the worker's /metrics), ``memory`` (RSS),
``faust_apps`` (the Faust subprocesses), ``console`` (output).
"""
