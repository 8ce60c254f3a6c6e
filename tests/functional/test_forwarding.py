"""What the gateways send upstream, seen by a recording upstream: the request-target byte for
byte (checklist item 11, and the responding gateway's rewrite) — through gateway processes."""

from __future__ import annotations

import http.client
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peers.gateway import GatewayProcess, gateway_config
from peers.net import free_port
from tests.functional.recorder import Recorder

COMMUNITY_A = "1.3.6.1.4.1.21367.13.70.1"
COMMUNITY_B = "1.3.6.1.4.1.21367.13.70.2"
RLUID = "1.3.6.1.4.1.21367.13.70.1.200"
STUDY = "1.2.826.0.1.3680043.10.99.1"


def send(gateway: GatewayProcess, target: str, **headers: str) -> tuple[int, bytes]:
    """GET a raw request-target: http.client sends it exactly as given."""
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    try:
        connection.putrequest("GET", target, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name.replace("_", "-"), value)
        connection.endheaders()
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    with Recorder() as up:
        yield up


@pytest.fixture(scope="module")
def initiating(
    recorder: Recorder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """Community B's initiating gateway; community A's responding gateway is the recorder."""
    config = gateway_config(
        home_community_id=COMMUNITY_B,
        port=free_port(),
        upstreams={"community-a": {"protocol": "xc-wado", "base_urls": [recorder.url + "rig/"]}},
        communities={COMMUNITY_A: "community-a"},
    )
    with GatewayProcess(tmp_path_factory.mktemp("iig"), config, name="iig") as gateway:
        yield gateway


@pytest.fixture(scope="module")
def responding(
    recorder: Recorder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """Community A's responding gateway; its Imaging Document Source is the recorder."""
    config = gateway_config(
        home_community_id=COMMUNITY_A,
        port=free_port(),
        upstreams={"ids": {"protocol": "wado-rs", "base_urls": [recorder.url + "ids/"]}},
        sources={RLUID: "ids"},
        url_policy={"allowed_origins": [recorder.url]},
    )
    with GatewayProcess(tmp_path_factory.mktemp("rig"), config, name="rig") as gateway:
        yield gateway


_HEX = "0123456789abcdefABCDEF"
# RFC 3986 query characters, raw, but not the pair separators '&' and '=', and the
# characters aiohttp's parser accepts raw though RFC 3986 does not (not '#').
_RAW = "abcXYZ019-._~!$'()*+,;:@/?\\\"<>{}|^`[]"
escape = (
    st.integers(min_value=0x20, max_value=0xFF)
    .filter(lambda byte: byte != 0x7F)  # controls are refused with 400 by design
    .flatmap(lambda byte: st.sampled_from([f"%{byte:02X}", f"%{byte:02x}", f"%{byte:02X}".title()]))
)
piece = st.one_of(
    st.sampled_from(["%2F", "%2f", "%41", "%3d", "%3D", "%26", "%25", "%20", "+", "%2B", "%C3%A9"]),
    escape,
    st.text(alphabet=_RAW, min_size=1, max_size=4),
)
word = st.lists(piece, max_size=5).map("".join)
pair = (
    st.tuples(word, st.sampled_from(["=", ""]), word)
    .map("".join)
    .filter(lambda p: p.split("=")[0].lower() not in {"retrieveurl", "accept"})
)
query = st.lists(pair, min_size=1, max_size=6).map("&".join).filter(bool)  # "?" alone is no query
hcid_spelling = st.sampled_from(
    [COMMUNITY_A, f"urn:oid:{COMMUNITY_A}", f"urn%3Aoid%3A{COMMUNITY_A}", f"URN:OID:{COMMUNITY_A}"]
)
resource = st.sampled_from(
    [
        f"studies/{STUDY}",
        f"study/{STUDY}/",
        f"studies/{STUDY}/series/1.2.3",
        f"studies/{STUDY}/metadata",
    ]
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@pytest.mark.checklist(11)
@given(hcid=hcid_spelling, tail=resource, raw_query=query)
def test_initiating_gateway_forwards_path_and_query_byte_for_byte(
    initiating: GatewayProcess, recorder: Recorder, hcid: str, tail: str, raw_query: str
) -> None:
    """Checklist item 11: the IIG forwards the remaining path and the query string
    byte-for-byte to the RIG base URL — as the RIG receives them, not as the IIG builds them."""
    relayed = f"homeCommunityId/{hcid}/RetrieveLocationUID/{RLUID}/{tail}?{raw_query}"
    before = len(recorder.requests)
    status, _ = send(initiating, f"/wado/{relayed}")
    assert status == 200
    (received,) = recorder.requests[before:]
    assert received.target == f"/rig/{relayed}".encode()


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tail=resource, raw_query=query, position=st.integers(min_value=0, max_value=6))
def test_responding_gateway_forwards_the_query_unchanged_but_for_retrieveurl(
    responding: GatewayProcess, recorder: Recorder, tail: str, raw_query: str, position: int
) -> None:
    """The RIG → source hop: the prefix goes, ``study`` becomes ``studies``, the query is
    forwarded as received with only its ``retrieveurl`` pair removed."""
    resource_path = tail.replace("study/", "studies/").rstrip("/")
    prefix = f"/wado/homeCommunityId/{COMMUNITY_A}/RetrieveLocationUID/{RLUID}/{tail}"

    before = len(recorder.requests)
    assert send(responding, f"{prefix}?{raw_query}")[0] == 200
    (received,) = recorder.requests[before:]
    assert received.target == f"/ids/{resource_path}?{raw_query}".encode()

    pairs = raw_query.split("&")
    retrieve_url = f"RetrieveURL={recorder.url}other/"
    with_url = "&".join([*pairs[:position], retrieve_url, *pairs[position:]])
    before = len(recorder.requests)
    status, body = send(responding, f"{prefix}?{with_url}")
    assert status == 200, body
    (received,) = recorder.requests[before:]
    assert received.target == f"/other/{resource_path}?{raw_query}".encode()


@pytest.mark.checklist(11)
def test_the_field_report_example_arrives_as_sent(
    initiating: GatewayProcess, recorder: Recorder
) -> None:
    """Checklist item 11, the field report's example: %2F, %41 and %3d arrive as sent."""
    raw_query = "a=%2F&b=%41&c=%3d&d=x+y"
    before = len(recorder.requests)
    status, _ = send(
        initiating,
        f"/wado/homeCommunityId/{COMMUNITY_A}/RetrieveLocationUID/{RLUID}/studies/{STUDY}?{raw_query}",
    )
    assert status == 200
    assert recorder.requests[before].target.endswith(f"/studies/{STUDY}?{raw_query}".encode())


DICOM = 'multipart/related; type="application/dicom"'


def both_hops(
    initiating: GatewayProcess, responding: GatewayProcess, tail: str
) -> list[tuple[GatewayProcess, str]]:
    prefix = f"/wado/homeCommunityId/{COMMUNITY_A}/RetrieveLocationUID/{RLUID}/"
    return [(initiating, prefix + tail), (responding, prefix + tail)]


@pytest.mark.checklist(20)
def test_the_clients_accept_reaches_the_upstream_as_sent(
    initiating: GatewayProcess, responding: GatewayProcess, recorder: Recorder
) -> None:
    """Checklist item 20: gateways pass the client's Accept (media type and
    transfer-syntax) to the upstream — the IIG to the RIG, the RIG to the source."""
    accept = f'{DICOM};transfer-syntax="1.2.840.10008.1.2.4.70", {DICOM}; q=0.5'
    for gateway, target in both_hops(initiating, responding, f"studies/{STUDY}"):
        before = len(recorder.requests)
        assert send(gateway, target, Accept=accept)[0] == 200
        assert recorder.requests[before].header("accept") == [accept]


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        (f"studies/{STUDY}", DICOM),
        (f"studies/{STUDY}/series/1.2.3/instances/1.2.3.4", DICOM),
        (f"studies/{STUDY}/metadata", "application/dicom+json"),
        (f"studies/{STUDY}/series/1.2.3/rendered", "*/*"),
        (f"studies/{STUDY}/series/1.2.3/instances/1.2.3.4/frames/1", "*/*"),
    ],
)
@pytest.mark.checklist(22)
def test_every_outbound_request_carries_an_accept(
    initiating: GatewayProcess,
    responding: GatewayProcess,
    recorder: Recorder,
    tail: str,
    expected: str,
) -> None:
    """Checklist item 22: every outbound WADO-RS request includes an Accept header, also
    when the client sent none (the DICOMweb default of the resource)."""
    for gateway, target in both_hops(initiating, responding, tail):
        before = len(recorder.requests)
        assert send(gateway, target)[0] == 200
        assert recorder.requests[before].header("accept") == [expected]


@pytest.mark.checklist(23)
def test_forbidden_transfer_syntaxes_never_reach_the_upstream(
    initiating: GatewayProcess, responding: GatewayProcess, recorder: Recorder
) -> None:
    """Checklist item 23: ranges asking for Implicit VR Little Endian or Explicit VR Big
    Endian are dropped; with nothing else acceptable the request is a 406 and nothing is sent."""
    mixed = (
        f"{DICOM}; transfer-syntax=1.2.840.10008.1.2, "
        f"{DICOM}; transfer-syntax=1.2.840.10008.1.2.1; q=0.5, "
        f'{DICOM}; Transfer-Syntax="1.2.840.10008.1.2.2"; q=0.9'
    )
    for gateway, target in both_hops(initiating, responding, f"studies/{STUDY}"):
        before = len(recorder.requests)
        assert send(gateway, target, Accept=mixed)[0] == 200
        sent = recorder.requests[before].header("accept")
        assert sent == [f"{DICOM}; transfer-syntax=1.2.840.10008.1.2.1; q=0.5"]

        only = f"{DICOM}; transfer-syntax=1.2.840.10008.1.2"
        status, body = send(gateway, target, Accept=only)
        assert status == 406 and b"unsupported-transfer-syntax" in body
        assert len(recorder.requests) == before + 1  # the 406 sent nothing upstream
