"""``stormwatch remediation run``: the remediation process.

It consumes ``incidents`` (what the workers publish) and ``feedback`` (approvals and
denials), runs the pure engine (:mod:`pipeline.domain.remediation.engine`) with its state
in Redis and the real executors, publishes every audit record on ``remediations`` (key:
incident id), and verifies pending actions on a timer. Offsets are committed only after
the records of the messages before them were acknowledged by the broker: a crash
re-reads them, and deterministic action and record ids make that harmless (an action
already recorded is verified, not run again). One process leads at a time (a Redis key
renewed every loop); others stand by and take over within ``LEADER_TTL_S``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import msgspec
import redis
import structlog
from confluent_kafka import Consumer, Message, Producer
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from pipeline.adapters.remediation.executor import Executors
from pipeline.adapters.remediation.redis_state import RedisRemediationState
from pipeline.app.topics import ensure_topics
from pipeline.auth import ApproverKeyError, load_approver_keys
from pipeline.config import Settings
from pipeline.domain.remediation.audit import AuditRecord, encode_record
from pipeline.domain.remediation.engine import Engine, EngineSettings
from pipeline.domain.remediation.guards import Approval, BreakerSettings, Decision
from pipeline.domain.remediation.runbook import RunbookError, load_runbooks
from pipeline.domain.remediation.signing import approval_refusal
from pipeline.domain.remediation.success import SuccessModel
from pipeline.domain.remediation.targets import InventoryError, load_inventory
from pipeline.domain.schemas import Feedback, FeedbackAction, IncidentEvent
from pipeline.domain.topology import Topology, TopologyError

log = structlog.get_logger("stormwatch.remediation")

_event = msgspec.json.Decoder(IncidentEvent)
_feedback = msgspec.json.Decoder(Feedback)
MODEL_KEY = "rem:model"
#: a leader that stops renewing (killed) is replaced this long after its last renewal
LEADER_TTL_S = 10.0


class RemediationMetrics:
    """``stormwatch_remediation_*`` on the process's own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.records = Counter(
            "stormwatch_remediation_records",
            "audit records written, by kind and refusing guard",
            ["kind", "guard"],
            registry=registry,
        )
        self.pending = Gauge(
            "stormwatch_remediation_pending", "actions executing or verifying", registry=registry
        )
        self.kill_switch = Gauge(
            "stormwatch_remediation_kill_switch", "1 while the kill switch is on", registry=registry
        )
        self.pages = Counter(
            "stormwatch_remediation_pages", "records asking for a person", registry=registry
        )


class SetupError(ValueError):
    """Bad runbooks, inventory or topology: one line saying what and where."""


def approver_keys(settings: Settings) -> dict[str, str] | None:
    """The approvers' signing keys (None: not configured, approvals are not signed)."""
    path = settings.remediation.approver_keys
    if path is None:
        return None
    try:
        return load_approver_keys(path)
    except ApproverKeyError as exc:
        raise SetupError(str(exc)) from None


def build_engine(settings: Settings, client: redis.Redis) -> tuple[Engine, RedisRemediationState]:
    """The engine with Redis state, real executors and the stored success model."""
    rs = settings.remediation
    try:
        runbooks = load_runbooks(rs.runbooks)
        inventory = load_inventory(rs.inventory)
        topology = Topology.load(settings.topology)
    except (RunbookError, InventoryError, TopologyError) as exc:
        raise SetupError(str(exc)) from None
    state = RedisRemediationState(client, prefix=settings.redis.key_prefix)
    raw: Any = client.get(settings.redis.key_prefix + MODEL_KEY)
    model = SuccessModel.restore(msgspec.json.decode(raw)) if raw else SuccessModel()
    engine = Engine(
        runbooks,
        inventory,
        state,
        Executors(kubernetes=kubernetes_executor(rs.kubernetes)),
        model=model,
        settings=EngineSettings(
            breaker=BreakerSettings(
                max_global=rs.breaker_max_global,
                max_per_service=rs.breaker_max_per_service,
                window_s=rs.breaker_window_s,
            ),
            lock_ttl_s=rs.lock_ttl_s,
            dry_run_first=rs.dry_run_first,
        ),
        topology=topology,
    )
    return engine, state


def kubernetes_executor(mode: str) -> Any:
    if mode == "off":
        return None
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    from pipeline.adapters.remediation.kubernetes import KubernetesExecutor

    if mode == "in-cluster":
        k8s_config.load_incluster_config()
    else:
        k8s_config.load_kube_config()
    return KubernetesExecutor(k8s.ApiClient())


class RemediationProcess:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        state: RedisRemediationState,
        client: redis.Redis,
        clock: Callable[[], float] = time.time,
        keys: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        #: approvers' signing keys: approvals count only when signed (None: not checked)
        self.keys = keys
        self.engine = engine
        self.state = state
        self.client = client
        self.clock = clock
        conf = settings.kafka.confluent_config()
        self.consumer = Consumer(
            {
                **conf,
                "group.id": f"{settings.worker.app_id}-remediation",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": settings.worker.session_timeout_s * 1000,
                "max.poll.interval.ms": max(60_000, settings.worker.session_timeout_s * 1000),
                "fetch.wait.max.ms": settings.worker.fetch_max_wait_ms,
            }
        )
        self.producer = Producer({**conf, "acks": "all", "enable.idempotence": True})
        self.published = 0
        self.token = uuid.uuid4().hex
        self.registry = CollectorRegistry()
        self.metrics = RemediationMetrics(self.registry)

    def handle(self, msg: Message) -> list[AuditRecord]:
        """One message of ``incidents`` or ``feedback``; undecodable ones are logged, skipped."""
        topics = self.settings.topics
        now = self.clock()
        value = msg.value() or b""
        try:
            if msg.topic() == topics.incidents:
                ev = _event.decode(value)
                limit = self.settings.remediation.max_event_age_s
                fresh = not limit or now - ev.at.timestamp() <= limit
                return self.engine.on_incident(ev.incident, now, fresh=fresh)
            fb = _feedback.decode(value)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            log.warning("remediation.bad_message", topic=msg.topic(), error=str(exc)[:200])
            return []
        if fb.action not in (FeedbackAction.approve, FeedbackAction.deny):
            return []
        runbook = fb.runbook
        if runbook is None:
            facts = self.state.facts(fb.incident_id)
            rb = self.engine.runbook_for(facts) if facts is not None else None
            runbook = rb.id if rb is not None else None
        if runbook is None:
            log.warning("remediation.approval_without_runbook", incident=fb.incident_id)
            return []
        decision = Decision.approve if fb.action is FeedbackAction.approve else Decision.deny
        approval = Approval(user=fb.user or "?", decision=decision, at=fb.timestamp.timestamp())
        if self.keys is not None:
            why = approval_refusal(
                self.keys,
                fb.incident_id,
                fb.action.value,
                fb.runbook,
                fb.user,
                fb.timestamp,
                fb.signature,
            )
            if why is not None:
                return self.engine.refuse_approval(fb.incident_id, runbook, approval, why, now)
        return self.engine.on_approval(fb.incident_id, runbook, approval, now)

    def publish(self, records: list[AuditRecord]) -> None:
        for rec in records:
            self.producer.produce(
                self.settings.topics.remediations,
                key=rec.incident_id.encode(),
                value=encode_record(rec),
            )
            log.info(
                "remediation." + str(rec.kind),
                incident=rec.incident_id,
                runbook=rec.runbook_id,
                step=rec.step_id,
                action=rec.action,
                guard=rec.guard or None,
                ok=rec.ok,
                detail=rec.detail[:200] or None,
            )
        for rec in records:
            self.metrics.records.labels(str(rec.kind), rec.guard or "none").inc()
            if rec.page:
                self.metrics.pages.inc()
        if records:
            left = self.producer.flush(30)
            if left:
                raise RuntimeError(f"{left} remediation records not acknowledged by the broker")
            self.published += len(records)

    def save_model(self) -> None:
        if not self.engine.updates:
            return
        for update in self.engine.updates:
            log.info("remediation.model_update", **msgspec.to_builtins(update))
        self.client.set(
            self.settings.redis.key_prefix + MODEL_KEY,
            msgspec.json.encode(self.engine.model.snapshot()),
        )
        self.engine.updates.clear()

    def serve_metrics(self) -> None:
        """``/metrics`` on 127.0.0.1:``metrics_port`` (raises OSError when it is taken)."""
        port = self.settings.remediation.metrics_port
        if port:
            start_http_server(port, addr="127.0.0.1", registry=self.registry)

    def lead(self, stop: threading.Event) -> bool:
        """Wait until this process leads (False when stopped first)."""
        waiting = False
        while not stop.is_set():
            if self.state.lead(self.token, LEADER_TTL_S):
                if waiting:
                    log.info("remediation.leading")
                return True
            if not waiting:
                log.info("remediation.standby", reason="another remediation process leads")
                waiting = True
            stop.wait(1.0)
        return False

    def run(self, stop: threading.Event) -> None:
        if not self.lead(stop):
            return
        ensure_topics(
            self.settings,
            names=[
                self.settings.topics.incidents,
                self.settings.topics.feedback,
                self.settings.topics.remediations,
            ],
        )
        self.consumer.subscribe([self.settings.topics.incidents, self.settings.topics.feedback])
        tick = self.settings.remediation.tick_interval_s
        next_tick = 0.0
        try:
            while not stop.is_set():
                if not self.state.lead(self.token, LEADER_TTL_S):
                    raise RuntimeError("lost the remediation leadership (Redis key expired)")
                msgs = self.consumer.consume(num_messages=200, timeout=tick)
                records: list[AuditRecord] = []
                for msg in msgs:
                    if msg.error() is not None:
                        log.warning("remediation.consume_error", error=str(msg.error()))
                        continue
                    records += self.handle(msg)
                if time.monotonic() >= next_tick:
                    records += self.engine.tick(self.clock())
                    next_tick = time.monotonic() + tick
                    self.metrics.pending.set(len(self.state.pending()))
                    self.metrics.kill_switch.set(1 if self.state.kill_switch() else 0)
                self.publish(records)
                self.save_model()
                if any(m.error() is None for m in msgs):
                    self.consumer.commit(asynchronous=False)
        finally:
            self.consumer.close()
            self.producer.flush(10)
