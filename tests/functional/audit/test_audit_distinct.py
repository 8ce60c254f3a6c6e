"""No two distinct exchanges give byte-identical audit messages (issue 12, item 2).

Real peers: the session's Orthanc is the Imaging Document Source; the gateway runs as its own
process; rsyslog (mutual TLS) is the Audit Record Repository, whose stored messages are
compared. One client makes many identical retrievals at once — first without an
``X-Request-ID``, then all with the same one, as a careless client or a retry would — so
everything that differs between two exchanges' messages is what the gateway put there to
tell them apart: an Audit Record Repository that drops duplicates (which at-least-once
delivery invites) drops only resends.
"""

from __future__ import annotations

import base64
import collections
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from peers.gateway import GatewayProcess, gateway_config
from peers.net import free_port
from peers.orthanc import OrthancServer
from peers.studies import SyntheticStudy
from tests.functional.audit.auditpeer import DICOM, event_of
from tests.functional.audit.conftest import Pki, Rsyslog
from tests.functional.audit.test_audit_gateway import audit_tls
from tests.unit.audit.auditcheck import BOM, request_id_of, validate

OWN = "5.6.7.8"
RLUID = "1.2.3.50"
CLIENT_ID = "viewer-retry-7"
EXCHANGE_ID = "mado-gateway:exchangeId"


def retrieve(url: str, request_id: str | None) -> str:
    """One retrieval read to the end; the X-Request-ID of the answer."""
    headers = {"Accept": DICOM}
    if request_id is not None:
        headers["X-Request-ID"] = request_id
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
        r.read()
        assert r.status == 200
        return str(r.headers["X-Request-ID"])


def exchange_of(root: Any) -> tuple[str, str | None]:
    """(request id, the gateway's own id when the request id was the client's)."""
    own = None
    for obj in root.iter("ParticipantObjectIdentification"):
        if obj.find("ParticipantObjectIDTypeCode").get("csd-code") != "XrequestId":
            continue
        for detail in obj.iter("ParticipantObjectDetail"):
            if detail.get("type") == EXCHANGE_ID:
                own = base64.b64decode(detail.get("value")).decode()
    request_id = request_id_of(root)
    assert request_id is not None
    return request_id, own


def without_request(xml: bytes) -> bytes:
    """The message less its request object: what it would be without item 2."""
    start = xml.rfind(b"<ParticipantObjectIdentification", 0, xml.find(b"XrequestId"))
    close = b"</ParticipantObjectIdentification>"
    end = xml.find(close, start) + len(close)
    return xml[:start] + xml[end:]


def test_identical_concurrent_retrievals_never_give_identical_messages(
    orthanc: OrthancServer, study: SyntheticStudy, rsyslog: Rsyslog, pki: Pki, tmp_path: Path
) -> None:
    instance = study.instances[3]
    config = gateway_config(
        home_community_id=OWN,
        port=free_port(),
        upstreams={"orthanc": {"protocol": "wado-rs", "base_urls": [orthanc.dicomweb_url]}},
        sources={RLUID: "orthanc"},
        extra={"audit": audit_tls(rsyslog, pki, tmp_path)},
    )
    with GatewayProcess(tmp_path / "gw", config) as gateway:
        url = (
            f"{gateway.endpoint}homeCommunityId/{OWN}/RetrieveLocationUID/{RLUID}/studies/"
            f"{study.study_uid}/series/{instance.series_uid}/instances/{instance.sop_instance_uid}"
        )
        with ThreadPoolExecutor(16) as pool:
            own_ids = list(pool.map(lambda _: retrieve(url, None), range(64)))
            offered = list(pool.map(lambda _: retrieve(url, CLIENT_ID), range(32)))
    # the gateway stopped: everything it journalled has been sent
    assert len(set(own_ids)) == 64
    assert set(offered) == {CLIENT_ID}

    exchanges: dict[bytes, set[tuple[str, str | None]]] = collections.defaultdict(set)
    per_exchange: dict[tuple[str, str | None], set[bytes]] = collections.defaultdict(set)
    for line in rsyslog.received():
        xml = line[line.index(BOM) + len(BOM) :]
        root = validate(xml)
        if event_of(root) not in {"110102", "110103", "110104"}:
            continue
        key = exchange_of(root)
        exchanges[xml].add(key)
        per_exchange[key].add(xml)  # a resend (at least once) is the same bytes again
    # 96 exchanges, each with its Begin Transferring, its RAD-107 leg and its RAD-160 leg
    assert len(per_exchange) == 96
    assert {len(xmls) for xmls in per_exchange.values()} == {3}
    assert {request for request, _ in per_exchange} == set(own_ids) | {CLIENT_ID}
    twins_without_item_2 = collections.Counter(without_request(xml) for xml in exchanges)
    shared = {xml: keys for xml, keys in exchanges.items() if len(keys) > 1}
    assert not shared, f"{len(shared)} messages shared by distinct exchanges"
    twins = sum(n - 1 for n in twins_without_item_2.values())
    print(
        f"\n96 identical retrievals: {len(exchanges)} distinct messages; without the request "
        f"object {twins} of them would have had a twin"
    )
