"""Property: whatever the spelling and the chunking, metadata leaves the rewriter (i) still
parseable, (ii) without the source's address, (iii) with every other value unchanged and
(iv) with every URL value equal to the gateway URL it stands for.

Documents are DICOM JSON and multipart DICOM XML with BulkDataURIs, Retrieve URLs (also in a
sequence item) and free text quoting the base URL. Every URL is drawn in a random spelling
(scheme, host and base path letter case, default port written, empty or zero-padded,
percent-encoded letters, scheme-less, absolute-path and relative-path references, ``..``
segments), every string written with random escapes (JSON ``\\uXXXX`` in either hex case and
``\\/``; XML character references with leading zeros, CDATA sections, comments splitting the
text), and the result cut into chunks at random offsets.
"""

from __future__ import annotations

import json
import posixpath
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gateway.protocols.xcwado.border import Border, parse_base
from gateway.protocols.xcwado.metadata import metadata_rewriter
from gateway.protocols.xcwado.rewrite import RewriteError
from peers.multipart import split_multipart

PUBLIC = "https://gw.example.net/wado/homeCommunityId/1.2.3/RetrieveLocationUID/4.5.6/"
STUDY_DIR = "studies/1.2.3/series/4.5.6/"
NS = "{http://dicom.nema.org/PS3.19/models/NativeDICOM}"
BOUNDARY = "prop-boundary"

HOSTS = ["pacs.internal", "Img-Store.Example.ORG", "10.9.8.7", "[fd00::12]"]
PATHS = ["/", "/dicom-web/", "/a/b-c/wado-rs/"]


@dataclass(frozen=True)
class Source:
    base: str  # as configured
    scheme: str
    host: str  # as configured (the spellings vary it)
    port: int | None  # None: the scheme's default, not written in the configuration
    path: str

    @property
    def request_url(self) -> str:
        return self.base + STUDY_DIR + "metadata"

    @property
    def needle(self) -> str:
        return parse_base(self.base).host.lower()


@st.composite
def sources(draw: st.DrawFn) -> Source:
    scheme = draw(st.sampled_from(["http", "https"]))
    host = draw(st.sampled_from(HOSTS))
    port = draw(st.one_of(st.none(), st.integers(1024, 65535)))
    path = draw(st.sampled_from(PATHS))
    authority = host if port is None else f"{host}:{port}"
    return Source(f"{scheme}://{authority}{path}", scheme, host, port, path)


REMAINDERS = st.sampled_from(
    [
        STUDY_DIR + "instances/7.8.9/bulk/7fe00010",
        STUDY_DIR + "instances/7.8.9/frames/1,2",
        "studies/1.2.3",
        "studies/1.2.3/series/4.5.6/instances/7.8.9/bulk/00420011?offset=0&length=9",
    ]
)


def _percent(draw: st.DrawFn, text: str, protected: str = "") -> str:
    flags = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    out = []
    for char, flag in zip(text, flags, strict=True):
        if flag and char.isalnum() and char not in protected:
            code = f"{ord(char):02x}"
            out.append("%" + (code.upper() if draw(st.booleans()) else code))
        else:
            out.append(char)
    return "".join(out)


def _case(draw: st.DrawFn, text: str) -> str:
    flags = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.upper() if f else c.lower() for c, f in zip(text, flags, strict=True))


@st.composite
def origin_spelling(draw: st.DrawFn, source: Source) -> str:
    """The source's scheme and authority, spelled any way that means the same origin."""
    default = 80 if source.scheme == "http" else 443
    host = _case(draw, source.host)
    if not host.startswith("["):
        host = _percent(draw, host) + draw(st.sampled_from(["", "."]))
    if source.port is None:
        port = draw(st.sampled_from(["", ":", f":{default}", f":00{default}"]))
    else:
        port = ":" + "0" * draw(st.integers(0, 3)) + str(source.port)
    prefix = draw(st.sampled_from([_case(draw, source.scheme) + ":", ""]))
    return f"{prefix}//{host}{port}"


@st.composite
def absolute_spelling(draw: st.DrawFn, source: Source) -> str:
    """The source's base URL, spelled any way that means the same URL."""
    path = _case(draw, source.path) if draw(st.booleans()) else source.path
    return draw(origin_spelling(source)) + _percent(draw, path, protected="/")


@st.composite
def url_value(draw: st.DrawFn, source: Source) -> tuple[str, str]:
    """``(reference as the source writes it, what the consumer must get)``."""
    remainder = draw(REMAINDERS)
    form = draw(
        st.sampled_from(
            ["absolute", "absolute-path", "relative-path", "dots", "foreign", "outside"]
        )
    )
    if form == "absolute":
        return draw(absolute_spelling(source)) + remainder, PUBLIC + remainder
    if form == "absolute-path":
        return source.path + remainder, PUBLIC + remainder
    if form == "relative-path":
        target, query = (source.path + remainder).partition("?")[::2]
        folder, name = posixpath.split(target)
        relative = posixpath.relpath(folder, source.path + STUDY_DIR) + "/" + name
        return relative + (f"?{query}" if query else ""), PUBLIC + remainder
    if form == "dots":
        return draw(absolute_spelling(source)) + "x/../" + remainder, PUBLIC + remainder
    if form == "foreign":
        return (
            "https://elsewhere.example.com/" + remainder,
            "https://elsewhere.example.com/" + remainder,
        )
    if source.path == "/":  # "outside" the base: nothing is outside a root base
        return source.path + remainder, PUBLIC + remainder
    return draw(origin_spelling(source)) + "/other/x", ""


TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
    max_size=24,
)


@st.composite
def free_text(draw: st.DrawFn, source: Source) -> tuple[str, str]:
    """Free text, sometimes quoting the base URL absolutely (rewritten in place)."""
    before, after = draw(TEXT), draw(TEXT)
    assume(source.needle not in (before + after).lower())
    if draw(st.booleans()):
        return before + after, before + after
    spelled = draw(absolute_spelling(source))
    return f"{before} {spelled}studies/9 {after}", f"{before} {PUBLIC}studies/9 {after}"


@dataclass(frozen=True)
class Instance:
    uid: str
    comment: tuple[str, str]
    bulk: tuple[str, str]
    retrieve: tuple[str, str]
    item_retrieve: tuple[str, str]


@st.composite
def instances(draw: st.DrawFn, source: Source) -> list[Instance]:
    count = draw(st.integers(1, 3))
    return [
        Instance(
            uid=f"7.8.{n}",
            comment=draw(free_text(source)),
            bulk=draw(url_value(source)),
            retrieve=draw(url_value(source)),
            item_retrieve=draw(url_value(source)),
        )
        for n in range(count)
    ]


def json_literal(draw: st.DrawFn, text: str) -> str:
    """``text`` as the content of a JSON string, each character escaped or not at random."""
    out = []
    for char in text:
        code = ord(char)
        choice = draw(st.integers(0, 3))
        must = char in '"\\' or code < 0x20
        if must or choice == 1:
            units = (
                [code]
                if code < 0x10000
                else [0xD800 + ((code - 0x10000) >> 10), 0xDC00 + (code & 0x3FF)]
            )
            for unit in units:
                escape = f"\\u{unit:04x}"
                out.append(escape.upper().replace("\\U", "\\u") if draw(st.booleans()) else escape)
        elif char == "/" and choice == 2:
            out.append("\\/")
        else:
            out.append(char)
    return "".join(out)


def xml_literal(draw: st.DrawFn, text: str, *, attribute: bool) -> str:
    """``text`` as XML character data: references at random; in element content, sometimes a
    CDATA section or a comment splitting it."""
    if not attribute and "]]>" not in text and draw(st.integers(0, 3)) == 0:
        return f"<![CDATA[{text}]]>"
    out = []
    for char in text:
        choice = draw(st.integers(0, 3))
        zeros = "0" * draw(st.integers(0, 3))
        if char in "&<>\"'" or choice == 1:
            out.append(f"&#{zeros}{ord(char)};")
        elif choice == 2:
            out.append(f"&#x{zeros}{ord(char):X};")
        else:
            out.append(char)
    if not attribute and out and draw(st.booleans()):
        out.insert(draw(st.integers(0, len(out))), "<!-- split -->")
    return "".join(out)


@st.composite
def json_document(draw: st.DrawFn, items: list[Instance]) -> bytes:
    def s(text: str) -> str:
        return '"' + json_literal(draw, text) + '"'

    objects = []
    for item in items:
        bulk_key = s("BulkDataURI")
        objects.append(
            "{"
            f'"00080018": {{"vr": "UI", "Value": [{s(item.uid)}]}}, '
            f'"00324000": {{{s("vr")}: "LT", "Value": [{s(item.comment[0])}]}}, '
            f'{s("00081190")}: {{"Value": [{s(item.retrieve[0])}], "vr": "UR"}}, '
            f'"00081199": {{"vr": "SQ", "Value": [{{"00081190": {{"vr": "UR", "Value": [{s(item.item_retrieve[0])}]}}}}]}}, '
            f'"7FE00010": {{"vr": "OB", {bulk_key}: {s(item.bulk[0])}}}'
            "}"
        )
    return ("[" + ", ".join(objects) + "]").encode()


def json_expected(items: list[Instance]) -> list[dict[str, Any]]:
    return [
        {
            "00080018": {"vr": "UI", "Value": [item.uid]},
            "00324000": {"vr": "LT", "Value": [item.comment[1]]},
            "00081190": {"Value": [item.retrieve[1]], "vr": "UR"},
            "00081199": {
                "vr": "SQ",
                "Value": [{"00081190": {"vr": "UR", "Value": [item.item_retrieve[1]]}}],
            },
            "7FE00010": {"vr": "OB", "BulkDataURI": item.bulk[1]},
        }
        for item in items
    ]


@st.composite
def xml_document(draw: st.DrawFn, items: list[Instance]) -> bytes:
    parts = []
    for item in items:
        quote = draw(st.sampled_from(['"', "'"]))
        uri = draw(st.sampled_from(["uri", "URI"]))

        def text(value: str) -> str:
            return xml_literal(draw, value, attribute=False)

        document = (
            '<?xml version="1.0" encoding="utf-8"?>\n'
            f'<NativeDicomModel xmlns="{NS[1:-1]}">'
            f'<DicomAttribute tag="00080018" vr="UI"><Value number="1">{item.uid}</Value></DicomAttribute>'
            f'<DicomAttribute tag="00324000" vr="LT"><Value number="1">{text(item.comment[0])}</Value></DicomAttribute>'
            f'<DicomAttribute vr="UR" tag="{xml_literal(draw, "00081190", attribute=True)}">'
            f'<Value number="1">{text(item.retrieve[0])}</Value></DicomAttribute>'
            f'<DicomAttribute tag="0040E010" vr="UR"><Value number="1">{text(item.item_retrieve[0])}</Value></DicomAttribute>'
            f'<DicomAttribute tag="7FE00010" vr="OB"><BulkData {uri}={quote}'
            f"{xml_literal(draw, item.bulk[0], attribute=True)}{quote}/></DicomAttribute>"
            "</NativeDicomModel>"
        ).encode()
        length = f"Content-Length: {len(document)}\r\n" if draw(st.booleans()) else ""
        parts.append(
            f"--{BOUNDARY}\r\nContent-Type: application/dicom+xml\r\n{length}\r\n".encode()
            + document
            + b"\r\n"
        )
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def xml_values(body: bytes, content_type: str) -> tuple[list[list[tuple[str, str]]], list[str]]:
    """Per part, ``(tag, value)`` in document order (the BulkData URI as the 7FE00010 value);
    and every text and attribute value."""
    documents, strings = [], []
    for part in split_multipart(body, content_type):
        length = part.headers.get("content-length")
        assert length is None or int(length) == len(part.body)
        root = ET.fromstring(part.body)
        values = []
        for attribute in root.iter(NS + "DicomAttribute"):
            for child in attribute:
                value = (
                    child.text if child.tag == NS + "Value" else next(iter(child.attrib.values()))
                )
                values.append((attribute.attrib["tag"], value or ""))
        for element in root.iter():
            strings += [element.text or "", *element.attrib.values()]
        documents.append(values)
    return documents, strings


def xml_expected(items: list[Instance]) -> list[list[tuple[str, str]]]:
    return [
        [
            ("00080018", item.uid),
            ("00324000", item.comment[1]),
            ("00081190", item.retrieve[1]),
            ("0040E010", item.item_retrieve[1]),
            ("7FE00010", item.bulk[1]),
        ]
        for item in items
    ]


def chunked(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(body) + 1) for c in cuts})
    return [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]


def rewrite(source: Source, content_type: str, body: bytes, cuts: list[int]) -> bytes:
    border = Border.create(bases=(source.base,), request_url=source.request_url, public=PUBLIC)
    rewriter = metadata_rewriter(content_type, border)
    assert rewriter is not None
    return b"".join(rewriter.feed(c) for c in chunked(body, cuts)) + rewriter.flush()


def json_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in json_strings(item)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *json_strings(v)]]
    return []


def assert_no_source(source: Source, output: bytes, strings: list[str]) -> None:
    needle = source.needle
    for text in strings:
        assert needle not in text.lower(), text
    if not needle.replace(".", "").isdigit():  # digits can also come from escapes
        assert needle.encode() not in output.lower()


CUTS = st.lists(st.integers(min_value=0, max_value=10**6), max_size=30)
SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(data=st.data(), source=sources(), cuts=CUTS)
def test_json_metadata(data: st.DataObject, source: Source, cuts: list[int]) -> None:
    items = data.draw(instances(source))
    body = data.draw(json_document(items))
    output = rewrite(source, "application/dicom+json", body, cuts)
    parsed = json.loads(output)  # (i)
    assert_no_source(source, output, json_strings(parsed))  # (ii)
    assert parsed == json_expected(items)  # (iii) and (iv)


@SETTINGS
@given(data=st.data(), source=sources(), cuts=CUTS)
def test_xml_metadata(data: st.DataObject, source: Source, cuts: list[int]) -> None:
    items = data.draw(instances(source))
    body = data.draw(xml_document(items))
    content_type = f'multipart/related; type="application/dicom+xml"; boundary={BOUNDARY}'
    output = rewrite(source, content_type, body, cuts)
    documents, strings = xml_values(output, content_type)  # (i)
    assert_no_source(source, output, strings)  # (ii)
    assert documents == xml_expected(items)  # (iii) and (iv)


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    source=sources(),
    body=st.binary(max_size=600).filter(lambda b: b"\x00" not in b),
    inserts=st.lists(st.integers(min_value=0, max_value=600), max_size=4),
    cuts=CUTS,
    content_type=st.sampled_from(
        [
            "application/dicom+json",
            f'multipart/related; type="application/dicom+xml"; boundary={BOUNDARY}',
        ]
    ),
)
def test_any_bytes_come_out_the_same_however_they_are_cut(
    data: st.DataObject,
    source: Source,
    body: bytes,
    inserts: list[int],
    cuts: list[int],
    content_type: str,
) -> None:
    """Not even a document: arbitrary bytes with spellings of the base inserted. Chunking
    never changes the result — the rewritten bytes, or the refusal of bytes that happen to
    spell a document type declaration (refused whole and cut alike) — and no plain spelling
    of the base survives."""
    for position in inserts:
        spelled = data.draw(absolute_spelling(source)).encode()
        body = body[:position] + spelled + body[position:]
    try:
        whole = rewrite(source, content_type, body, [])
    except RewriteError:
        with pytest.raises(RewriteError):
            rewrite(source, content_type, body, cuts)
        return
    assert rewrite(source, content_type, body, cuts) == whole
