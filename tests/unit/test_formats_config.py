"""The generic mapping in the settings: environment variables or a YAML file, checked at
start-up with one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import ConfigError, load_settings
from pipeline.domain.normalize import normalize_message
from tests.unit.formats_helpers import SAMPLES, sample


def test_no_generic_mapping_by_default() -> None:
    assert load_settings().formats.generic is None


def test_mapping_from_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "SOURCE": "zabbix",
        "SERVICE": "(event_tags[?tag=='service'].value | [0]) || host_name",
        "NAME": "event_name",
        "SEVERITY": "event_severity",
        "SEVERITY_MAP": '{"High": "error", "Disaster": "critical"}',
        "STATUS": "event_value",
        "STATUS_MAP": '{"1": "firing", "0": "resolved"}',
        "LABELS": "{host: host_name, trigger_id: trigger_id}",
    }
    for key, value in env.items():
        monkeypatch.setenv(f"STORMWATCH_FORMATS__GENERIC__{key}", value)
    mapping = load_settings().formats.generic
    assert mapping is not None and mapping.status_map == {"1": "firing", "0": "resolved"}
    [alert] = normalize_message(sample("generic-zabbix-problem.json"), generic=mapping)
    assert (alert.source, alert.service, alert.severity.value) == ("zabbix", "cartservice", "error")


def test_mapping_from_a_yaml_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORMWATCH_FORMATS__GENERIC_FILE", str(SAMPLES / "generic-datadog.yaml"))
    mapping = load_settings().formats.generic
    assert mapping is not None and mapping.source == "datadog"
    assert normalize_message(sample("generic-datadog-triggered.json"), generic=mapping)


@pytest.mark.parametrize(
    ("env", "file_text", "needle"),
    [
        ({"STORMWATCH_FORMATS__GENERIC__NAME": "a.["}, None, "STORMWATCH_FORMATS__GENERIC__NAME"),
        (
            {
                "STORMWATCH_FORMATS__GENERIC__NAME": "n",
                "STORMWATCH_FORMATS__GENERIC__SERVICE": "s",
                "STORMWATCH_FORMATS__GENERIC__STATUS_MAP": '{"x": "up"}',
            },
            None,
            "STORMWATCH_FORMATS__GENERIC__STATUS_MAP",
        ),
        ({"STORMWATCH_FORMATS__GENERIC__SERVICE": "host"}, None, "NAME"),
        ({}, "name: check\nservice: host\nsevrity: level\n", "unknown key(s) sevrity"),
        ({}, "name: check\n", "service must be set"),
        ({}, "name: [unclosed\n", "not valid YAML at line"),
        ({}, "- just a list\n", "must hold a mapping"),
    ],
)
def test_bad_mappings_stop_start_up_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    env: dict[str, str],
    file_text: str | None,
    needle: str,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if file_text is not None:
        path = tmp_path / "mapping.yaml"
        path.write_text(file_text)
        monkeypatch.setenv("STORMWATCH_FORMATS__GENERIC_FILE", str(path))
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert needle in message and "\n" not in message
    if file_text is not None:
        assert "STORMWATCH_FORMATS__GENERIC_FILE" in message


def test_missing_file_and_both_ways_at_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STORMWATCH_FORMATS__GENERIC_FILE", str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match="cannot be read"):
        load_settings()
    monkeypatch.setenv("STORMWATCH_FORMATS__GENERIC_FILE", str(SAMPLES / "generic-datadog.yaml"))
    monkeypatch.setenv("STORMWATCH_FORMATS__GENERIC__NAME", "x")
    monkeypatch.setenv("STORMWATCH_FORMATS__GENERIC__SERVICE", "y")
    with pytest.raises(ConfigError, match="both set"):
        load_settings()


def test_config_command_shows_the_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORMWATCH_FORMATS__GENERIC_FILE", str(SAMPLES / "generic-zabbix.yaml"))
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 0, result.output
    assert '"time_format": "%Y.%m.%d %H:%M:%S"' in result.output


def test_config_command_rejects_a_bad_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORMWATCH_FORMATS__GENERIC__NAME", "x")
    monkeypatch.setenv("STORMWATCH_FORMATS__GENERIC__SERVICE", "y")
    monkeypatch.setenv("STORMWATCH_FORMATS__GENERIC__TIME_FORMAT", "iso")
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 2
    assert "STORMWATCH_FORMATS__GENERIC__TIME_FORMAT" in result.output
    assert "Traceback" not in result.output
