"""MTOM packages however they are cut (gateway.protocols.xca.mtom): parts full of CR, LF,
dashes and pieces of the boundary come back byte-exact from the reader at every chunk size,
with the root anywhere; base64 parts decode whatever their line breaks; the writer's output
reads back through the reader and through the standard library's ``email`` parser."""

from __future__ import annotations

import base64

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gateway.protocols.xca.errors import MtomError
from gateway.protocols.xca.mtom import MtomWriter, content_id_from_href, href_for
from gateway.relay.multipart import part_head
from tests.unit.xca.xcadata import CHUNK_SIZES, email_parts, read_package

BOUNDARY = "uuid-7d1c2e"
ENVELOPE = b'<?xml version="1.0"?><s:Envelope xmlns:s="x"><s:Body/></s:Envelope>\r\n'

edgy_bytes = st.lists(
    st.sampled_from(
        [b"\r", b"\n", b"\r\n", b"-", b"--", b"--uuid", b"--uuid-7d1c2", b"uuid-7d1c2e", b"\x00"]
    )
    | st.binary(max_size=12),
    max_size=25,
).map(b"".join)


def chunked_package(datas: list[bytes], root_at: int, writer: MtomWriter) -> bytes:
    """Parts in order, the root inserted at ``root_at``, framed by hand so that the root
    need not come first (``start`` names it)."""
    ids = [writer.new_content_id(i) for i in range(len(datas))]
    pieces = [writer.part_head(cid) + data for cid, data in zip(ids, datas, strict=True)]
    root_head = part_head(
        writer.boundary,
        {
            "Content-Type": 'application/xop+xml; type="application/soap+xml"',
            "Content-ID": f"<{writer.root_id}>",
        },
    )
    pieces.insert(root_at, root_head + ENVELOPE)
    return b"".join(pieces) + writer.closing()


@pytest.mark.xcai(13, 27)
@settings(max_examples=150, deadline=None)
@given(
    datas=st.lists(edgy_bytes, max_size=4),
    data=st.data(),
)
def test_parts_come_back_byte_exact_at_every_chunk_size(
    datas: list[bytes], data: st.DataObject
) -> None:
    writer = MtomWriter(boundary=BOUNDARY)
    assume(not any(writer.delimiter in part for part in datas))
    root_at = data.draw(st.integers(min_value=0, max_value=len(datas)), label="root_at")
    body = chunked_package(datas, root_at, writer)
    ids = [writer.new_content_id(i) for i in range(len(datas))]
    expected_order = list(ids)
    expected_order.insert(root_at, "root")
    for chunk in CHUNK_SIZES:
        package = read_package(body, writer.content_type(), chunk)
        assert package.root == ENVELOPE
        assert package.order == expected_order
        assert package.parts == [
            (cid, "application/dicom", part) for cid, part in zip(ids, datas, strict=True)
        ]


@pytest.mark.xcai(27)
@settings(max_examples=100, deadline=None)
@given(
    payload=st.binary(max_size=400),
    line=st.integers(min_value=1, max_value=90),
    newline=st.sampled_from([b"\r\n", b"\n", b" ", b"\t"]),
    chunk=st.sampled_from(CHUNK_SIZES),
)
def test_base64_parts_decode_whatever_their_line_breaks(
    payload: bytes, line: int, newline: bytes, chunk: int
) -> None:
    text = base64.b64encode(payload)
    wrapped = newline.join(text[i : i + line] for i in range(0, len(text), line))
    head = part_head(
        BOUNDARY,
        {
            "Content-Type": "application/dicom",
            "Content-Transfer-Encoding": "base64",
            "Content-ID": "<b64@x>",
        },
    )
    writer = MtomWriter(boundary=BOUNDARY, root_id="root@x")
    body = writer.root(ENVELOPE) + head + wrapped + newline + writer.closing()
    package = read_package(body, writer.content_type(), chunk)
    assert package.parts == [("b64@x", "application/dicom", payload)]


@settings(max_examples=60, deadline=None)
@given(
    padding=st.integers(min_value=16 * 1024 - 120, max_value=16 * 1024 + 8),
    chunk=st.sampled_from([1000, 7919, 65536]),
)
def test_the_part_header_cap_does_not_depend_on_the_chunk_size(padding: int, chunk: int) -> None:
    head = part_head(BOUNDARY, {"Content-ID": "<h@x>", "X-Pad": "p" * padding})
    writer = MtomWriter(boundary=BOUNDARY, root_id="root@x")
    body = writer.root(ENVELOPE) + head + b"data" + writer.closing()
    block = len(head) - len(writer.delimiter) - 4  # between the delimiter line and CRLFCRLF
    try:
        package = read_package(body, writer.content_type(), chunk)
    except MtomError:
        assert block > 16 * 1024
    else:
        assert block <= 16 * 1024
        assert package.parts[0][2] == b"data"


@pytest.mark.xcai(13)
@settings(max_examples=150, deadline=None)
@given(datas=st.lists(edgy_bytes, min_size=1, max_size=4))
def test_the_email_parser_reads_what_the_writer_wrote(datas: list[bytes]) -> None:
    writer = MtomWriter()
    dash_boundary = b"--" + writer.boundary.encode()
    # The email parser is line based: any "--boundary" at a line start ends its part.
    assume(not any(dash_boundary in part for part in datas))
    ids = [writer.new_content_id(i) for i in range(len(datas))]
    body = (
        writer.root(ENVELOPE)
        + b"".join(writer.part_head(cid) + part for cid, part in zip(ids, datas, strict=True))
        + writer.closing()
    )
    parts = email_parts(writer.content_type(), body)
    assert parts[0].get_payload(decode=True) == ENVELOPE
    assert [p["Content-ID"] for p in parts[1:]] == [f"<{cid}>" for cid in ids]
    assert [p.get_payload(decode=True) for p in parts[1:]] == datas
    package = read_package(body, writer.content_type(), 7)
    assert [part for _, _, part in package.parts] == datas


@given(st.text(st.characters(codec="utf-8"), min_size=1))
def test_cid_urls_name_their_content_id(content_id: str) -> None:
    href = href_for(content_id)
    assert href.isascii() and " " not in href
    assert content_id_from_href(href) == content_id
