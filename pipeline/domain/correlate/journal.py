"""Membership changes as they happen, for the full membership kept outside the correlator.

Every change of which incident an alert belongs to is one operation, in order: an alert
joined an incident, a split moved alerts from one incident to another, an incident was
merged into another (its members are the survivor's from then on). The worker writes them
to the store with the state they belong to; :class:`Memberships` replays them in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Joined:
    incident: str
    alert_ids: list[str] = field(default_factory=list)


@dataclass
class Moved:
    source: str
    target: str
    alert_ids: list[str]


@dataclass
class Merged:
    source: str
    target: str


MembershipOp = Joined | Moved | Merged


class MembershipJournal:
    """The operations since the last :meth:`take`, consecutive joins of one incident
    folded into one."""

    __slots__ = ("ops",)

    def __init__(self) -> None:
        self.ops: list[MembershipOp] = []

    def joined(self, incident: str, alert_id: str) -> None:
        last = self.ops[-1] if self.ops else None
        if isinstance(last, Joined) and last.incident == incident:
            last.alert_ids.append(alert_id)
        else:
            self.ops.append(Joined(incident, [alert_id]))

    def moved(self, source: str, target: str, alert_ids: list[str]) -> None:
        self.ops.append(Moved(source, target, list(alert_ids)))

    def merged(self, source: str, target: str) -> None:
        self.ops.append(Merged(source, target))

    def take(self) -> list[MembershipOp]:
        ops, self.ops = self.ops, []
        return ops


class Memberships:
    """Full membership rebuilt from journal operations (replay, tests): incident id -> its
    alert ids in joining order (a merged incident has none: the survivor holds them)."""

    def __init__(self) -> None:
        self.members: dict[str, list[str]] = {}
        self.merged_into: dict[str, str] = {}

    def apply(self, ops: list[MembershipOp]) -> None:
        for op in ops:
            if isinstance(op, Joined):
                self.members.setdefault(op.incident, []).extend(op.alert_ids)
            elif isinstance(op, Moved):
                gone = set(op.alert_ids)
                src = self.members.get(op.source, [])
                self.members[op.source] = [a for a in src if a not in gone]
                self.members.setdefault(op.target, []).extend(op.alert_ids)
            else:
                moved = self.members.pop(op.source, [])
                self.members.setdefault(op.target, []).extend(moved)
                self.merged_into[op.source] = op.target

    def of(self, incident: str) -> list[str]:
        return list(self.members.get(incident, ()))
