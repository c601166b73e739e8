"""Feedback on a published id, fanned out to the per-domain incidents it stands for."""

from __future__ import annotations

import msgspec

from pipeline.domain.merge.state import MergeState
from pipeline.domain.schemas import Feedback, FeedbackAction


def live_members(state: MergeState, group_id: str) -> list[tuple[str, str, int]]:
    """(per-domain incident id, domain, partition) of the live members of the group
    ``group_id`` names (or of that incident alone), by id."""
    grp = state.groups.get(state.find(group_id))
    ids = sorted(grp.members) if grp is not None else [group_id]
    recs = state.records
    return [(i, recs[i].domain, recs[i].partition) for i in ids if i in recs and not recs[i].gone]


def fan_out(state: MergeState, fb: Feedback) -> list[tuple[int, Feedback]]:
    """(partition, feedback) per live member: ack, resolve, verdict and a confirmed root
    cause go to every member under its own id; merge and split only to the member the id
    names."""
    members = live_members(state, fb.incident_id)
    if fb.action in (FeedbackAction.merge, FeedbackAction.split_alerts):
        return [(p, fb) for iid, _, p in members if iid == fb.incident_id]
    return [(p, msgspec.structs.replace(fb, incident_id=iid)) for iid, _, p in members]
