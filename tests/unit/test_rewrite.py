"""Streaming URL rewriting of metadata (gateway.protocols.xcwado.rewrite): spellings, relative references,
what is left alone, what is refused, and how much is held."""

from __future__ import annotations

import base64
import json

import pytest

from gateway.protocols.xcwado.border import Border
from gateway.protocols.xcwado.metadata import is_rewritable, metadata_rewriter
from gateway.protocols.xcwado.rewrite import MAX_FIELD_BYTES, PrefixRewriter, RewriteError

BASE = "http://pacs:8042/dicom-web/"
REQUEST = BASE + "studies/1.2/series/3.4/metadata"
PUBLIC = "https://gw.example.org/wado/homeCommunityId/5.6/RetrieveLocationUID/7.8/"
JSON = "application/dicom+json"
XML = 'multipart/related; type="application/dicom+xml"; boundary=b'


def rewriter(content_type: str = JSON, base: str = BASE) -> PrefixRewriter:
    border = Border.create(bases=(base,), request_url=REQUEST, public=PUBLIC)
    found = metadata_rewriter(content_type, border)
    assert found is not None
    return found


def run(body: bytes, content_type: str = JSON, base: str = BASE, step: int = 0) -> bytes:
    """The rewritten body, fed whole and byte by byte (``step``) — both must agree."""
    outputs = []
    for size in {step or len(body) or 1, 1, 7}:
        r = rewriter(content_type, base)
        chunks = [body[i : i + size] for i in range(0, len(body), size)]
        outputs.append(b"".join(r.feed(c) for c in chunks) + r.flush())
    assert len(set(outputs)) == 1, outputs
    return outputs[0]


def bulk(value: str, key: str = "BulkDataURI") -> bytes:
    return ('{"7FE00010": {"vr": "OB", "' + key + '": "' + value + '"}}').encode()


def bulk_out(body: bytes) -> str:
    uri: str = json.loads(body)["7FE00010"]["BulkDataURI"]
    return uri


@pytest.mark.parametrize(
    "spelled",
    [
        "http://pacs:8042/dicom-web/",
        "HTTP://PACS:8042/dicom-web/",
        "http:\\/\\/pacs:8042\\/dicom-web\\/",
        "http:\\u002f\\u002Fpacs\\u003A8042\\u002fdicom-web\\u002F",
        "".join(f"\\u{ord(c):04x}" for c in "http://pacs:8042/dicom-web/"),
        "//pacs:8042/dicom-web/",
        "http://p%61cs:08042/dicom-web/",
        "http://PACS.:8042/dicom-web/",
        "http://user@pacs:8042/dicom-web/",
        "http:\\\\\\\\pacs:8042\\\\dicom-web\\\\",  # backslashes: what a browser reads as /
        "/dicom-web/",  # absolute-path reference
        "../../../../",  # relative-path, up from …/series/3.4/metadata
        "http://pacs:8042/dicom-web/studies/x/../../",
        "https://pacs:8042/dicom-web/",  # the same server, as a TLS terminator shows it
        "HTTP://PACS:8042/DICOM-WEB/",  # the path's letter case too (IIS ignores it)
        "http\\u003a//pacs:8042/Dicom-Web\\u002f",
    ],
)
def test_every_spelling_of_a_bulk_data_uri_becomes_the_public_url(spelled: str) -> None:
    body = bulk(spelled + "studies/1.2/series/3.4/instances/9/bulk/7fe00010")
    assert bulk_out(run(body)) == PUBLIC + "studies/1.2/series/3.4/instances/9/bulk/7fe00010"


def test_a_relative_path_reference_resolves_against_what_the_source_was_asked() -> None:
    body = bulk("instances/9/bulk/7fe00010?x=1")
    assert bulk_out(run(body)) == PUBLIC + "studies/1.2/series/3.4/instances/9/bulk/7fe00010?x=1"


def test_an_escaped_key_is_still_a_bulk_data_uri() -> None:
    body = bulk("/dicom-web/studies/1.2", key="BulkData\\u0055RI")
    assert bulk_out(run(body)) == PUBLIC + "studies/1.2"


@pytest.mark.parametrize(
    ("base", "spelled"),
    [
        ("http://pacs/dicom-web/", "http://pacs:80/dicom-web/"),
        ("http://pacs/dicom-web/", "HTTP://PACS:/dicom-web/"),
        ("http://pacs/dicom-web/", "http://pacs:0080/dicom-web/"),
        ("http://pacs:80/dicom-web/", "http://pacs/dicom-web/"),
        ("https://pacs/dicom-web/", "https://pacs:443/dicom-web/"),
        ("https://pacs:443/dicom-web/", "HTTPS://Pacs/dicom-web/"),
        ("http://[fd00::1]:8042/dicom-web/", "http://[FD00::1]:8042/dicom-web/"),
        ("http://[fd00::1]:8042/dicom-web/", "http://[fd00:0:0::1]:8042/dicom-web/"),
    ],
)
def test_default_port_and_address_spellings(base: str, spelled: str) -> None:
    assert bulk_out(run(bulk(spelled + "studies/1"), base=base)) == PUBLIC + "studies/1"


def test_retrieve_urls_in_any_key_order_and_in_sequences() -> None:
    body = (
        b'[{"00081190": {"Value": ["/dicom-web/studies/1.2", "series/5"], "vr": "UR"},'
        b' "00081115": {"vr": "SQ", "Value": [{"0040E010": {"vr": "UR", "Value": ["../../"]}}]},'
        b' "00081199": {"vr": "SQ", "Value": [{"00081190": {"vr": "UR",'
        b' "Value": ["HTTP://pacs:8042/dicom-web/studies/1.2"]}}]}}]'
    )
    out = json.loads(run(body))[0]
    assert out["00081190"]["Value"] == [
        PUBLIC + "studies/1.2",
        PUBLIC + "studies/1.2/series/3.4/series/5",
    ]
    assert out["00081115"]["Value"][0]["0040E010"]["Value"] == [PUBLIC + "studies/1.2/"]
    assert out["00081199"]["Value"][0]["00081190"]["Value"] == [PUBLIC + "studies/1.2"]


def test_free_text_quoting_the_base_is_rewritten_in_place() -> None:
    body = b'{"00324000": {"vr": "LT", "Value": ["see HTTP:\\/\\/PACS:8042\\/dicom-web\\/studies\\/1 ok"]}}'
    value = json.loads(run(body))["00324000"]["Value"][0]
    assert value == f"see {PUBLIC}studies/1 ok"


def test_the_base_without_its_final_slash() -> None:
    body = b'{"00081190": {"vr": "UR", "Value": ["http://pacs:8042/dicom-web"]}, "x": "http://pacs:8042/dicom-web?a"}'
    out = json.loads(run(body))
    assert out["00081190"]["Value"] == [PUBLIC[:-1]]
    assert out["x"] == PUBLIC[:-1] + "?a"


def test_the_source_origin_outside_its_base_is_withheld_in_url_fields() -> None:
    body = bulk("http://PACS:8042/other/thing") + b""
    assert bulk_out(run(body)) == ""
    assert bulk_out(run(bulk("/elsewhere"))) == ""


@pytest.mark.parametrize(
    "value",
    [
        "https://other.example.org/dicom-web/studies/1",
        "http://pacs:8043/dicom-web/studies/1",  # another port: another origin
        "http://pacs.example:8042/dicom-web/studies/1",  # another host
        "ftp://pacs:8042/dicom-web/studies/1",  # not http(s)
        "urn:uuid:0b8e7d2a-0000-4000-8000-000000000000",
    ],
)
def test_other_origins_are_left_alone(value: str) -> None:
    body = bulk(value)
    assert run(body) == body


def test_metadata_without_source_urls_passes_byte_for_byte() -> None:
    body = (
        b'[{"00100010": {"vr": "PN", "Value": [{"Alphabetic": "D\\u00fcrer^Albrecht"}]},'
        b' "00081030": {"vr": "LO", "Value": ["a \\"quoted\\" \\/ slash, 50% of 5 \\\\ x"]},'
        b' "00420011": {"vr": "OB", "InlineBinary": "AAECAw=="},'
        b' "00080005": {"vr": "CS", "Value": ["ISO_IR 192"]}, "pacs": "pacs:8042 is not a URL"}]'
    )
    assert run(body) == body


def test_a_long_escaped_inline_binary_streams_through_unchanged() -> None:
    """PHP-style escaping (every / as \\/) on a 1 MiB InlineBinary: not a URL field, so it is
    never held whole; it comes out unchanged."""
    blob = base64.b64encode(bytes(range(256)) * 3072).decode().replace("/", "\\/")
    body = ('{"00420011": {"vr": "OB", "InlineBinary": "' + blob + '"}}').encode()
    r = rewriter()
    out = []
    held = 0
    for i in range(0, len(body), 65536):
        out.append(r.feed(body[i : i + 65536]))
        held = max(held, r.held_bytes)
    out.append(r.flush())
    assert b"".join(out) == body
    assert held <= r.hold_back + 65536


def test_memory_held_is_bounded_on_a_large_document() -> None:
    instance = (
        '{"00080018": {"vr": "UI", "Value": ["1.2.3"]}, "00081190": {"vr": "UR", "Value": ["'
        + BASE
        + 'studies/1"]}, "7FE00010": {"vr": "OW", "BulkDataURI": "'
        + BASE
        + 'studies/1/series/2/instances/3/bulk/7fe00010"}}'
    )
    body = ("[" + ", ".join([instance] * 20000) + "]").encode()
    r = rewriter()
    held = 0
    for i in range(0, len(body), 65536):
        r.feed(body[i : i + 65536])
        held = max(held, r.held_bytes)
    r.flush()
    assert held <= r.hold_back


def test_a_url_field_longer_than_the_limit_is_refused() -> None:
    r = rewriter()
    r.feed(b'{"7FE00010": {"vr": "OB", "BulkDataURI": "/dicom-web/')
    r.feed(b"a" * (MAX_FIELD_BYTES - 4096))  # still held: it may end yet
    with pytest.raises(RewriteError, match="longer"):
        r.feed(b"a" * 8192)


def test_nul_bytes_are_refused() -> None:
    with pytest.raises(RewriteError, match="NUL"):
        rewriter().feed('[{"a": "b"}]'.encode("utf-16"))


def test_an_aborting_rewriter_is_an_upstream_payload_error() -> None:
    """The relay aborts the client connection for aiohttp.ClientPayloadError (forward._copy)."""
    import aiohttp

    assert issubclass(RewriteError, aiohttp.ClientPayloadError)


def xml_part(document: str, extra_headers: str = "") -> bytes:
    return (
        "--b\r\nContent-Type: application/dicom+xml\r\n"
        + extra_headers
        + "\r\n"
        + document
        + "\r\n--b--\r\n"
    ).encode()


def test_xml_references_cdata_and_comments() -> None:
    document = (
        '<?xml version="1.0" encoding="utf-8"?><NativeDicomModel>'
        '<DicomAttribute tag="7FE00010" vr="OB"><BulkData uri="http&#58;&#x2F;&#x0002f;PACS:8042&#47;dicom-web/studies/1/bulk"/></DicomAttribute>'
        "<DicomAttribute vr='UR' tag='0008&#x31;190'><Value number='1'><![CDATA[/dicom-web/studies/1]]></Value></DicomAttribute>"
        '<DicomAttribute tag="00324000" vr="LT"><Value number="1">x http://pa<!-- -->cs:8042/dicom-web/ &amp; y</Value></DicomAttribute>'
        "<?app ignore?></NativeDicomModel>"
    )
    out = run(
        xml_part(document, "Content-Length: 999\r\nContent-Location: http://pacs:8042/x\r\n"), XML
    )
    text = out.decode()
    assert "pacs" not in text.lower()
    assert f'uri="{PUBLIC}studies/1/bulk"' in text
    assert f"<Value number='1'>{PUBLIC}studies/1</Value>" in text
    assert f"x {PUBLIC} &amp; y" in text
    assert "Content-Length" not in text and "Content-Location" not in text
    assert "<?app" not in text and "<?xml" in text


def test_a_document_type_declaration_is_refused() -> None:
    r = rewriter(XML)
    with pytest.raises(RewriteError, match="document type"):
        r.feed(xml_part('<!DOCTYPE x [<!ENTITY h "http://pa">]><x>&h;cs:8042/</x>'))


def test_absurdly_padded_character_references_are_refused() -> None:
    r = rewriter(XML)
    with pytest.raises(RewriteError, match="padded"):
        r.feed(xml_part("<x>http:" + "&#x" + "0" * 40 + "2f;" + "</x>"))


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/dicom+json", True),
        ("application/dicom+json; charset=utf-8", True),
        ("application/json", True),
        ('multipart/related; type="application/dicom+xml"; boundary=x', True),
        ("application/dicom+xml", True),
        ('multipart/related; type="application/dicom"; boundary=x', False),
        ("application/octet-stream", False),
        ("image/jpeg", False),
    ],
)
def test_only_metadata_is_rewritable(content_type: str, expected: bool) -> None:
    assert is_rewritable(content_type) is expected
