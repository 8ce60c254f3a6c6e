"""MTOM/XOP packages (gateway.protocols.xca.mtom): the reader finds the root by ``start``,
decodes base64 parts, keeps CR/LF at part edges, refuses broken packages; the writer's
output is read back by the reader and by the standard library's ``email`` parser."""

from __future__ import annotations

import base64
import re

import pytest

from gateway.protocols.xca.envelope import build_response, parse_response
from gateway.protocols.xca.errors import EnvelopeTooLarge, MtomError
from gateway.protocols.xca.model import (
    Addressing,
    DocumentResponse,
    RetrieveResponse,
    Status,
)
from gateway.protocols.xca.mtom import (
    MtomReader,
    MtomWriter,
    content_id_from_href,
    content_id_of,
    href_for,
    is_multipart,
    is_soap,
    mtom_params,
    resolve,
    soap_content_type,
    unreferenced,
    unresolved,
)
from tests.unit.xca.xcadata import CHUNK_SIZES, email_parts, read_package

BOUNDARY = "MIMEBoundary_r75resp"
ENVELOPE = b'<?xml version="1.0"?><s:Envelope xmlns:s="x"><s:Body/></s:Envelope>'
EDGY = b"\r\n\r\nDICM\r\n--MIMEBoundary_r75res\r\n-\r--MIME\r\n"  # CR/LF at both edges


def content_type(start: str | None = "<root.r75@a.example.org>") -> str:
    tail = "" if start is None else f'; start="{start}"'
    return (
        f'multipart/related; boundary="{BOUNDARY}"; type="application/xop+xml"'
        f'{tail}; start-info="application/soap+xml"'
    )


def part(headers: dict[str, str], data: bytes) -> bytes:
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
    return b"--" + BOUNDARY.encode() + b"\r\n" + lines + b"\r\n" + data + b"\r\n"


def root_part(cid: str = "<root.r75@a.example.org>", envelope: bytes = ENVELOPE) -> bytes:
    return part(
        {
            "Content-Type": 'application/xop+xml; charset=UTF-8; type="application/soap+xml"',
            "Content-Transfer-Encoding": "binary",
            "Content-ID": cid,
        },
        envelope,
    )


def binary_part(cid: str, data: bytes, encoding: str | None = "binary") -> bytes:
    headers = {"Content-Type": "application/dicom", "Content-ID": cid}
    if encoding is not None:
        headers["Content-Transfer-Encoding"] = encoding
    return part(headers, data)


END = b"--" + BOUNDARY.encode() + b"--\r\n"


@pytest.mark.xcai(27, 13)
@pytest.mark.parametrize("chunk", CHUNK_SIZES)
def test_root_first_and_parts_byte_exact(chunk: int) -> None:
    body = (
        root_part()
        + binary_part("<img1@a.example.org>", EDGY)
        + binary_part("<img2@a.example.org>", b"\r\n")
        + END
    )
    package = read_package(body, content_type(), chunk)
    assert package.root == ENVELOPE
    assert package.order == ["root", "img1@a.example.org", "img2@a.example.org"]
    assert package.parts == [
        ("img1@a.example.org", "application/dicom", EDGY),
        ("img2@a.example.org", "application/dicom", b"\r\n"),
    ]


@pytest.mark.xcai(27)
@pytest.mark.parametrize("chunk", CHUNK_SIZES)
def test_root_found_by_start_when_it_is_not_first(chunk: int) -> None:
    body = (
        b"preamble\r\n"
        + binary_part("<img1@a.example.org>", EDGY)
        + root_part()
        + binary_part("<img2@a.example.org>", b"x")
        + END
        + b"epilogue"
    )
    package = read_package(body, content_type(), chunk)
    assert package.order == ["img1@a.example.org", "root", "img2@a.example.org"]
    assert package.root == ENVELOPE
    assert package.parts[0][2] == EDGY


def test_without_start_the_first_part_is_the_root() -> None:
    body = root_part(cid="<any@x>") + binary_part("<img@x>", b"abc") + END
    package = read_package(body, content_type(start=None), 64)
    assert package.root == ENVELOPE
    assert package.parts == [("img@x", "application/dicom", b"abc")]


@pytest.mark.xcai(27)
@pytest.mark.parametrize("chunk", CHUNK_SIZES)
def test_base64_parts_are_decoded_while_streaming(chunk: int) -> None:
    data = bytes(range(256)) * 3 + b"\r\n"
    text = base64.encodebytes(data)  # 76-character lines with LF
    text = text.replace(b"\n", b"\r\n")
    body = root_part() + binary_part("<b64@x>", text, "BASE64") + END
    package = read_package(body, content_type(), chunk)
    assert package.parts == [("b64@x", "application/dicom", data)]


@pytest.mark.xcai(27)
def test_percent_encoded_content_ids_match_their_href() -> None:
    body = (
        root_part(cid="<root%40x>")
        + binary_part("<img1%40a.example.org>", b"1")
        + binary_part("<img2@a.example.org>", b"2")
        + END
    )
    package = read_package(body, content_type(start="<root@x>"), 7)
    assert package.root == ENVELOPE
    ids = [cid for cid, _, _ in package.parts]
    assert ids == ["img1@a.example.org", "img2@a.example.org"]
    assert content_id_from_href("cid:img1%40a.example.org") == ids[0]
    assert content_id_from_href("CID:img2@a.example.org") == ids[1]


@pytest.mark.parametrize("encoding", [None, "binary", "8bit", "7bit"])
def test_identity_encodings_pass_bytes_unchanged(encoding: str | None) -> None:
    body = root_part() + binary_part("<p@x>", EDGY, encoding) + END
    assert read_package(body, content_type(), 7).parts[0][2] == EDGY


@pytest.mark.xcai(28)
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(root_part() + binary_part("<img@x>", b"abc"), id="no-closing-delimiter"),
        pytest.param(root_part() + binary_part("<img@x>", b"abc") + END[:-4], id="cut-close"),
        pytest.param(root_part()[:40], id="cut-in-root"),
        pytest.param(b"", id="empty"),
    ],
)
def test_a_package_without_its_closing_delimiter_is_refused(body: bytes) -> None:
    with pytest.raises(MtomError):
        read_package(body, content_type(), 7)


@pytest.mark.parametrize(
    ("body", "start"),
    [
        pytest.param(
            root_part()
            + part(
                {"Content-Type": "multipart/related; boundary=inner", "Content-ID": "<n@x>"},
                b"--inner--",
            ),
            "<root.r75@a.example.org>",
            id="nested-multipart",
        ),
        pytest.param(
            root_part() + part({"Content-Type": "application/dicom"}, b"x") + END,
            "<root.r75@a.example.org>",
            id="part-without-content-id",
        ),
        pytest.param(
            root_part() + binary_part("<a@x>", b"1") + binary_part("<a@x>", b"2") + END,
            "<root.r75@a.example.org>",
            id="content-id-twice",
        ),
        pytest.param(
            root_part() + binary_part("<root.r75@a.example.org>", b"1") + END,
            "<root.r75@a.example.org>",
            id="second-root",
        ),
        pytest.param(
            binary_part("<a@x>", b"1") + END, "<root.r75@a.example.org>", id="root-missing"
        ),
        pytest.param(root_part() + END, "<other@x>", id="start-names-no-part"),
        pytest.param(
            root_part() + binary_part("<a@x>", b"QUJD*", "base64") + END,
            "<root.r75@a.example.org>",
            id="bad-base64",
        ),
        pytest.param(
            root_part() + binary_part("<a@x>", b"QUJDR", "base64") + END,
            "<root.r75@a.example.org>",
            id="base64-cut-in-a-quantum",
        ),
        pytest.param(
            root_part() + binary_part("<a@x>", b"QQ==QUJD", "base64") + END,
            "<root.r75@a.example.org>",
            id="base64-after-padding",
        ),
        pytest.param(
            root_part() + binary_part("<a@x>", b"=41", "quoted-printable") + END,
            "<root.r75@a.example.org>",
            id="unsupported-encoding",
        ),
        pytest.param(
            root_part() + part({"Content-ID": "<h@x>", "X-Pad": "p" * 20000}, b"") + END,
            "<root.r75@a.example.org>",
            id="oversize-part-headers",
        ),
        pytest.param(
            root_part() + binary_part("<" + "i" * 300 + "@x>", b"1") + END,
            "<root.r75@a.example.org>",
            id="oversize-content-id",
        ),
    ],
)
def test_unreadable_packages_are_refused(body: bytes, start: str) -> None:
    for chunk in (1, 64, 65536):
        with pytest.raises(MtomError):
            read_package(body, content_type(start=start), chunk)


def test_the_root_is_capped() -> None:
    body = root_part(envelope=b"<a>" + b"x" * 5000 + b"</a>") + END
    with pytest.raises(EnvelopeTooLarge):
        read_package(body, content_type(), 64, max_root_bytes=4096)
    assert read_package(body, content_type(), 64, max_root_bytes=5008).root is not None


def test_too_many_parts_are_refused() -> None:
    body = root_part() + b"".join(binary_part(f"<{i}@x>", b"") for i in range(4)) + END
    reader = MtomReader(content_type(), max_root_bytes=1 << 16, max_parts=3)
    with pytest.raises(MtomError):
        list(reader.feed(body))


@pytest.mark.parametrize(
    "value",
    [
        "application/soap+xml",
        "multipart/related",  # no boundary
        f'multipart/mixed; boundary="{BOUNDARY}"',
        'multipart/related; boundary="a"; boundary="b"',
        'multipart/related; boundary="bad boundary "',
        "not a media type",
    ],
)
def test_unreadable_content_types_are_refused(value: str) -> None:
    with pytest.raises(MtomError):
        mtom_params(value)


def test_params_of_an_mtom_content_type() -> None:
    params = mtom_params(content_type(start="<root%40x>"))
    assert params.boundary == BOUNDARY
    assert params.start == "root@x"
    assert params.type == "application/xop+xml"
    assert params.start_info == "application/soap+xml"
    assert is_multipart(content_type()) and not is_multipart("application/soap+xml")
    assert is_soap('application/soap+xml; charset=UTF-8; action="urn:x"')
    assert not is_soap(content_type())
    assert soap_content_type("urn:a") == 'application/soap+xml; charset=UTF-8; action="urn:a"'


def test_content_id_helpers() -> None:
    assert content_id_of(" <a%40b> ") == "a@b"
    assert content_id_of("a@b") == "a@b"
    assert href_for("a@b.c-d") == "cid:a@b.c-d"
    assert href_for("a b/<c>") == "cid:a%20b%2F%3Cc%3E"
    assert content_id_from_href(href_for("a b/<c>")) == "a b/<c>"
    for bad in ("http://x/y", "cid:", "a@b"):
        with pytest.raises(ValueError, match="cid"):
            content_id_from_href(bad)


def response_with(*cids: str | None) -> RetrieveResponse:
    return RetrieveResponse(
        status=Status.SUCCESS,
        documents=tuple(
            DocumentResponse(
                home_community_id="urn:oid:1",
                repository_id="1.2",
                document_uid=f"1.2.{index}",
                content_id=cid,
                inline=None if cid else b"",
            )
            for index, cid in enumerate(cids)
        ),
    )


@pytest.mark.xcai(28)
def test_an_unresolved_content_id_is_found() -> None:
    writer = MtomWriter()
    cid1, cid2 = writer.new_content_id(1), writer.new_content_id(2)
    envelope = build_response(Addressing(action="urn:r"), response_with(cid1, cid2))
    body = writer.root(envelope) + writer.part_head(cid1) + b"dicom" + writer.closing()
    package = read_package(body, writer.content_type(), 64)
    assert package.root is not None
    _, response = parse_response(package.root, max_bytes=1 << 20)
    seen = {cid for cid, _, _ in package.parts}
    assert unresolved(response, seen) == [cid2]
    assert unreferenced(response, seen) == []
    assert unreferenced(response, {cid1, cid2, "extra@x"}) == ["extra@x"]
    assert unresolved(response, {cid1, cid2}) == []
    assert set(resolve(response)) == {cid1, cid2}


def test_a_part_referenced_twice_is_refused() -> None:
    assert resolve(response_with("a@x", None)).keys() == {"a@x"}
    with pytest.raises(MtomError):
        resolve(response_with("a@x", "b@x", "a@x"))


def test_writer_content_type_and_ids() -> None:
    writer = MtomWriter(boundary="b-1", root_id="root@gw")
    assert writer.content_type("urn:ihe:rad:2009:RetrieveImagingDocumentSet") == (
        'multipart/related; boundary="b-1"; type="application/xop+xml"; start="<root@gw>"; '
        'start-info="application/soap+xml"; action="urn:ihe:rad:2009:RetrieveImagingDocumentSet"'
    )
    params = mtom_params(writer.content_type())
    assert (params.boundary, params.start) == ("b-1", "root@gw")
    default = MtomWriter()
    assert re.fullmatch(r"[0-9a-f]{32}", default.boundary)
    for index in (0, 1, 99999):
        assert re.fullmatch(r"[A-Za-z0-9.-]+@[A-Za-z0-9.-]+", default.new_content_id(index))
    assert default.new_content_id(1) != default.new_content_id(2)
    assert default.new_content_id(1) != MtomWriter().new_content_id(1)
    assert re.fullmatch(r"[A-Za-z0-9.-]+@[A-Za-z0-9.-]+", default.root_id)


def test_writer_refuses_what_would_break_the_package() -> None:
    writer = MtomWriter(boundary="b-1")
    with pytest.raises(ValueError, match="boundary"):
        writer.root(b"<a>--b-1</a>")
    for bad_id in ("", "a b", "<a>", "a\r\nX: y"):
        with pytest.raises(ValueError, match="Content-ID"):
            writer.part_head(bad_id)
    with pytest.raises(ValueError, match="control"):
        writer.part_head("a@b", "application/dicom\r\nX-Injected: 1")
    with pytest.raises(ValueError, match="control"):
        writer.content_type("urn:a\r\nX-Injected: 1")
    for boundary in ("a" * 71, "bad boundary ", "semi;colon"):
        with pytest.raises(ValueError, match="boundary"):
            MtomWriter(boundary=boundary)


@pytest.mark.xcai(13)
def test_writer_output_read_by_the_email_parser_and_the_reader() -> None:
    writer = MtomWriter()
    datas = [EDGY, b"", b"\n", b"\r", bytes(range(256)) + b"\r\n"]
    ids = [writer.new_content_id(i) for i in range(len(datas))]
    body = (
        writer.root(ENVELOPE)
        + b"".join(writer.part_head(cid) + data for cid, data in zip(ids, datas, strict=True))
        + writer.closing()
    )
    parts = email_parts(writer.content_type("urn:a"), body)
    assert parts[0]["Content-ID"] == f"<{writer.root_id}>"
    assert parts[0].get_payload(decode=True) == ENVELOPE
    assert [p["Content-ID"] for p in parts[1:]] == [f"<{cid}>" for cid in ids]
    assert [p.get_payload(decode=True) for p in parts[1:]] == datas
    for chunk in CHUNK_SIZES:
        package = read_package(body, writer.content_type(), chunk)
        assert package.root == ENVELOPE
        assert package.parts == [
            (cid, "application/dicom", data) for cid, data in zip(ids, datas, strict=True)
        ]
