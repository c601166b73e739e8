"""``stormwatch oncall``: load the on-call directory into Redis, ask who is on call and why,
change overrides and ownership at run time, import iCalendar/PagerDuty schedules, export
iCalendar feeds. Errors end with one line on stderr and exit code 2 (as the rest of the CLI).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from pipeline.adapters.oncall_store import OnCallStore
    from pipeline.domain.oncall import Directory, Person

oncall_app = typer.Typer(
    no_args_is_help=True,
    help="On-call: who should respond (schedules, overrides, ownership). docs/oncall.md",
)
override_app = typer.Typer(no_args_is_help=True, help="Overrides: leave, swap, cover.")
oncall_app.add_typer(override_app, name="override")
err = Console(stderr=True)

FileOption = Annotated[
    Path | None,
    typer.Option("--file", help="answer from this on-call YAML instead of Redis"),
]


def fail(message: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _store() -> OnCallStore:
    from pipeline.adapters.oncall_store import OnCallStore
    from pipeline.config import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        fail(str(exc))
    import redis

    client = redis.Redis.from_url(
        settings.redis.url.get_secret_value(), socket_timeout=10, socket_connect_timeout=5
    )
    return OnCallStore(client, settings.redis.key_prefix)


def _redis_call(fn: Any, *args: Any) -> Any:
    import redis

    try:
        return fn(*args)
    except redis.RedisError as exc:
        fail(f"cannot reach Redis ({exc}); check STORMWATCH_REDIS__URL")
    except ValueError as exc:  # refused change, or a stored directory that no longer parses
        fail(str(exc))


def _read_yaml(path: Path) -> Any:
    import yaml

    if not path.is_file():
        fail(f"file {str(path)!r} does not exist")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        fail(f"{path}: not valid YAML ({exc.__class__.__name__}: {str(exc).splitlines()[0]})")
    except UnicodeDecodeError:
        fail(f"{path}: not a text file")


def _read_json(path: Path) -> Any:
    if not path.is_file():
        fail(f"file {str(path)!r} does not exist")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        fail(f"{path}: not JSON ({exc.msg} at line {exc.lineno})")
    except UnicodeDecodeError:
        fail(f"{path}: not a text file")


def _from_file(path: Path, topology: Path | None = None) -> Directory:
    from pipeline.domain.oncall import parse_directory

    owners: dict[str, str] = {}
    if topology is not None:
        from pipeline.domain.topology import Topology, TopologyError  # networkx: only if asked

        try:
            owners = Topology.load(topology).teams
        except TopologyError as exc:
            fail(str(exc))
    try:
        return parse_directory(_read_yaml(path), str(path), owners)
    except ValueError as exc:
        fail(str(exc))


def read_directory(path: Path, topology: Path | None = None) -> Directory:
    """An on-call file, checked; a bad one ends the program with a one-line message."""
    return _from_file(path, topology)


def _directory(file: Path | None) -> Directory:
    if file is not None:
        return _from_file(file)
    store = _store()
    return _redis_call(store.directory)


def parse_at(value: str | None, option: str = "--at") -> datetime:
    """Now, or an ISO 8601 time (without an offset: UTC)."""
    if value is None or value == "now":
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option} {value!r} is not an ISO 8601 time like 2026-03-08T09:00-05:00")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@oncall_app.command("load")
def load(
    file: Annotated[Path, typer.Argument(help="on-call YAML (people, teams, services, schedules)")],
    topology: Annotated[
        Path | None, typer.Option(help="topology YAML whose services' 'team' fields win")
    ] = None,
) -> None:
    """Check an on-call file and store it in Redis, replacing what was there."""
    directory = _from_file(file, topology)
    _redis_call(_store().replace, directory)
    err.print(
        f"loaded {len(directory.people)} people, {len(directory.teams)} teams, "
        f"{len(directory.schedules)} schedules, {len(directory.owners)} service owners"
    )


@oncall_app.command("who")
def who_cmd(
    team: Annotated[str | None, typer.Option(help="team id")] = None,
    service: Annotated[str | None, typer.Option(help="service: asks its owning team")] = None,
    at: Annotated[
        str | None, typer.Option(help="ISO 8601 time (default now; no offset: UTC)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    file: FileOption = None,
) -> None:
    """Who is on call for a team (or a service's owner), why, and until when."""
    if (team is None) == (service is None):
        fail("give one of --team T or --service S")
    when = parse_at(at)
    directory = _directory(file)
    if service is not None:
        team = directory.owner(service)
        if team is None:
            fail(f"service {service!r} has no owner; add it to 'services' or the topology")
    assert team is not None
    try:
        answers = directory.who(team, when)
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps({"team": team, "oncall": [a.to_dict() for a in answers]}, indent=2))
        return
    for answer in answers:
        person = directory.people.get(answer.person or "")
        contact = ", ".join(f"{k} {v}" for k, v in person.handles.items()) if person else ""
        name = person.display if person else "nobody"
        line = f"{answer.schedule}: {name}" + (f" ({contact})" if contact else "")
        print(line)
        print(f"  why: {answer.reason}")


@oncall_app.command("escalation")
def escalation(
    team: Annotated[str, typer.Option(help="team id (its escalation_policy)")],
    at: Annotated[
        str | None, typer.Option(help="when the incident opens (default now; no offset: UTC)")
    ] = None,
    file: FileOption = None,
) -> None:
    """Dry run of a team's escalation policy: who each step would page, and when, if nobody
    acknowledged."""
    from pipeline.domain.oncall.escalation import recipients, start, tick

    when = parse_at(at)
    directory = _directory(file)
    try:
        name = directory.team(team).escalation_policy
    except ValueError as exc:
        fail(str(exc))
    if name is None:
        fail(f"team {team!r} has no escalation_policy")
    policy = directory.policies[name]
    state, pages = start(policy, "dry-run", when)
    while state.next_at is not None:
        state, more = tick(policy, state, state.next_at)
        pages.extend(more)
    for page in pages:
        paged = recipients(directory, page.targets, page.at)
        names = ", ".join(directory.people[p.person].display for p in paged) or "nobody"
        minutes = int((page.at - when).total_seconds() // 60)
        print(f"+{minutes:>4} min  step {page.step + 1} (pass {page.cycle + 1}): {names}")
    print(f"then: {state.status}")


@oncall_app.command("export")
def export(
    schedule: Annotated[str | None, typer.Option(help="schedule name")] = None,
    person: Annotated[str | None, typer.Option(help="person id")] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="ISO 8601 start (default: 7 days ago)")
    ] = None,
    days: Annotated[int, typer.Option(help="days covered from the start")] = 97,
    output: Annotated[Path | None, typer.Option(help="write here instead of stdout")] = None,
    file: FileOption = None,
) -> None:
    """An iCalendar feed of a schedule's or a person's on-call shifts."""
    from pipeline.domain.oncall import timeline
    from pipeline.domain.oncall.ical import export_ical

    if (schedule is None) == (person is None):
        fail("give one of --schedule S or --person P")
    if not 0 < days <= 800:
        fail(f"--days {days} must be between 1 and 800")
    now = datetime.now(UTC)
    begin = parse_at(start, "--from") if start else now - timedelta(days=7)
    end = begin + timedelta(days=days)
    directory = _directory(file)
    try:
        if schedule is not None:
            segments = timeline(directory.schedule(schedule), begin, end)
            name = schedule
        else:
            assert person is not None
            segments = directory.shifts_of(person, begin, end)
            name = f"on call: {directory.people[person].display}"
    except ValueError as exc:
        fail(str(exc))
    feed = export_ical(name, segments, directory.people, now)
    if output is None:
        sys.stdout.buffer.write(feed)
    else:
        try:
            output.write_bytes(feed)
        except OSError as exc:
            fail(f"cannot write {str(output)!r}: {exc.strerror}")
        err.print(f"{feed.count(b'BEGIN:VEVENT')} shifts written to {output}")


@oncall_app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="an .ics calendar or PagerDuty schedule JSON")],
    schedule: Annotated[str | None, typer.Option(help="name of the schedule it becomes")] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="ical, pagerduty or auto (from the file's suffix)")
    ] = "auto",
    time_zone: Annotated[
        str, typer.Option(help="iCalendar: zone of floating and all-day events")
    ] = "UTC",
    overrides: Annotated[
        Path | None, typer.Option(help="PagerDuty: GET /schedules/{id}/overrides JSON")
    ] = None,
    store: Annotated[
        bool, typer.Option("--store", help="add it to the directory in Redis")
    ] = False,
    file_dir: FileOption = None,
) -> None:
    """Turn an iCalendar or PagerDuty schedule into an on-call schedule: printed as YAML
    (with any new people) for the on-call file, or stored in Redis with --store. People
    are matched against the directory (--file, else Redis)."""
    import yaml

    from pipeline.domain.oncall.config import dump_person, dump_schedule
    from pipeline.domain.oncall.ical import import_ical
    from pipeline.domain.oncall.pagerduty import import_pagerduty

    if fmt == "auto":
        fmt = "ical" if file.suffix.lower() in (".ics", ".ical", ".ifb") else "pagerduty"
    if fmt not in ("ical", "pagerduty"):
        fail(f"--format must be ical, pagerduty or auto, not {fmt!r}")
    if not file.is_file():
        fail(f"file {str(file)!r} does not exist")
    directory = _directory(file_dir)
    new_people: dict[str, Person] = {}
    try:
        if fmt == "ical":
            sched = import_ical(
                file.read_text(), schedule or file.stem, time_zone, directory.people, str(file)
            )
        else:
            extra = _read_json(overrides) if overrides else None
            sched, new_people = import_pagerduty(
                _read_json(file), directory.people, extra, schedule
            )
    except (ValueError, OSError) as exc:
        fail(f"{file}: {exc}" if str(file) not in str(exc) else str(exc))
    if store:
        _redis_call(_store().put_schedule, sched, new_people)
        err.print(f"stored schedule {sched.name!r} ({len(new_people)} new people)")
        return
    doc: dict[str, Any] = {"schedules": {sched.name: dump_schedule(sched)}}
    if new_people:
        doc = {"people": {p: dump_person(x) for p, x in new_people.items()}, **doc}
    print(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), end="")


@override_app.command("add")
def override_add(
    schedule: Annotated[str, typer.Option(help="schedule name")],
    kind: Annotated[str, typer.Option(help="leave, swap or cover")],
    person: Annotated[str, typer.Option(help="who is on leave / swaps / covers")],
    start: Annotated[str, typer.Option(help="ISO 8601 start (no offset: schedule's zone)")],
    end: Annotated[str, typer.Option(help="ISO 8601 end (no offset: schedule's zone)")],
    other: Annotated[
        str | None, typer.Option(help="swap: with whom; cover: only in place of whom")
    ] = None,
    override_id: Annotated[str | None, typer.Option("--id", help="default: generated")] = None,
    note: Annotated[str, typer.Option(help="free text")] = "",
) -> None:
    """Add an override to a schedule in Redis (takes effect at once, no restart)."""
    import uuid

    data = {
        "id": override_id or f"o-{uuid.uuid4().hex[:8]}",
        "kind": kind,
        "person": person,
        "start": start,
        "end": end,
        "other": other,
        "note": note,
    }
    stored = _redis_call(_store().add_override, schedule, data)
    print(json.dumps(stored))


@override_app.command("remove")
def override_remove(
    override_id: Annotated[str, typer.Argument(help="override id")],
    schedule: Annotated[str, typer.Option(help="schedule name")],
) -> None:
    """Remove an override from a schedule in Redis."""
    if not _redis_call(_store().remove_override, schedule, override_id):
        fail(f"schedule {schedule!r} has no override {override_id!r}")
    err.print(f"removed {override_id}")


@override_app.command("list")
def override_list(schedule: Annotated[str, typer.Option(help="schedule name")]) -> None:
    """The overrides of a schedule in Redis, as JSON lines, in the order they apply."""
    for item in _redis_call(_store().overrides, schedule):
        print(json.dumps(item))


@oncall_app.command("owner")
def owner(
    service: Annotated[str, typer.Argument(help="service name")],
    team: Annotated[str | None, typer.Option(help="new owning team")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="remove the owner")] = False,
) -> None:
    """Show or change which team owns a service (in Redis, at once)."""
    store = _store()
    if team is not None or clear:
        if team is not None and clear:
            fail("give --team T or --clear, not both")
        _redis_call(store.set_owner, service, team)
    current = _redis_call(store.directory).owner(service)
    print(json.dumps({"service": service, "team": current}))
