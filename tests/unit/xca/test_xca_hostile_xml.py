"""Hostile XML (gateway.protocols.xca.xmlsafe, through parse_request and parse_response):
external entities, entity expansion bombs, DTDs, XInclude and oversize envelopes are refused
with the right fault, and nothing is expanded or fetched — also when the byte scan is
bypassed, the parsed tree is checked again."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from lxml import etree

from gateway.protocols.xca import xmlsafe
from gateway.protocols.xca.envelope import build_request, parse_request, parse_response
from gateway.protocols.xca.errors import (
    AnswerUnreadable,
    EnvelopeTooLarge,
    ForbiddenXml,
    SoapFault,
)
from tests.unit.xca.xcadata import document_xml, rad69, request_body, sample_request, soap_request

MAX = 1 << 20
SECRET = "sentinel-7d1c"


def with_prolog(prolog: str, uid: str) -> bytes:
    """A valid request preceded by ``prolog`` whose DocumentUniqueId is ``uid``."""
    xml = soap_request(request_body(document_xml(uid)))
    declaration, _, rest = xml.partition(b"\n")
    return declaration + b"\n" + prolog.encode() + rest


def hostile(tmp_path: Path) -> dict[str, bytes]:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    laughs = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    return {
        "external-entity": with_prolog(
            f'<!DOCTYPE s:Envelope [<!ENTITY x SYSTEM "file://{secret}">]>', "&x;"
        ),
        "billion-laughs": with_prolog(
            f'<!DOCTYPE s:Envelope [<!ENTITY l0 "lol">{laughs}]>', "&l9;"
        ),
        "parameter-entity": with_prolog(
            f'<!DOCTYPE s:Envelope [<!ENTITY % p SYSTEM "file://{secret}"> %p;]>', "1.2"
        ),
        "external-dtd": with_prolog('<!DOCTYPE s:Envelope SYSTEM "http://127.0.0.1:9/x.dtd">', "1"),
        "lower-case-doctype": with_prolog("<!doctype s:Envelope>", "1.2"),
        "undeclared-entity": with_prolog("", "&x;"),
        "xinclude": soap_request(
            request_body(document_xml("1.2")).replace(
                "</iherad:SeriesRequest>",
                '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" '
                f'href="file://{secret}" parse="text"/></iherad:SeriesRequest>',
            )
        ),
        "utf-16-doctype": (
            '<?xml version="1.0" encoding="UTF-16"?>'
            f'<!DOCTYPE s:Envelope [<!ENTITY x SYSTEM "file://{secret}">]>'
            + soap_request(request_body(document_xml("&x;"))).decode().partition("\n")[2]
        ).encode("utf-16"),
    }


CASES = [
    "external-entity",
    "billion-laughs",
    "parameter-entity",
    "external-dtd",
    "lower-case-doctype",
    "undeclared-entity",
    "xinclude",
    "utf-16-doctype",
]


@pytest.mark.parametrize("case", CASES)
def test_hostile_requests_are_forbidden(case: str, tmp_path: Path) -> None:
    xml = hostile(tmp_path)[case]
    began = time.monotonic()
    with pytest.raises(ForbiddenXml) as caught:
        parse_request(xml, max_bytes=MAX)
    assert time.monotonic() - began < 1
    assert SECRET not in str(caught.value) and SECRET not in caught.value.reason
    assert caught.value.code == "Sender" and caught.value.http_status == 400


@pytest.mark.parametrize("case", CASES)
def test_the_parsed_tree_is_checked_even_without_the_byte_scan(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(xmlsafe, "_refuse_declarations", lambda xml: None)
    with pytest.raises(ForbiddenXml):
        parse_request(hostile(tmp_path)[case], max_bytes=MAX)


def test_entities_are_never_substituted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Below both checks, the parser itself expands nothing and fetches nothing."""
    monkeypatch.setattr(xmlsafe, "_refuse_declarations", lambda xml: None)
    root = etree.fromstring(
        hostile(tmp_path)["external-entity"],
        etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False),
    )
    assert SECRET not in etree.tostring(root).decode()


def test_a_utf16_request_without_declarations_is_read() -> None:
    xml = build_request(rad69(), sample_request()).decode()
    utf16 = xml.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    assert parse_request(utf16, max_bytes=MAX)[1] == sample_request()


def test_an_oversize_envelope_is_refused_before_parsing() -> None:
    xml = build_request(rad69(), sample_request())
    with pytest.raises(EnvelopeTooLarge):
        parse_request(xml, max_bytes=len(xml) - 1)
    assert parse_request(xml, max_bytes=len(xml))[1] == sample_request()


def test_deeply_nested_documents_are_malformed_not_a_crash() -> None:
    depth = 300_000
    xml = b"<a>" * depth + b"</a>" * depth
    with pytest.raises(SoapFault):
        parse_request(xml, max_bytes=10 * depth)


@pytest.mark.parametrize("case", ["external-entity", "billion-laughs", "xinclude"])
def test_hostile_answers_are_unreadable(case: str, tmp_path: Path) -> None:
    with pytest.raises(AnswerUnreadable) as caught:
        parse_response(hostile(tmp_path)[case], max_bytes=MAX)
    assert SECRET not in caught.value.reason


def test_oversize_answers_are_unreadable() -> None:
    with pytest.raises(AnswerUnreadable):
        parse_response(b"<a/>" * 10, max_bytes=39)
