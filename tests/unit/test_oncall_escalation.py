"""Escalation policies: steps with delays, round robin, repeats, ack, ack timeout, resolve."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from pipeline.domain.oncall import parse_directory
from pipeline.domain.oncall.escalation import (
    EscalationError,
    Target,
    acknowledge,
    parse_policy,
    recipients,
    resolve,
    start,
    tick,
)

T0 = datetime(2026, 3, 9, 16, 0, tzinfo=UTC)  # Monday 12:00 in New York
M = timedelta(minutes=1)
POLICY = {
    "steps": [
        {"delay": "5m", "targets": [{"schedule": "payments-primary"}]},
        {
            "delay": "10m",
            "targets": [{"person": "alice"}, {"person": "carol"}],
            "round_robin": True,
        },
        {"delay": "15m", "targets": [{"team": "web"}]},
    ],
    "repeat": 1,
    "ack_timeout": "30m",
}


def directory():  # type: ignore[no-untyped-def]
    path = Path(__file__).parents[1] / "fixtures" / "oncall" / "oncall.yaml"
    return parse_directory(yaml.safe_load(path.read_text()), str(path))


def test_the_on_call_file_carries_the_policy() -> None:
    assert directory().policies["payments"] == parse_policy("payments", POLICY)
    assert directory().team("payments").escalation_policy == "payments"


def test_steps_page_in_order_round_robin_rotates_and_repeats_end_it() -> None:
    policy = parse_policy("payments", POLICY, directory())
    state, pages = start(policy, "inc-1", T0)
    assert [(p.step, p.at) for p in pages] == [(0, T0)] and state.next_at == T0 + 5 * M
    # nothing before the delay runs out
    assert tick(policy, state, T0 + 4 * M) == (state, [])
    state, pages = tick(policy, state, T0 + 5 * M)
    assert [(p.step, p.targets) for p in pages] == [(1, (Target("person", "alice"),))]
    # a late tick catches up: step 3 at +15, then the second pass starts at +30
    state, pages = tick(policy, state, T0 + 31 * M)
    assert [(p.step, p.cycle, p.at) for p in pages] == [(2, 0, T0 + 15 * M), (0, 1, T0 + 30 * M)]
    state, pages = tick(policy, state, T0 + 35 * M)
    assert pages[0].targets == (Target("person", "carol"),)  # round robin: the next one
    state, pages = tick(policy, state, T0 + 2 * 60 * M)
    assert [p.step for p in pages] == [2]
    assert state.status == "exhausted" and state.next_at is None


def test_ack_stops_escalation_and_its_timeout_retriggers_from_the_first_step() -> None:
    policy = parse_policy("payments", POLICY)
    state, _ = start(policy, "inc-2", T0)
    state = acknowledge(policy, state, T0 + 2 * M)
    assert state.status == "acknowledged" and state.next_at == T0 + 32 * M
    assert tick(policy, state, T0 + 31 * M)[1] == []
    state, pages = tick(policy, state, T0 + 32 * M)
    assert [(p.step, p.cycle) for p in pages] == [(0, 0)]
    assert state.status == "escalating" and state.triggered == 2


def test_resolve_ends_escalation_for_good() -> None:
    policy = parse_policy("payments", POLICY)
    state, _ = start(policy, "inc-3", T0)
    state = resolve(state)
    assert tick(policy, state, T0 + 600 * M) == (state, [])
    assert acknowledge(policy, state, T0 + 601 * M).status == "resolved"


def test_without_ack_timeout_an_ack_is_final_until_feedback() -> None:
    policy = parse_policy("p", {"steps": [{"delay": "1m", "targets": [{"person": "bob"}]}]})
    state, _ = start(policy, "inc-4", T0)
    state = acknowledge(policy, state, T0)
    assert state.next_at is None and tick(policy, state, T0 + 1000 * M)[1] == []


def test_recipients_are_who_is_on_call_once_each() -> None:
    d = directory()
    targets = (
        Target("schedule", "payments-primary"),
        Target("person", "bob"),
        Target("team", "web"),
    )
    paged = recipients(d, targets, T0)
    assert [p.person for p in paged] == ["bob", "dave", "erin"]
    assert paged[0].reason.startswith("on call on payments-primary: bob: layer 'business-hours'")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"steps": []}, "needs at least one step"),
        ({"steps": [{"delay": "soon", "targets": [{"person": "bob"}]}]}, "not a duration"),
        ({"steps": [{"delay": "5m", "targets": [{"pager": "bob"}]}]}, "'pager' is not"),
        ({"steps": [{"delay": "5m", "targets": [{"person": "zed"}]}]}, "unknown person 'zed'"),
        ({"steps": [{"delay": "5m", "targets": []}]}, "has no targets"),
    ],
)
def test_policy_errors_are_one_line(data: object, message: str) -> None:
    with pytest.raises(EscalationError, match=message):
        parse_policy("p", data, directory())
