"""Shared by the XCA-I core tests: sample messages, the XDS-I.b / XDS.b schemas (read from
the shared reference folder through tests.samples), and a reader that feeds an MTOM body in
chunks of one size and collects what :class:`MtomReader` reports."""

from __future__ import annotations

import email.parser
import email.policy
import functools
from dataclasses import dataclass, field
from email.message import Message

from lxml import etree

from gateway.protocols.xca.model import (
    Action,
    Addressing,
    DocumentRequest,
    Namespace,
    RetrieveRequest,
)
from gateway.protocols.xca.mtom import MtomReader, PartData, PartEnd, PartStart, RootPart
from tests.samples import shared_file

CHUNK_SIZES = (1, 7, 64, 65536)
ANONYMOUS = "http://www.w3.org/2005/08/addressing/anonymous"
NS = {
    "env": Namespace.SOAP.value,
    "wsa": Namespace.WSA.value,
    "xdsb": Namespace.XDSB.value,
    "iherad": Namespace.IHERAD.value,
    "rs": Namespace.RS.value,
    "xop": Namespace.XOP.value,
}


@functools.cache
def _schema(name: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(shared_file(f"schemas/xds-i/{name}"))))


def request_schema() -> etree.XMLSchema:
    """RAD-69/RAD-75 request body (NIST's public-domain copy of the IHE schema)."""
    return _schema("XDSI.b_ImagingDocumentSource.xsd")


def response_schema() -> etree.XMLSchema:
    """ITI-43 RetrieveDocumentSetResponse (XDS.b)."""
    return _schema("XDS.b_DocumentRepository.xsd")


def body_element(envelope: bytes) -> etree._Element:
    """The Body's element of an envelope, as a document of its own (for the schemas)."""
    root = etree.fromstring(envelope)
    found = root.find("env:Body/*", NS)
    assert found is not None
    return etree.fromstring(etree.tostring(found))


def reconstructed(element: etree._Element) -> etree._Element:
    """A copy with each xop:Include replaced by base64 text: the XOP 1.0 §3.2 reconstructed
    infoset, which is what the schema describes (Document is ``xs:base64Binary``)."""
    copy = etree.fromstring(etree.tostring(element))
    for include in list(copy.iterfind(".//xop:Include", NS)):
        parent = include.getparent()
        assert parent is not None and not (parent.text or "").strip() and len(parent) == 1
        parent.remove(include)
        parent.text = "RElDTQ=="
    return copy


def assert_valid(schema: etree.XMLSchema, element: etree._Element) -> None:
    """``element`` (its XOP reconstruction) is valid against ``schema``."""
    checked = reconstructed(element)
    assert schema.validate(checked), [str(entry) for entry in schema.error_log]


def document(
    uid: str,
    *,
    study: str = "1.2.3.4.5.1",
    series: str = "1.2.3.4.5.1.1",
    repository: str = "5.6.7.8.100",
    community: str | None = "urn:oid:5.6.7.8",
) -> DocumentRequest:
    return DocumentRequest(
        study_uid=study,
        series_uid=series,
        repository_id=repository,
        document_uid=uid,
        home_community_id=community,
    )


def sample_request() -> RetrieveRequest:
    return RetrieveRequest(
        documents=(document("1.2.3.4.5.1.1.1"), document("1.2.3.4.5.1.1.2")),
        transfer_syntaxes=("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.1"),
    )


def rad69(to: str = "https://iig.b.example.net/xcai/iig/rad69") -> Addressing:
    return Addressing(action=Action.RAD_69.value, to=to)


def soap_request(
    body: str,
    *,
    headers: str | None = None,
    envelope_ns: str = Namespace.SOAP.value,
) -> bytes:
    """A hand-written request envelope around ``body`` (the Body's inner XML)."""
    if headers is None:
        headers = (
            f'<a:Action s:mustUnderstand="1">{Action.RAD_69.value}</a:Action>'
            "<a:MessageID>urn:uuid:0f1e2d3c-0000-4000-8000-000000000069</a:MessageID>"
            f"<a:ReplyTo><a:Address>{ANONYMOUS}</a:Address></a:ReplyTo>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<s:Envelope xmlns:s="{envelope_ns}" xmlns:a="{Namespace.WSA.value}">'
        f"<s:Header>{headers}</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def request_body(documents: str, syntaxes: str | None = None) -> str:
    """A RetrieveImagingDocumentSetRequest with ``documents`` inside one study and series."""
    if syntaxes is None:
        syntaxes = (
            "<iherad:TransferSyntaxUIDList>"
            "<iherad:TransferSyntaxUID>1.2.840.10008.1.2.1</iherad:TransferSyntaxUID>"
            "</iherad:TransferSyntaxUIDList>"
        )
    return (
        f'<iherad:RetrieveImagingDocumentSetRequest xmlns:iherad="{Namespace.IHERAD.value}" '
        f'xmlns:xdsb="{Namespace.XDSB.value}">'
        '<iherad:StudyRequest studyInstanceUID="1.2.3.4.5.1">'
        '<iherad:SeriesRequest seriesInstanceUID="1.2.3.4.5.1.1">'
        f"{documents}</iherad:SeriesRequest></iherad:StudyRequest>{syntaxes}"
        "</iherad:RetrieveImagingDocumentSetRequest>"
    )


def document_xml(uid: str, prefix: str = "xdsb", repository: str = "5.6.7.8.100") -> str:
    return (
        f"<{prefix}:DocumentRequest>"
        "<xdsb:HomeCommunityId>urn:oid:5.6.7.8</xdsb:HomeCommunityId>"
        f"<xdsb:RepositoryUniqueId>{repository}</xdsb:RepositoryUniqueId>"
        f"<xdsb:DocumentUniqueId>{uid}</xdsb:DocumentUniqueId>"
        f"</{prefix}:DocumentRequest>"
    )


@dataclass
class Package:
    """What a reader reported: the root, and each other part in arrival order."""

    root: bytes | None = None
    parts: list[tuple[str, str, bytes]] = field(default_factory=list)
    order: list[str] = field(default_factory=list)  # "root" or the part's Content-ID


def read_package(
    body: bytes, content_type: str, chunk: int, *, max_root_bytes: int = 1 << 20
) -> Package:
    """Feed ``body`` in ``chunk``-byte pieces, then close; raises what the reader raises."""
    reader = MtomReader(content_type, max_root_bytes=max_root_bytes)
    package = Package()
    open_part = False
    for start in range(0, len(body), chunk):
        for event in reader.feed(body[start : start + chunk]):
            match event:
                case RootPart(envelope):
                    assert package.root is None
                    package.root = envelope
                    package.order.append("root")
                case PartStart(content_id, part_type, _):
                    assert not open_part
                    open_part = True
                    package.parts.append((content_id, part_type, b""))
                    package.order.append(content_id)
                case PartData(data):
                    assert open_part and data
                    cid, part_type, sofar = package.parts[-1]
                    package.parts[-1] = (cid, part_type, sofar + data)
                case PartEnd():
                    assert open_part
                    open_part = False
    reader.close()
    assert not open_part
    return package


def email_parts(content_type: str, body: bytes) -> list[Message]:
    """The parts of a multipart body as the standard library's MIME parser sees them: a
    reader written independently of ours."""
    message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    assert message.is_multipart()
    assert not message.defects
    payload = message.get_payload()
    assert isinstance(payload, list)
    parts = [part for part in payload if isinstance(part, Message)]
    assert len(parts) == len(payload)
    return parts
