"""Settings from the environment (prefix ``STORMWATCH_``); the only module that reads it.

Nested groups use ``__``: ``STORMWATCH_KAFKA__BOOTSTRAP_SERVERS=broker:9092``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.domain.correlate import CorrelationSettings
from pipeline.domain.detectors import DetectorSettings
from pipeline.domain.formats.generic import GenericMapping
from pipeline.domain.scoring import ScoringSettings


class ConfigError(ValueError):
    """Invalid configuration; the message is one line naming the setting and the fix."""


class KafkaSettings(BaseModel):
    bootstrap_servers: str = Field("127.0.0.1:9092", description="host:port[,host:port]")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    client_id: str = "stormwatch"

    @field_validator("bootstrap_servers")
    @classmethod
    def _hostports(cls, v: str) -> str:
        for part in v.split(","):
            host, _, port = part.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"{part!r} is not host:port")
        return v

    def confluent_config(self) -> dict[str, Any]:
        """librdkafka settings for confluent-kafka clients (security passed through)."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
            "client.id": self.client_id,
        }
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
            conf["sasl.username"] = self.sasl_username or ""
            pw = self.sasl_password
            conf["sasl.password"] = pw.get_secret_value() if pw else ""
        if self.ssl_cafile:
            conf["ssl.ca.location"] = str(self.ssl_cafile)
        if self.ssl_certfile:
            conf["ssl.certificate.location"] = str(self.ssl_certfile)
        if self.ssl_keyfile:
            conf["ssl.key.location"] = str(self.ssl_keyfile)
        return conf

    def faust_broker(self, scheme: str = "kafka") -> str:
        return ";".join(f"{scheme}://{hp.strip()}" for hp in self.bootstrap_servers.split(","))


class TopicSettings(BaseModel):
    alerts_raw: str = "alerts.raw"
    metrics_raw: str = "metrics.raw"
    dlq: str = "alerts.dlq"
    incidents: str = "incidents"
    feedback: str = "feedback"
    remediations: str = "remediations"
    partitions: int = Field(4, ge=1, le=10_000)
    replication_factor: int = Field(1, ge=1, le=16)
    max_message_bytes: int = Field(
        1_000_000,
        ge=4096,
        description="largest message the broker accepts (Kafka's message.max.bytes); the "
        "publisher refuses bigger ones locally",
    )


class RedisSettings(BaseModel):
    url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    key_prefix: str = "sw:"
    dedup_ttl_s: int = Field(6 * 3600, ge=1, description="how long a seen alert id is remembered")
    incident_ttl_s: int = Field(
        30 * 86400,
        ge=60,
        description="incident records and memberships expire this long after the incident "
        "closed (resolved or merged)",
    )
    max_members: int = Field(
        100_000,
        ge=100,
        description="member alert ids kept per incident (the newest; older ones only counted)",
    )
    compress_above: int = Field(
        65536,
        ge=0,
        description="checkpoints of this many bytes or more are stored zlib-compressed (a "
        "correlator's state in a storm is megabytes per partition, written every commit; "
        "about 4x smaller for ~7 ms of CPU per MB in the commit thread); 0: never",
    )

    def store_options(self) -> dict[str, Any]:
        """Keyword arguments of ``RedisStore.from_url``."""
        return {
            "prefix": self.key_prefix,
            "dedup_ttl_s": self.dedup_ttl_s,
            "incident_ttl_s": self.incident_ttl_s,
            "max_members": self.max_members,
            "compress_above": self.compress_above,
        }


WORKER_ROLES = ("ingest", "correlate", "feedback", "metrics", "insights")


class InsightsLiveSettings(BaseModel):
    """The worker's live insights (docs/insights.md), maintained from the topics by the
    processes with the ``insights`` role."""

    refresh_s: float = Field(
        300.0, ge=0, description="rebuild the report (metrics, /insights) this often; 0: off"
    )
    lease_s: float = Field(
        15.0,
        ge=1,
        le=300,
        description="the insights lease: one process with the insights role feeds them, "
        "renewing it every third of this; a stand-by takes over this long after it stopped",
    )
    learned_edges: bool = Field(
        False,
        description="learned-edges mode: correlation also relates services through the "
        "suggested missing edges at or above learned_edge_confidence (as learned calls)",
    )
    learned_edge_confidence: float = Field(
        0.99, ge=0.5, le=1, description="the confidence (1 - q) a suggested edge needs to be used"
    )


class WorkerSettings(BaseModel):
    app_id: str = "stormwatch"
    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, ge=0, le=65535)
    web_tokens: SecretStr | None = Field(
        None,
        description="bearer tokens for the web server's writes (PUT, POST, DELETE: on-call "
        "ownership and overrides), separated by commas, spaces or newlines",
    )
    web_token_file: Path | None = Field(
        None,
        description="a file of bearer tokens (one a line; '#' starts a comment) or a directory "
        "of such files (a mounted Kubernetes secret); adds to web_tokens",
    )
    web_insecure: bool = Field(
        False,
        description="accept writes without a token (development only; no tokens set). Without "
        "tokens and without this, writes are refused (403)",
    )
    web_protect_reads: bool = Field(
        False,
        description="reads need a token too (incident, insights and on-call pages, feeds); "
        "/healthz and /metrics stay open for probes and scrapers. Needs tokens",
    )
    batch_size: int = Field(500, ge=1, le=100_000, description="alerts taken per stream batch")
    batch_timeout_s: float = Field(
        0.005, gt=0, le=60, description="longest wait to fill a batch (latency per hop)"
    )
    fetch_max_wait_ms: int = Field(
        500, ge=0, le=60_000, description="consumer fetch long-poll wait (bounds idle polls)"
    )
    fetch_max_bytes: int = Field(
        262_144,
        ge=16_384,
        le=64 * 1024**2,
        description="bytes one fetch returns per partition at most (aiokafka's "
        "max_partition_fetch_bytes): a backlog arrives in chunks of this size per raw "
        "partition, and event-time alignment holds about one chunk per raw partition",
    )
    loop: Literal["uvloop", "asyncio"] = Field("uvloop", description="event loop")
    data_dir: Path = Field(
        Path(".stormwatch/data"), description="Faust's local data directory (per app id)"
    )
    tick_interval_s: float = Field(1.0, gt=0, le=3600, description="lifecycle timer period")
    checkpoint_interval_s: float = Field(30.0, gt=0, description="model checkpoint period")
    full_gc_interval_s: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="run Python's full (oldest-generation) garbage collection on this timer "
        "instead of whenever it triggers itself (each pause stops the worker ~0.1 s); 0: "
        "Python's default",
    )
    commit_interval_s: float = Field(
        1.0,
        ge=0,
        le=60,
        description="write correlate state to Redis and acknowledge its messages at most this "
        "often (a crash re-consumes at most this much; 0: after every step)",
    )
    rebalance_timeout_s: float = Field(
        60.0, gt=0, description="consumer-group rebalance timeout; a few seconds in dev/tests"
    )
    update_interval_s: float = Field(
        1.0,
        ge=0,
        le=60,
        description="at most one `updated` event per incident per interval (0: every change)",
    )
    max_event_bytes: int = Field(
        262_144,
        ge=4096,
        description="an event on `incidents` is at most this big: members beyond it are "
        "counted, not listed (the full membership stays in Redis)",
    )
    max_event_alerts: int = Field(
        100, ge=0, le=100_000, description="member alerts listed in an event at most"
    )
    roles: str = Field(
        ",".join(WORKER_ROLES),
        description="agents this process runs, comma-separated: ingest, correlate, feedback, "
        "metrics, insights (split ingest and correlate into separate processes to use more "
        "cores; the insights feed runs in one process at a time, elected by a Redis lease)",
    )
    session_timeout_s: float = Field(
        30.0,
        ge=6,
        le=90,
        description="consumer session timeout; some brokers hold a group's first join for "
        "half of it",
    )
    max_step_alerts: int = Field(
        0,
        ge=0,
        le=1_000_000,
        description="alerts one correlate step releases from the alignment buffer at most; "
        "the rest go in the next steps, so a watermark that jumps far ahead does not block "
        "the other agents of the process (the merge stage, ingest) for seconds (0: no bound, "
        "the default: both 1,000,000-alert 2-worker bench runs with 2,000 stalled, cause not "
        "found)",
    )
    max_ingest_ahead: int = Field(
        40_000,
        ge=0,
        description="in a process running ingest and correlate: alerts routed ahead of this "
        "process's correlation before alerts.raw is paused (0: no limit)",
    )
    domains: int | Literal["auto"] = Field(
        1,
        description="correlation domains the largest connected part of the topology is split "
        "into, so that several workers correlate it (a cross-domain merge stage unites their "
        "incidents); 'auto': one per 250 services; 1: not split",
    )
    max_domain_skew_s: float = Field(
        1800.0,
        gt=0,
        description="with the topology split into domains: event time a domain may correlate "
        "ahead of the slowest other domain, as the merge stage has seen them (bounds how late "
        "its controls come and how far apart the domains' summaries reach it)",
    )
    max_held_alerts: int = Field(
        200_000,
        ge=0,
        le=10_000_000,
        description="alerts a correlate partition holds back until every input partition still "
        "behind has reached their event time, so a backlog read from several partitions is "
        "grouped as it happened (event-time alignment); while a process's correlators hold more "
        "than a quarter of it, raw partitions running ahead are not fetched; beyond it the "
        "oldest go on; 0: off. A "
        "broker returns whole produced record batches, so a backlog produced in large batches "
        "(10,000 messages) arrives in steps that large per raw partition: the bound must cover "
        "them",
    )
    stall_after_s: float = Field(
        120.0,
        gt=0,
        description="/healthz answers 503 when a partition with messages waiting has not "
        "moved for this long",
    )
    clock: Literal["wall", "event"] = Field(
        "wall", description="lifecycle clock: wall time, or the newest event time seen"
    )

    @field_validator("domains")
    @classmethod
    def _domains(cls, v: int | str) -> int | str:
        if v != "auto" and (not isinstance(v, int) or v < 1):
            raise ValueError("domains must be a whole number >= 1 or 'auto'")
        return v

    @field_validator("roles")
    @classmethod
    def _roles(cls, v: str) -> str:
        names = [r.strip() for r in v.split(",") if r.strip()]
        unknown = [r for r in names if r not in WORKER_ROLES]
        if unknown or not names:
            raise ValueError(f"roles must be a comma list of {', '.join(WORKER_ROLES)}")
        return ",".join(names)

    @property
    def role_set(self) -> frozenset[str]:
        return frozenset(self.roles.split(","))


GATEWAY_PUBLIC_PATHS = ("/healthz", "/metrics")


class GatewaySettings(BaseModel):
    """The HTTP ingest gateway (``stormwatch ingest``); docs/gateway.md."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    tokens: SecretStr | None = Field(
        None, description="bearer tokens, separated by commas, spaces or newlines"
    )
    token_file: Path | None = Field(
        None,
        description="a file of bearer tokens (one a line; '#' starts a comment) or a directory "
        "of such files (a mounted Kubernetes secret)",
    )
    insecure: bool = Field(
        False, description="accept requests without a token (development only; no tokens set)"
    )
    public_paths: str = Field(
        ",".join(GATEWAY_PUBLIC_PATHS),
        description="paths served without a token, comma-separated: /healthz, /metrics or none",
    )
    pagerduty_routing_key_auth: bool = Field(
        True,
        description="on the PagerDuty endpoints, a request without an Authorization header "
        "may carry a token as the event's routing_key (PagerDuty clients send no headers)",
    )
    max_body_bytes: int = Field(
        4 * 1024**2, ge=1024, le=256 * 1024**2, description="largest request body (413 beyond)"
    )
    max_alerts: int = Field(
        5000, ge=1, le=1_000_000, description="alerts one request may carry (413 beyond)"
    )
    delivery_timeout_s: float = Field(
        10.0,
        gt=0,
        le=300,
        description="longest wait for the broker to acknowledge a request's alerts (503 beyond)",
    )
    retry_after_s: int = Field(5, ge=1, le=3600, description="Retry-After of a 503")

    @field_validator("public_paths")
    @classmethod
    def _public_paths(cls, v: str) -> str:
        names = [p.strip() for p in v.split(",") if p.strip()]
        unknown = [p for p in names if p not in GATEWAY_PUBLIC_PATHS]
        if unknown:
            raise ValueError(
                f"public_paths may list only {', '.join(GATEWAY_PUBLIC_PATHS)} (or be empty)"
            )
        return ",".join(names)

    @property
    def public_path_set(self) -> frozenset[str]:
        return frozenset(p for p in self.public_paths.split(",") if p)


class RemediationSettings(BaseModel):
    """Runbooks and guarded remediation (``stormwatch remediation run``); docs/remediation.md."""

    runbooks: Path = Field(Path("runbooks"), description="directory of runbook YAML files")
    inventory: Path = Field(
        Path("inventories/online-boutique.yaml"),
        description="what runs where: the only source of action targets",
    )
    kill_switch: bool = Field(
        False, description="refuse every action (also settable at run time in Redis)"
    )
    breaker_max_global: int = Field(10, ge=1, description="actions per window, everywhere")
    breaker_max_per_service: int = Field(3, ge=1, description="actions per window, per service")
    breaker_window_s: float = Field(3600.0, gt=0, description="the circuit breaker's window")
    lock_ttl_s: float = Field(3600.0, gt=0, description="a target lock expires after this long")
    dry_run_first: bool = Field(True, description="dry-run every action that has a dry run")
    tick_interval_s: float = Field(1.0, gt=0, le=60, description="verification timer period")
    max_event_age_s: float = Field(
        600.0,
        ge=0,
        description="incident events older than this (a backlog, a first start on old "
        "history) update what is known but start no action; 0: no limit",
    )
    kubernetes: Literal["off", "in-cluster", "kubeconfig"] = Field(
        "off", description="how Kubernetes actions find their cluster"
    )
    approver_keys: Path | None = Field(
        None,
        description="approvers' signing keys: a directory with one file per approver (file "
        "name = user, content = key; a mounted Kubernetes secret), or a file of 'user key' "
        "lines; when set, approve/deny on feedback count only when signed with the user's "
        "key (stormwatch remediation approve signs them)",
    )
    metrics_port: int = Field(
        6067,
        ge=0,
        le=65535,
        description="/metrics of the remediation process on 127.0.0.1 (0: off)",
    )


class ResponderSettings(BaseModel):
    """Responder recommendation on incident events (docs/oncall.md)."""

    enabled: bool = Field(True, description="recommend responders when a directory is loaded")
    top_k: int = Field(3, ge=1, le=5, description="people listed per incident")
    load_penalty: float = Field(
        0.05, ge=0, le=10, description="score / (1 + penalty x pages in the last 24 h)"
    )
    refresh_s: float = Field(
        10.0, gt=0, le=3600, description="how often the on-call directory's version is checked"
    )


class FormatSettings(BaseModel):
    """Alert formats (docs/formats.md): the generic JSON mapping, set field by field
    (``STORMWATCH_FORMATS__GENERIC__SERVICE=host.name``; maps as JSON) or from a YAML/JSON
    file (``STORMWATCH_FORMATS__GENERIC_FILE``), not both."""

    generic: GenericMapping | None = None
    generic_file: Path | None = Field(
        None, description="YAML or JSON file holding the generic mapping (docs/formats.md)"
    )

    @model_validator(mode="after")
    def _load_generic_file(self) -> FormatSettings:
        if self.generic_file is None:
            return self
        if self.generic is not None:
            raise ValueError(
                "generic_file and generic are both set: configure the generic mapping one way"
            )
        self.generic = load_generic_mapping(self.generic_file)
        return self


def load_generic_mapping(path: Path) -> GenericMapping:
    """The generic mapping in a YAML (or JSON) file; ``ValueError`` with one line naming the
    file and the problem."""
    where = f"generic_file {str(path)!r}"
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ValueError(f"{where} cannot be read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ValueError(f"{where} is not valid YAML{at}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{where} must hold a mapping of field: path")
    known = {f.name for f in dataclasses.fields(GenericMapping)}
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    for key in ("severity_map", "status_map"):
        if isinstance(data.get(key), dict):  # YAML reads `1: firing` with an int key
            data[key] = {str(k): v for k, v in data[key].items()}
    try:
        return GenericMapping(**data)
    except TypeError:
        missing = [k for k in ("name",) if k not in data]
        raise ValueError(f"{where}: {', '.join(missing) or 'a field'} must be set") from None
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


class Settings(BaseSettings):
    """All settings. Environment: ``STORMWATCH_<GROUP>__<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="STORMWATCH_", env_nested_delimiter="__", extra="ignore"
    )

    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    redis: RedisSettings = RedisSettings()
    worker: WorkerSettings = WorkerSettings()
    gateway: GatewaySettings = GatewaySettings()
    #: the domain's own settings dataclasses (documented in docs/correlation.md, docs/models.md)
    correlation: CorrelationSettings = Field(default_factory=CorrelationSettings)
    scoring: ScoringSettings = Field(default_factory=ScoringSettings)
    detection: DetectorSettings = Field(default_factory=DetectorSettings)
    formats: FormatSettings = FormatSettings()
    insights: InsightsLiveSettings = InsightsLiveSettings()
    remediation: RemediationSettings = RemediationSettings()
    responders: ResponderSettings = ResponderSettings()
    topology: Path = Path("topologies/online-boutique.yaml")
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("correlation", "scoring", "detection", mode="before")
    @classmethod
    def _json_fields(cls, v: Any) -> Any:
        """Fields that are lists or tables (``PAGE_GATES``, ``LINK_LABELS``,
        ``DETECTOR_PARAMS`` ...) arrive from one environment variable as JSON text."""
        if isinstance(v, dict):
            return {k: _maybe_json(x) for k, x in v.items()}
        return v

    @field_validator("formats", mode="before")
    @classmethod
    def _generic_maps_json(cls, v: Any) -> Any:
        """``SEVERITY_MAP`` / ``STATUS_MAP`` of the generic mapping arrive as JSON text."""
        if isinstance(v, dict) and isinstance(v.get("generic"), dict):
            generic = {
                k: _maybe_json(x) if k in ("severity_map", "status_map") else x
                for k, x in v["generic"].items()
            }
            return {**v, "generic": generic}
        return v

    @model_validator(mode="after")
    def _event_fits_broker(self) -> Settings:
        if self.worker.max_event_bytes > self.topics.max_message_bytes:
            raise ValueError(
                f"STORMWATCH_WORKER__MAX_EVENT_BYTES ({self.worker.max_event_bytes}) must not "
                f"exceed STORMWATCH_TOPICS__MAX_MESSAGE_BYTES ({self.topics.max_message_bytes})"
            )
        return self

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain data, secrets replaced by '**********'."""
        data = self.model_dump(mode="json")
        url = self.redis.url.get_secret_value()
        data["redis"]["url"] = _mask_url(url)
        return data


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _mask_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        creds, _, host = rest.rpartition("@")
        user = creds.split(":", 1)[0] if ":" in creds else ""
        return f"{scheme}{sep}{user}:**********@{host}"
    return url


def load_settings(**overrides: Any) -> Settings:
    """Read settings; raise :class:`ConfigError` with one line naming the bad setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = "__".join(str(p) for p in err["loc"]).upper()
        if not loc:  # a check across groups: its message names the variables
            msg = str(err["msg"]).removeprefix("Value error, ")
            raise ConfigError(f"invalid settings: {msg}; fix the environment") from None
        secret = any(word in loc for word in ("PASSWORD", "URL", "SECRET", "TOKEN"))
        got = "" if secret else f" (got {err.get('input')!r})"
        msg = str(err["msg"])
        if err["type"] == "value_error" and isinstance(err.get("input"), dict):
            # a settings group's own check: its message names the field and the value
            msg = msg.removeprefix("Value error, ")
            field_name = msg.split(" ", 1)[0]
            if field_name in err["input"]:
                loc = f"{loc}__{field_name.upper()}"
            got = ""
        raise ConfigError(
            f"invalid setting STORMWATCH_{loc}: {msg}{got}; "
            "fix the environment variable or unset it"
        ) from None
