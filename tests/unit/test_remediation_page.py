"""The incident page shows the incident's remediation trail under its runbook: the
diagnostics' output, the actions and refusals, escaped like every other text."""

from __future__ import annotations

from pipeline.app.pages.render import incident_html, remediation_rows
from pipeline.app.pages.view import decode_record, incident_view
from pipeline.domain.remediation.audit import AuditKind, AuditRecord, encode_record
from tests.unit.test_incident_pages import BOUTIQUE, NOW, _incident, _record


def test_the_page_lists_the_remediation_trail_escaped() -> None:
    inc = _incident()
    base = {"incident_id": inc.id, "runbook_id": "restart-crashed-process", "at": 1.8e9}
    trail = [
        AuditRecord(id="1", kind=AuditKind.proposed, **base),
        AuditRecord(
            id="2",
            kind=AuditKind.diagnostic,
            step_id="status",
            action="process.status",
            instances=["cartservice"],
            detail="cartservice: EXITED pid 0 <script>alert(1)</script>",
            **base,
        ),
        AuditRecord(
            id="3",
            kind=AuditKind.refused,
            guard="approval",
            actor="mallory",
            detail="mallory may not approve",
            **base,
        ),
    ]
    rows = remediation_rows([*map(encode_record, trail), b"not json"])
    assert [r.id for r in rows] == ["1", "2", "3"]  # the unreadable one is skipped
    page = incident_html(incident_view(decode_record(_record(inc)), BOUTIQUE, NOW, 5), rows)
    section = page[page.index('id="remediation"') :]
    assert "cartservice: EXITED pid 0 &lt;script&gt;" in section and "<script>" not in page
    assert "refused (approval)" in section and "mallory" in section
    assert "process.status" in section and "2027-01-15 08:00:00Z" in section
    plain = incident_html(incident_view(decode_record(_record(inc)), BOUTIQUE, NOW, 5))
    assert 'id="remediation"' not in plain
