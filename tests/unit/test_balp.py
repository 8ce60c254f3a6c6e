"""The BALP renderer: a record as a FHIR R4 AuditEvent (gateway.audit.balp), pure."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from gateway.audit import messages
from gateway.audit.balp import audit_event, render_fhir
from gateway.audit.messages import AlertKind
from gateway.audit.record import AuditRecord, LegacyFrame
from routing.ids import HomeCommunityId
from routing.model import Identity

IDENTITY = Identity(
    home_community_id=HomeCommunityId("5.6.7.8"),
    audit_source_id="rig.a.example.org",
    enterprise_site_id="CommunityA",
)
AT = datetime(2026, 3, 16, 10, 15, 30, 120000, tzinfo=UTC)


def alert(target: str = "https://evil.example/x", at: datetime = AT) -> AuditRecord:
    message = messages.security_alert(
        IDENTITY,
        kind=AlertKind.REFUSED_URL,
        target=target,
        description="refused",
        at=at,
        reporter="rig.a.example.org",
    )
    return AuditRecord(
        event="security-alert", recorded_at=at, process_id=7, request_id="req-1", message=message
    )


def test_security_alert_maps_element_by_element() -> None:
    resource = audit_event(alert())
    assert resource["resourceType"] == "AuditEvent"
    assert resource["type"] == {
        "system": "http://dicom.nema.org/resources/ontology/DCM",
        "code": "110113",
        "display": "Security Alert",
    }
    assert resource["recorded"] == "2026-03-16T10:15:30.120Z"
    assert resource["outcome"] in {"0", "4", "8", "12"}
    assert resource["source"]["observer"] == {"display": "rig.a.example.org"}
    assert resource["source"]["site"] == "CommunityA"
    assert "meta" not in resource  # no BALP pattern for a Security Alert
    targets = [e["what"]["identifier"]["value"] for e in resource["entity"]]
    assert "https://evil.example/x" in targets
    assert "req-1" in targets


def test_legacy_frame_has_no_audit_event() -> None:
    assert render_fhir(LegacyFrame(b"<85>1 - - - - - -")) is None


@given(
    st.text(min_size=1, max_size=80).filter(lambda t: t.strip() and t.isprintable()),
    st.integers(min_value=-12 * 60, max_value=14 * 60),
)
def test_any_target_and_zone_give_json_with_a_utc_instant(target: str, minutes: int) -> None:
    at = AT.astimezone(timezone(timedelta(minutes=minutes)))
    body = render_fhir(alert(target, at))
    assert body is not None
    resource = json.loads(body)
    assert resource["recorded"] == "2026-03-16T10:15:30.120Z"
    assert any(e["what"]["identifier"]["value"] == target for e in resource["entity"])


def test_balp_loads_no_asyncio_or_aiohttp() -> None:
    code = (
        "import sys, gateway.audit.balp;"
        "print(','.join(m for m in ('aiohttp', 'asyncio') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_request_id_is_one_xrequestid_entity_whether_the_message_or_the_record_names_it() -> (
    None
):
    from dataclasses import replace

    from gateway.audit.objects import request_object

    plain = alert()
    with_object = replace(
        plain,
        message=replace(plain.message, objects=(*plain.message.objects, request_object("req-1"))),
    )
    for record in (plain, with_object):
        kinds = [e["type"].get("code") for e in audit_event(record)["entity"]]
        assert kinds.count("XrequestId") == 1
