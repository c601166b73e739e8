"""Texts of the merge stage: why two per-domain incidents were merged, and the explanation
of a cross-domain group ("Merged across N correlation domains (...)")."""

from __future__ import annotations

from pipeline.domain.explain import fmt_delay
from pipeline.domain.merge.state import Group, Record

#: merge reasons a group keeps (and the explanation lists at most 3 of)
MAX_REASONS = 8
_LISTED = 3


def merge_reason(
    rec: Record, service: str, other: Record, relation: str, via: str, gap_s: float
) -> str:
    """Why ``rec`` (its ``service``) and ``other`` (through ``via``) were merged."""
    here = f"{service} ({rec.domain})"
    there = f"{via} ({other.domain}, in {other.id})"
    if relation == "same":
        text = f"same service {service} alerting in {rec.id} and {other.id}"
    elif relation == "calls":
        text = f"{here} depends on {there}"
    elif relation == "called-by":
        text = f"{there} depends on {here}"
    elif relation == "shared-dependency":
        text = f"{here} and an alerting service of {other.id} ({other.domain}) both call {via}"
    elif relation == "blast-radius":
        text = f"{here} is in the blast radius of {other.id}'s root cause {via} ({other.domain})"
    else:
        text = f"{here} is near {there} ignoring call direction"
    scope = "across domains" if other.domain != rec.domain else "(group spans domains)"
    return f"{rec.id} merged with {other.id} {scope}: {text}, alerts {fmt_delay(gap_s)} apart"


def add_reason(grp: Group, why: str) -> None:
    grp.n_reasons += 1
    if len(grp.reasons) < MAX_REASONS:
        grp.reasons.append(why)


def group_explanation(grp: Group) -> str:
    """The explanation of a cross-domain group."""
    doms = sorted(grp.domains)
    more = f", ... {len(doms) - 4} more" if len(doms) > 4 else ""
    plural = "s" if len(doms) != 1 else ""
    lines = [
        f"Merged across {len(doms)} correlation domain{plural} ({', '.join(doms[:4])}{more}): "
        f"{len(grp.members)} per-domain incidents."
    ]
    lines += grp.reasons[:_LISTED]
    if grp.n_reasons > _LISTED:
        lines.append(f"... and {grp.n_reasons - _LISTED} more merges.")
    if grp.root and grp.candidates:
        lines.append(
            f"Root cause re-ranked over the merged evidence ({len(grp.evidence)} services): "
            f"{grp.root} ({grp.candidates[0].score:.2f})."
        )
    return "\n".join(lines)
