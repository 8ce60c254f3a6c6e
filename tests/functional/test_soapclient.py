"""The XCA-I test kit tested on its own, without a socket: envelopes against the published
schemas, and the two MTOM readers on the packages a conformant or a careless peer may send.
Over a socket: ``test_soapclient_socket``."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.protocols.xca import model
from tests.functional.soapclient import (
    ANONYMOUS,
    EXPLICIT_LE,
    FAILURE,
    IHERAD,
    PARTIAL_SUCCESS,
    RAD69,
    RAD69_RESPONSE,
    RAD75,
    RAD75_RESPONSE,
    RS,
    SOAP12,
    SUCCESS,
    WARNING,
    WSA,
    XDSB,
    XOP,
    Part,
    RegistryErrorRow,
    Returned,
    SoapAnswer,
    cid_url,
    entity_expansion_envelope,
    external_entity_envelope,
    mtom_package,
    nested_envelope,
    oversized_envelope,
    parse_answer,
    plain_content_type,
    rad_request,
    rad_response,
    read_file_answer,
)
from tests.functional.soapfixtures import DOCS, HCID, REPOSITORY, assert_returned, canned, with_hcid
from tests.functional.xdsi_schema import (
    LOADED,
    _InFolderOnly,
    assert_valid_request,
    assert_valid_response,
)

# The bytes edges that break careless MTOM readers (xcai-digest.md §5.1, checklist 13).
EDGES = [b"", b"\r", b"\n", b"\r\n", b"\n\r", b"\r\n\r\n", b"--", b"\r\n--"]


def body_of(envelope: bytes) -> etree._Element:
    element = etree.fromstring(envelope).find(f"{{{SOAP12}}}Body")[0]
    assert element is not None
    return element


# -- constants and envelopes ---------------------------------------------------------------


def test_the_kit_states_the_same_constants_as_the_gateway_model() -> None:
    assert (RAD69, RAD75) == (model.Action.RAD_69, model.Action.RAD_75)
    assert (
        model.Action.RAD_69.response,
        model.Action.RAD_75.response,
    ) == (RAD69_RESPONSE, RAD75_RESPONSE)
    assert tuple(model.Status) == (SUCCESS, PARTIAL_SUCCESS, FAILURE)
    assert WARNING == model.Severity.WARNING
    assert tuple(model.Namespace) == (SOAP12, WSA, XOP, XDSB, IHERAD, RS)


@pytest.mark.parametrize("action", [RAD69, RAD75])
@pytest.mark.parametrize("hcid", [False, True])
def test_requests_with_xdsb_document_requests_validate(action: str, hcid: bool) -> None:
    envelope = rad_request(
        with_hcid(DOCS) if hcid else DOCS,
        [EXPLICIT_LE, "1.2.840.10008.1.2.4.70"],
        action=action,
        to="http://127.0.0.1/xcai",
        message_id="urn:uuid:0d6b6a3c-1f64-4a5e-9d2c-3f1e0e7b9a11",
    )
    assert_valid_request(envelope)
    root = etree.fromstring(envelope)
    header = root.find(f"{{{SOAP12}}}Header")
    must = f"{{{SOAP12}}}mustUnderstand"
    assert header.find(f"{{{WSA}}}Action").text == action
    assert header.find(f"{{{WSA}}}Action").get(must) == "true"
    assert header.find(f"{{{WSA}}}To").get(must) == "true"
    assert header.find(f"{{{WSA}}}MessageID").text.startswith("urn:uuid:")
    assert header.find(f"{{{WSA}}}ReplyTo/{{{WSA}}}Address").text == ANONYMOUS
    studies = body_of(envelope).findall(f"{{{IHERAD}}}StudyRequest")
    assert [len(s.findall(f"{{{IHERAD}}}SeriesRequest")) for s in studies] == [2, 1]
    documents = body_of(envelope).findall(f".//{{{XDSB}}}DocumentRequest")
    assert len(documents) == 4
    assert (documents[0].find(f"{{{XDSB}}}HomeCommunityId") is not None) is hcid


def test_the_nist_schema_rejects_document_requests_in_the_xdsi_namespace() -> None:
    """What IPF's schema expects (iherad:DocumentRequest) is invalid under these schemas."""
    envelope = rad_request(
        DOCS, [EXPLICIT_LE], action=RAD69, to="http://x/", document_namespace=IHERAD
    )
    assert len(body_of(envelope).findall(f".//{{{IHERAD}}}DocumentRequest")) == 4
    with pytest.raises(AssertionError, match=r"DocumentRequest.*not expected"):
        assert_valid_request(envelope)


@pytest.mark.parametrize("syntaxes", [None, []])
def test_requests_without_transfer_syntaxes_are_invalid(syntaxes: list[str] | None) -> None:
    envelope = rad_request(DOCS, syntaxes, action=RAD69, to="http://x/")
    with pytest.raises(AssertionError, match="TransferSyntax"):
        assert_valid_request(envelope)


def test_the_schemas_load_from_their_own_folder_only() -> None:
    assert_valid_request(rad_request(DOCS, [EXPLICIT_LE], action=RAD69, to="http://x/"))
    assert_valid_response(rad_response(status=SUCCESS))
    assert {Path(path).name for path in LOADED} == {
        "XDSI.b_ImagingDocumentSource.xsd",
        "XDS.b_DocumentRepository.xsd",
        "rs.xsd",
        "rim.xsd",
        "xml.xsd",
        "lcm.xsd",
        "query.xsd",
    }
    assert len({Path(path).parent for path in LOADED}) == 1


@pytest.mark.parametrize("location", ["../outside.xsd", "http://127.0.0.1:9/remote.xsd"])
def test_the_schema_loader_refuses_imports_from_elsewhere(tmp_path: Path, location: str) -> None:
    xs = "http://www.w3.org/2001/XMLSchema"
    (tmp_path / "outside.xsd").write_text(
        f'<xs:schema xmlns:xs="{xs}" targetNamespace="urn:b"><xs:element name="b"/></xs:schema>'
    )
    folder = tmp_path / "inside"
    folder.mkdir()
    (folder / "a.xsd").write_text(
        f'<xs:schema xmlns:xs="{xs}" targetNamespace="urn:a">'
        f'<xs:import namespace="urn:b" schemaLocation="{location}"/></xs:schema>'
    )
    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(_InFolderOnly(folder.resolve()))
    with pytest.raises((ValueError, etree.XMLSchemaParseError)):
        etree.XMLSchema(etree.parse(str(folder / "a.xsd"), parser))


def test_responses_validate_with_includes_inline_documents_and_errors() -> None:
    envelope = rad_response(
        status=PARTIAL_SUCCESS,
        documents=[
            Returned(
                home_community_id=HCID,
                repository_id=REPOSITORY,
                document_uid="1.2.3",
                content=b"x",
                content_id="a@b",
            ),
            Returned(
                home_community_id=None, repository_id=REPOSITORY, document_uid="1.2.4", content=b"y"
            ),
        ],
        errors=[RegistryErrorRow("XDSDocumentUniqueIdError", "1.2.5 not found", HCID, WARNING)],
        relates_to="urn:uuid:1",
    )
    assert_valid_response(envelope)
    element = body_of(envelope)
    assert_valid_response(element)
    assert element.find(f".//{{{XOP}}}Include") is not None  # the caller's tree is untouched


def test_an_invalid_response_fails_with_the_schema_messages() -> None:
    envelope = rad_response(
        status=SUCCESS,
        documents=[
            Returned(home_community_id=None, repository_id="", document_uid="1", content=b"")
        ],
    )
    response = body_of(envelope)
    response.find(f".//{{{XDSB}}}mimeType").getparent().remove(
        response.find(f".//{{{XDSB}}}mimeType")
    )
    with pytest.raises(AssertionError, match=r"line \d+: .*Document.*mimeType"):
        assert_valid_response(response)


# -- the MTOM readers ----------------------------------------------------------------------


def both_readers(content_type: str, body: bytes, tmp_path: Path) -> tuple[SoapAnswer, SoapAnswer]:
    path = tmp_path / "answer.bin"
    path.write_bytes(body)
    return parse_answer(200, content_type, body), read_file_answer(200, content_type, path)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    contents=st.lists(
        st.tuples(st.sampled_from(EDGES), st.binary(max_size=40), st.sampled_from(EDGES)).map(
            lambda t: t[0] + t[1] + t[2]
        ),
        min_size=1,
        max_size=4,
    ),
    data=st.data(),
)
def test_both_readers_return_parts_byte_exact(
    contents: list[bytes], data: st.DataObject, tmp_path: Path
) -> None:
    """Parts starting or ending in CR/LF, root anywhere (named by ``start``), binary, absent
    or base64 transfer encodings, cids that need percent-encoding."""
    root_index = data.draw(st.integers(0, len(contents)))
    encodings = data.draw(
        st.lists(
            st.sampled_from(["binary", None, "base64"]),
            min_size=len(contents),
            max_size=len(contents),
        )
    )
    content_type, body, _ = canned(contents, root_index=root_index, encodings=encodings)
    memory, file = both_readers(content_type, body, tmp_path)
    assert_returned(memory, contents, in_memory=True)
    assert_returned(file, contents, in_memory=False)
    assert memory.root_index == file.root_index == root_index
    assert memory.digests == file.digests


def test_cids_are_percent_decoded_from_the_href_only(tmp_path: Path) -> None:
    content_type, body, cids = canned([b"a", b"b", b"c", b"d"])
    assert cid_url(cids[3]) == "cid:doc3%2B%25@mado.test"
    text = body.decode("latin-1")
    assert f'href="{cid_url(cids[3])}"' in text and "Content-ID: <doc3+%@mado.test>" in text
    for answer in both_readers(content_type, body, tmp_path):
        assert answer.document_cids == tuple(cids)
        assert answer.unresolved_cids == ()


def test_a_root_not_first_without_start_is_not_found(tmp_path: Path) -> None:
    envelope = rad_response(status=SUCCESS)
    content_type, body = mtom_package(
        envelope,
        action=None,
        parts=[Part(content_id="x", content=b"\x00")],
        root_index=1,
        start=False,
    )
    for answer in both_readers(content_type, body, tmp_path):
        assert answer.root_index == 0
        assert answer.envelope is None and answer.problem is not None
        assert answer.status is None


def test_unreferenced_parts_and_unresolved_cids_are_reported(tmp_path: Path) -> None:
    envelope = rad_response(
        status=SUCCESS,
        documents=[
            Returned(
                home_community_id=HCID,
                repository_id=REPOSITORY,
                document_uid=uid,
                content=b"",
                content_id=cid,
            )
            for uid, cid in [("1", "missing@x"), ("2", "twice@x"), ("3", "twice@x")]
        ],
    )
    parts = [
        Part(content_id="stray@x", content=b"s"),
        Part(content_id="twice@x", content=b"t"),
    ]
    content_type, body = mtom_package(envelope, action=None, parts=parts)
    for answer in both_readers(content_type, body, tmp_path):
        assert answer.unreferenced_parts == ("stray@x",)
        assert answer.unresolved_cids == ("missing@x",)
        assert answer.multiply_referenced == ("twice@x",)
        assert answer.digests[0] is None and answer.documents[0].content is None


def test_a_package_without_closing_delimiter_is_flagged(tmp_path: Path) -> None:
    content_type, body = mtom_package(
        rad_response(status=SUCCESS),
        action=None,
        parts=[Part(content_id="p", content=b"data\r\n")],
        close=False,
    )
    for answer in both_readers(content_type, body, tmp_path):
        assert not answer.closing_delimiter
        assert answer.status == SUCCESS


def test_plain_soap_answers_with_inline_documents_and_faults() -> None:
    plain = rad_response(
        status=SUCCESS,
        documents=[
            Returned(
                home_community_id=HCID, repository_id=REPOSITORY, document_uid="1", content=b"\r\n"
            )
        ],
        action=RAD75_RESPONSE,
    )
    answer = parse_answer(200, plain_content_type(None), plain)
    assert not answer.mtom and answer.parts == ()
    assert answer.action == RAD75_RESPONSE
    assert answer.documents[0].content == b"\r\n" and answer.document_cids == (None,)

    fault = (
        f'<s:Envelope xmlns:s="{SOAP12}" xmlns:a="{WSA}"><s:Body><s:Fault>'
        "<s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>a:ActionNotSupported"
        "</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang='en'>no</s:Text></s:Reason>"
        "</s:Fault></s:Body></s:Envelope>"
    ).encode()
    answer = parse_answer(500, "application/soap+xml", fault)
    assert answer.fault == (f"{{{SOAP12}}}Sender", f"{{{WSA}}}ActionNotSupported", "no")
    assert answer.problem is None and answer.documents == ()

    answer = parse_answer(413, "text/plain", b"too large")
    assert answer.envelope is None and answer.problem is not None


def test_hostile_envelope_builders() -> None:
    permissive = etree.XMLParser(resolve_entities=True, huge_tree=True)
    expanded = etree.fromstring(entity_expansion_envelope(levels=3), permissive)
    assert expanded.findtext(f"{{{SOAP12}}}Body/x") == "lol" * 1000
    assert b'SYSTEM "file:///etc/hostname"' in external_entity_envelope("file:///etc/hostname")
    deep = etree.fromstring(nested_envelope(300), permissive)
    assert len(list(deep.iter("x"))) == 300
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(nested_envelope(300))  # what a hardened parser does with it
    big = oversized_envelope(50_000, DOCS, action=RAD69, to="http://x/")
    assert len(big) >= 50_000
    assert_valid_request(big)
