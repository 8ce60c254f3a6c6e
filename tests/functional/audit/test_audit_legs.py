"""Every audit message type, built from real exchanges through running gateways, validates
against PS3.15 A.5.1 as published and as corrected, and describes one transaction leg
(issue 12, items 1 and 4).

Real peers: the session's Orthanc is A's Imaging Document Source; gateways A, B and C each
run as their own process, with the default file destination::

    client ──RAD-160──▶ B ──RAD-160──▶ A ──RAD-107 (WADO-RS)──▶ Orthanc
    client ──RAD-69───▶ C ──RAD-75───▶ A ──RAD-107 (WADO-RS)──▶ Orthanc
    client ──RAD-160 with a retrieveurl A's policy refuses──▶ A   (Security Alert)

Every line of the three audit files goes through ``auditcheck.validate`` (the XSD beside the
unit tests and both RELAX NG editions of the shared folder); then the messages are checked
leg by leg against docs/audit.md.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from peers.gateway import GatewayProcess, gateway_config, rad_upstream, soap_url, xca_server
from peers.net import free_port
from peers.orthanc import OrthancServer
from peers.studies import SyntheticStudy
from tests.functional.audit.auditpeer import DICOM, event_of, parse
from tests.functional.soapclient import EXPLICIT_LE, RAD69, SUCCESS, Doc, rad_request, send
from tests.functional.xcairelay import started
from tests.unit.audit.auditcheck import request_id_of, roles_of

COMMUNITY_A = "1.3.6.1.4.1.21367.13.80.1"
COMMUNITY_B = "1.3.6.1.4.1.21367.13.80.2"
COMMUNITY_C = "1.3.6.1.4.1.21367.13.80.3"
RLUID_A = "1.3.6.1.4.1.21367.13.80.1.200"
COMMUNITIES = {"a": COMMUNITY_A, "b": COMMUNITY_B, "c": COMMUNITY_C}
IDENTIFIER_SEGMENTS = ("/studies/", "/series/", "/instances/", "/homecommunityid/", "?")


@dataclass
class Net:
    a: GatewayProcess
    b: GatewayProcess
    c: GatewayProcess


def messages(process: GatewayProcess) -> list[Any]:
    """Every message of ``process``'s audit file, each validated against every schema."""
    log = process.audit_folder / "audit.log"
    return [parse(line) for line in log.read_bytes().split(b"\n")[:-1]]


@pytest.fixture(scope="module")
def net(orthanc: OrthancServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    folder = tmp_path_factory.mktemp("audit-legs")
    a = GatewayProcess(
        folder,
        gateway_config(
            home_community_id=COMMUNITY_A,
            port=free_port(),
            upstreams={"ids-a": {"protocol": "wado-rs", "base_urls": [orthanc.dicomweb_url]}},
            sources={RLUID_A: "ids-a"},
            xca=xca_server(),
        ),
        name="a",
    )
    b = GatewayProcess(
        folder,
        gateway_config(
            home_community_id=COMMUNITY_B,
            port=free_port(),
            upstreams={"community-a": {"protocol": "xc-wado", "base_urls": [a.endpoint]}},
            communities={COMMUNITY_A: "community-a"},
        ),
        name="b",
    )
    c = GatewayProcess(
        folder,
        gateway_config(
            home_community_id=COMMUNITY_C,
            port=free_port(),
            upstreams={"community-a": rad_upstream("rad-75", [soap_url(a)])},
            communities={COMMUNITY_A: "community-a"},
            xca=xca_server(),
        ),
        name="c",
    )
    with started(a, b, c):
        yield Net(a=a, b=b, c=c)


def rad160(gateway: GatewayProcess, study: SyntheticStudy, index: int, query: str = "") -> str:
    instance = study.instances[index]
    return (
        f"{gateway.endpoint}homeCommunityId/urn:oid:{COMMUNITY_A}/RetrieveLocationUID/{RLUID_A}"
        f"/studies/{study.study_uid}/series/{instance.series_uid}"
        f"/instances/{instance.sop_instance_uid}{query}"
    )


def get(url: str) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Accept": DICOM})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()
            return int(answer.status), str(answer.headers["X-Request-ID"])
    except urllib.error.HTTPError as error:
        return error.code, str(error.headers["X-Request-ID"])


async def test_every_message_type_validates_and_each_leg_has_its_own_message(
    net: Net, study: SyntheticStudy
) -> None:
    # RAD-160 through B to A
    status, web_id = await asyncio.to_thread(get, rad160(net.b, study, 7))
    assert status == 200
    # RAD-69 to C, RAD-75 to A, WADO-RS to Orthanc
    instance = study.instances[8]
    doc = Doc(
        study=study.study_uid,
        series=instance.series_uid,
        document_uid=instance.sop_instance_uid,
        repository_id=RLUID_A,
        home_community_id=f"urn:oid:{COMMUNITY_A}",
    )
    envelope = rad_request([doc], [EXPLICIT_LE], action=RAD69, to=soap_url(net.c))
    async with aiohttp.ClientSession() as session:
        answer = await send(session, soap_url(net.c), envelope, action=RAD69)
    assert answer.status == SUCCESS
    # a retrieveurl A's URL policy refuses: a Security Alert naming the request
    refused = "?retrieveurl=" + urllib.parse.quote("https://evil.example.com/wado-rs/", safe="")
    status, refused_id = await asyncio.to_thread(get, rad160(net.a, study, 9, refused))
    assert status == 403
    # stopping flushes the journals and adds Application Stop
    await asyncio.gather(*(asyncio.to_thread(p.stop) for p in (net.a, net.b, net.c)))

    by_gateway = {name: messages(p) for name, p in (("a", net.a), ("b", net.b), ("c", net.c))}
    kinds: collections.Counter[tuple[str, str, str]] = collections.Counter()
    for name, roots in by_gateway.items():
        for root in roots:
            code = root.find("EventIdentification/EventTypeCode")
            kinds[(name, event_of(root), str(code.get("csd-code")))] += 1
    expected = {
        # B: the RAD-160 it answered, and the RAD-160 it asked A
        ("b", "110102", "RAD-160"),
        ("b", "110103", "RAD-160"),
        ("b", "110104", "RAD-160"),
        # C: the RAD-69 it answered, and the RAD-75 it asked A
        ("c", "110102", "RAD-69"),
        ("c", "110103", "RAD-75"),
        ("c", "110104", "RAD-69"),
        # A: both answers, each with its WADO-RS leg to Orthanc, and the refusal
        ("a", "110102", "RAD-160"),
        ("a", "110104", "RAD-160"),
        ("a", "110102", "RAD-75"),
        ("a", "110104", "RAD-75"),
        ("a", "110103", "RAD-107"),
        ("a", "110113", "110132"),
    }
    expected |= {(g, "110100", code) for g in "abc" for code in ("110120", "110121")}
    assert set(kinds) == expected
    assert kinds[("a", "110103", "RAD-107")] == 2  # one per answer
    assert all(n == 1 for kind, n in kinds.items() if kind != ("a", "110103", "RAD-107"))

    for name, roots in by_gateway.items():
        audit_id = f"gateway-{COMMUNITIES[name]}"  # peers.gateway.gateway_config's
        for root in roots:
            _check_leg(root, audit_id)

    # The RAD-160 exchange is one request id end to end: B's, which A received as
    # X-Request-ID; A keeps its own id of the exchange beside it.
    on_b = [r for r in by_gateway["b"] if request_id_of(r) == web_id]
    on_a = [r for r in by_gateway["a"] if request_id_of(r) == web_id]
    assert [event_of(r) for r in on_b] == ["110102", "110103", "110104"]
    assert [event_of(r) for r in on_a] == ["110102", "110103", "110104"]
    own_ids = {_detail(r, "mado-gateway:exchangeId") for r in on_a}
    assert len(own_ids) == 1 and None not in own_ids
    (alert,) = [r for r in by_gateway["a"] if event_of(r) == "110113"]
    assert request_id_of(alert) == refused_id


def _check_leg(root: Any, audit_id: str) -> None:
    """docs/audit.md: one Source and one Destination; the gateway is the Source of what it
    answers and the Destination of what it asks; upstream URLs carry no identifiers."""
    event = event_of(root)
    if event not in {"110102", "110103", "110104"}:
        return
    roles = roles_of(root)
    source, destination = roles["110153"], roles["110152"]
    assert set(roles) == {"110153", "110152"}
    assert source.get("UserIsRequestor") == "false"
    assert destination.get("UserIsRequestor") == "true"
    gateway, other = (destination, source) if event == "110103" else (source, destination)
    assert gateway.get("UserID") == audit_id
    assert gateway.get("NetworkAccessPointID")  # its host
    assert other.get("NetworkAccessPointID") == "127.0.0.1"
    if event == "110103":
        user_id = str(other.get("UserID")).lower()
        assert user_id.startswith("http://127.0.0.1:")
        assert not any(segment in user_id for segment in IDENTIFIER_SEGMENTS), user_id
        assert other.get("AlternativeUserID") in {"ids-a", "community-a"}
    assert request_id_of(root)
    action = root.find("EventIdentification").get("EventActionCode")
    assert action == ("E" if event == "110102" else "R")


def _type(root: Any) -> str:
    return str(root.find("EventIdentification/EventTypeCode").get("csd-code"))


def _detail(root: Any, kind: str) -> str | None:
    for detail in root.iter("ParticipantObjectDetail"):
        if detail.get("type") == kind:
            return base64.b64decode(detail.get("value")).decode()
    return None
