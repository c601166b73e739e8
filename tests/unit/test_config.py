from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import ConfigError, load_settings


def test_defaults_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORMWATCH_KAFKA__BOOTSTRAP_SERVERS", "k1:9092,k2:9093")
    monkeypatch.setenv("STORMWATCH_TOPICS__PARTITIONS", "8")
    s = load_settings()
    assert s.kafka.bootstrap_servers == "k1:9092,k2:9093"
    assert s.topics.partitions == 8
    assert s.kafka.faust_broker() == "kafka://k1:9092;kafka://k2:9093"


def test_sasl_passed_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORMWATCH_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("STORMWATCH_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("STORMWATCH_KAFKA__SASL_USERNAME", "sw")
    monkeypatch.setenv("STORMWATCH_KAFKA__SASL_PASSWORD", "hunter2")
    conf = load_settings().kafka.confluent_config()
    assert conf["security.protocol"] == "SASL_SSL"
    assert conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert conf["sasl.password"] == "hunter2"


def test_invalid_setting_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORMWATCH_TOPICS__PARTITIONS", "zero")
    with pytest.raises(ConfigError) as info:
        load_settings()
    msg = str(info.value)
    assert "STORMWATCH_TOPICS__PARTITIONS" in msg and "\n" not in msg


def test_config_command_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORMWATCH_KAFKA__SASL_PASSWORD", "hunter2")
    monkeypatch.setenv("STORMWATCH_REDIS__URL", "redis://user:s3cret@redis:6379/0")
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output and "s3cret" not in result.output
    data = json.loads(result.output)
    assert data["redis"]["url"] == "redis://user:**********@redis:6379/0"


def test_config_command_rejects_bad_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORMWATCH_KAFKA__BOOTSTRAP_SERVERS", "nohostport")
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 2
    assert "STORMWATCH_KAFKA__BOOTSTRAP_SERVERS" in result.output
    assert "Traceback" not in result.output


def test_worker_roles_are_validated_and_normalized() -> None:
    assert load_settings(worker={"roles": " correlate , ingest"}).worker.role_set == {
        "correlate",
        "ingest",
    }
    with pytest.raises(ConfigError, match="STORMWATCH_WORKER__ROLES"):
        load_settings(worker={"roles": "ingest,bogus"})


def test_model_settings_groups_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORMWATCH_CORRELATION__JOIN_GAP_S", "300")
    monkeypatch.setenv("STORMWATCH_CORRELATION__RANK__MAX_CANDIDATES", "3")
    monkeypatch.setenv("STORMWATCH_SCORING__PAGE_THRESHOLD", "0.3")
    monkeypatch.setenv("STORMWATCH_DETECTION__REST", "20")
    s = load_settings()
    assert s.correlation.join_gap_s == 300.0 and s.correlation.rank.max_candidates == 3
    assert s.scoring.page_threshold == 0.3
    from pipeline.domain.detectors import DetectorBank

    assert DetectorBank(s.detection).new_detector().rest == 20


def test_list_and_table_settings_take_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORMWATCH_CORRELATION__PAGE_GATES", '[["critical", 2, 60]]')
    monkeypatch.setenv("STORMWATCH_CORRELATION__LINK_LABELS", '["host"]')
    monkeypatch.setenv("STORMWATCH_DETECTION__DETECTOR_PARAMS", '{"window": 100}')
    s = load_settings()
    assert s.correlation.page_gates == (("critical", 2, 60.0),)
    assert s.correlation.link_labels == ("host",)
    assert s.detection.detector_params == {"window": 100}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STORMWATCH_CORRELATION__QUIET_PERIOD_S", "-1"),
        ("STORMWATCH_SCORING__PAUSE_THRESHOLD", "1.5"),
        ("STORMWATCH_DETECTION__THRESHOLD", "2"),
        ("STORMWATCH_CORRELATION__RANK__MAX_CANDIDATES", "0"),
        ("STORMWATCH_CORRELATION__PAGE_GATES", '[["bogus", 2, 60]]'),
        ("STORMWATCH_CORRELATION__KIND_PATTERNS", '[["error", "("]]'),
        ("STORMWATCH_DETECTION__DETECTOR_PARAMS", '{"rst": 1}'),
    ],
)
def test_model_settings_are_checked(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    msg = str(info.value)
    assert name in msg and "\n" not in msg, msg
